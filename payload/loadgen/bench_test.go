package loadgen

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRateHeld measures how close a rate-limited run gets to its
// target on this machine (TestRunRateHeld only checks it never exceeds
// it): rate/target is 1.0 when every due request was sent and answered.
// Run with `make bench` (scripts/bench-gotest.sh).
func BenchmarkRateHeld(b *testing.B) {
	srv := newTestServer(b, hello)
	const target = 200.0
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := Run(ctx, Options{URL: srv.URL, Concurrency: 10, KeepAlive: true, RPS: target, Duration: 1500 * time.Millisecond})
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.RPS/target, "rate/target")
		b.ReportMetric(float64(res.Completed), "completed")
	}
}
