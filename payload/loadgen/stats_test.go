package loadgen

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestStatsMerge checks that per-worker tallies merged at the end equal one
// tally of all the values: the histogram merge loses nothing.
func TestStatsMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	all := newStats(3)
	parts := []*stats{newStats(3), newStats(3), newStats(3), newStats(3)}
	for i := range 10000 {
		// Latencies from 50 µs to ~2 s, log-spread, a few 500s.
		d := time.Duration(50+rng.ExpFloat64()*float64(2000)) * time.Microsecond
		if i%97 == 0 {
			d = time.Duration(rng.IntN(2000)) * time.Millisecond
		}
		status := 200
		if i%50 == 0 {
			status = 500
		}
		all.response(status, d)
		parts[i%len(parts)].response(status, d)
	}
	errConnect := errors.New("dial tcp: connection refused")
	all.failure(kindConnect, errConnect)
	parts[2].failure(kindConnect, errConnect)

	merged := newStats(3)
	for _, p := range parts {
		merged.merge(p)
	}
	var want, got Result
	all.fill(&want)
	merged.fill(&got)
	// Mean and stddev are rounded to 0.1 µs: the order of addition does not show.
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merged result differs from a single tally (-single +merged):\n%s", diff)
	}
	if got.Completed != 10001 || got.Errors.Connect != 1 || got.Errors.Status != 200 || got.StatusCodes[500] != 200 {
		t.Errorf("counts: completed %d, connect %d, status %d, 500s %d", got.Completed, got.Errors.Connect, got.Errors.Status, got.StatusCodes[500])
	}
	if got.Errors.Total != 201 || got.OK != 9800 {
		t.Errorf("total errors %d ok %d, want 201 and 9800", got.Errors.Total, got.OK)
	}
	if got.ErrorSamples["connect"] != errConnect.Error() {
		t.Errorf("connect sample %q", got.ErrorSamples["connect"])
	}
	checkMonotone(t, got.Latency)
}

// checkMonotone fails unless min <= p50 <= p90 <= p95 <= p99 <= p99.9 <= max
// and the mean lies between min and max.
func checkMonotone(t *testing.T, l *Latency) {
	t.Helper()
	if l == nil {
		t.Fatal("no latency")
	}
	seq := []float64{*l.Min, l.P50, l.P90, l.P95, l.P99, *l.P999, l.Max}
	for i := 1; i < len(seq); i++ {
		if seq[i] < seq[i-1] {
			t.Errorf("percentiles not monotone: min,p50,p90,p95,p99,p99.9,max = %v", seq)
			break
		}
	}
	if l.Mean < *l.Min || l.Mean > l.Max {
		t.Errorf("mean %v outside [%v, %v]", l.Mean, *l.Min, l.Max)
	}
}

func TestStatsPercentilesExact(t *testing.T) {
	// 1..1000 µs, once each: below 2048 µs the histogram is exact.
	s := newStats(3)
	for us := 1000; us >= 1; us-- {
		s.response(200, time.Duration(us)*time.Microsecond)
	}
	var r Result
	s.fill(&r)
	want := &Latency{Mean: 500.5, P50: 500, P90: 900, P95: 950, P99: 990, P999: Ptr(999), Max: 1000, Min: Ptr(1), StdDev: Ptr(288.7)}
	if diff := cmp.Diff(want, r.Latency); diff != "" {
		t.Errorf("latency (-want +got):\n%s", diff)
	}
}

func TestStatsHugeLatencyClamped(t *testing.T) {
	s := newStats(2)
	s.response(200, 2*time.Hour)
	s.response(200, time.Millisecond)
	var r Result
	s.fill(&r)
	if r.Latency.Max != float64(2*time.Hour/time.Microsecond) {
		t.Errorf("max %v, want the exact 2 h", r.Latency.Max)
	}
	checkMonotone(t, r.Latency)
}
