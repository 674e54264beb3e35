package loadgen

import (
	"cmp"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to one hour.
const (
	histMinUS = 1
	histMaxUS = int64(time.Hour / time.Microsecond)
)

// histDigits is the histogram's precision: 3 significant digits (exact to
// the microsecond below 2 ms, 0.1% above), about 190 KB per client; above
// manyClients clients, 2 digits (1%, 27 KB) keep memory bounded on a small VM.
func histDigits(clients int) int {
	if clients > manyClients {
		return 2
	}
	return 3
}

const manyClients = 512

// error kinds, indexes into stats.errs.
const (
	kindConnect = iota
	kindTimeout
	kindWrite
	kindRead
	kindProtocol
	kindStatus
	numKinds
)

var kindNames = [numKinds]string{"connect", "timeout", "write", "read", "protocol", "status"}

// maxStatus bounds the status codes counted in the per-worker array.
const maxStatus = 1000

// stats is one worker's tally; only that worker writes it, so the hot path
// takes no lock. Workers' stats are merged when the run ends.
type stats struct {
	hist      *hdrhistogram.Histogram
	completed int64
	responses int64 // requests that got a response (any status)
	sumUS     float64
	sumSqUS   float64
	minUS     int64
	maxUS     int64
	errs      [numKinds]int64
	samples   [numKinds]string
	codes     [maxStatus]int64
	failed    int64

	// t0 is the run's start: when set, completions are counted per tick
	// (timeline) and, with keepEach, every request is kept (each).
	t0       time.Time
	keepEach bool
	ticks    []int64
	tickErrs []int64
	each     []Request

	// Running totals published for progress reports: only the worker
	// stores them (no contention), the reporter loads them.
	liveCompleted, liveFailed, liveResponses, liveSumUS atomic.Int64
}

// publish makes the running totals visible to progress reports.
func (s *stats) publish() {
	s.liveCompleted.Store(s.completed)
	s.liveFailed.Store(s.failed)
	s.liveResponses.Store(s.responses)
	s.liveSumUS.Store(int64(s.sumUS))
}

func newStats(digits int) *stats {
	return &stats{hist: hdrhistogram.New(histMinUS, histMaxUS, digits), minUS: math.MaxInt64}
}

// tick is the timeline's finest interval; fill merges ticks so that a
// timeline has at most maxTicks intervals.
const (
	tick     = 100 * time.Millisecond
	maxTicks = 600
	// keptTicks bounds a worker's timeline (10 hours of 100 ms ticks).
	keptTicks = 360_000
)

// timed counts a request that ended now in the timeline and, for a small
// run, keeps it (d is its duration, kind its failure or -1).
func (s *stats) timed(d time.Duration, status, kind int) {
	if s.t0.IsZero() {
		return
	}
	el := time.Since(s.t0)
	if i := int(el / tick); i >= 0 && i < keptTicks {
		for len(s.ticks) <= i {
			s.ticks = append(s.ticks, 0)
			s.tickErrs = append(s.tickErrs, 0)
		}
		s.ticks[i]++
		if kind >= 0 || status >= 400 {
			s.tickErrs[i]++
		}
	}
	if s.keepEach {
		r := Request{StartUS: int64((el - d) / time.Microsecond), LatencyUS: int64(d / time.Microsecond), Status: status}
		if kind >= 0 {
			r.Error = kindNames[kind]
		}
		s.each = append(s.each, r)
	}
}

// response records a response with the given status after d.
func (s *stats) response(status int, d time.Duration) {
	s.timed(d, status, -1)
	s.completed++
	s.responses++
	us := int64(d / time.Microsecond)
	if us < histMinUS {
		us = histMinUS
	}
	if us > s.maxUS {
		s.maxUS = us
	}
	if us < s.minUS {
		s.minUS = us
	}
	f := float64(us)
	s.sumUS += f
	s.sumSqUS += f * f
	rec := us
	if rec > histMaxUS {
		rec = histMaxUS
	}
	_ = s.hist.RecordValue(rec) // in range by construction
	if status < maxStatus {
		s.codes[status]++
	}
	if status >= 400 {
		s.errs[kindStatus]++
		s.failed++
	}
	s.publish()
}

// failure records a request that failed without a (complete) response.
func (s *stats) failure(kind int, err error) {
	s.failedAfter(kind, err, 0)
}

// failedAfter records a request that failed without a (complete) response
// after d.
func (s *stats) failedAfter(kind int, err error, d time.Duration) {
	s.timed(d, 0, kind)
	s.completed++
	s.errs[kind]++
	s.failed++
	if s.samples[kind] == "" && err != nil {
		s.samples[kind] = err.Error()
	}
	s.publish()
}

// merge adds o into s.
func (s *stats) merge(o *stats) {
	s.hist.Merge(o.hist)
	s.completed += o.completed
	s.responses += o.responses
	s.failed += o.failed
	s.sumUS += o.sumUS
	s.sumSqUS += o.sumSqUS
	s.minUS = min(s.minUS, o.minUS)
	s.maxUS = max(s.maxUS, o.maxUS)
	for k := range s.errs {
		s.errs[k] += o.errs[k]
		if s.samples[k] == "" {
			s.samples[k] = o.samples[k]
		}
	}
	for c := range s.codes {
		s.codes[c] += o.codes[c]
	}
	for len(s.ticks) < len(o.ticks) {
		s.ticks = append(s.ticks, 0)
		s.tickErrs = append(s.tickErrs, 0)
	}
	for i := range o.ticks {
		s.ticks[i] += o.ticks[i]
		s.tickErrs[i] += o.tickErrs[i]
	}
	s.each = append(s.each, o.each...)
}

// timeline is the merged ticks, coarsened to at most maxTicks intervals.
func (s *stats) timeline() *Timeline {
	if len(s.ticks) == 0 {
		return nil
	}
	k := 1
	for _, f := range []int{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000} {
		k = f
		if (len(s.ticks)+f-1)/f <= maxTicks {
			break
		}
	}
	n := (len(s.ticks) + k - 1) / k
	t := &Timeline{IntervalS: round((time.Duration(k) * tick).Seconds(), 3), Completed: make([]int64, n), Errors: make([]int64, n)}
	for i := range s.ticks {
		t.Completed[i/k] += s.ticks[i]
		t.Errors[i/k] += s.tickErrs[i]
	}
	return t
}

// fill writes the merged tally into r.
func (s *stats) fill(r *Result) {
	r.Completed = s.completed
	e := &r.Errors
	e.Connect, e.Timeout, e.Write = s.errs[kindConnect], s.errs[kindTimeout], s.errs[kindWrite]
	e.Read, e.Protocol, e.Status = s.errs[kindRead], s.errs[kindProtocol], s.errs[kindStatus]
	e.Total = e.Connect + e.Timeout + e.Write + e.Read + e.Protocol + e.Status
	r.OK = r.Completed - e.Total
	r.StatusCodes = map[int]int64{}
	for c, n := range s.codes {
		if n > 0 {
			r.StatusCodes[c] = n
		}
	}
	for k, m := range s.samples {
		if m != "" {
			if r.ErrorSamples == nil {
				r.ErrorSamples = map[string]string{}
			}
			r.ErrorSamples[kindNames[k]] = m
		}
	}
	r.Timeline = s.timeline()
	if len(s.each) > 0 {
		r.Each = slices.Clone(s.each)
		slices.SortStableFunc(r.Each, func(a, b Request) int { return cmp.Compare(a.StartUS, b.StartUS) })
	}
	if s.responses == 0 {
		return
	}
	n := float64(s.responses)
	mean := s.sumUS / n
	variance := max(s.sumSqUS/n-mean*mean, 0)
	maxUS := float64(s.maxUS)
	// A percentile is the top of its histogram bucket; never report one
	// above the exact maximum.
	q := func(p float64) float64 { return min(float64(s.hist.ValueAtQuantile(p)), maxUS) }
	r.Latency = &Latency{
		Mean:   round(mean, 1),
		P50:    q(50),
		P90:    q(90),
		P95:    q(95),
		P99:    q(99),
		P999:   Ptr(q(99.9)),
		Max:    maxUS,
		Min:    Ptr(float64(s.minUS)),
		StdDev: Ptr(round(math.Sqrt(variance), 1)),
	}
}
