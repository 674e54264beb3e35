package loadgen

import (
	"net/http"
	"testing"
	"time"
)

// TestRunTimelineAndEach: the timeline counts every completed request once
// and a small run lists each request with its start and latency; a run of
// more than EachMax requests lists none.
func TestRunTimelineAndEach(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(30 * time.Millisecond)
		}
		hello(w, r)
	}
	for _, tc := range []struct {
		name     string
		path     string
		n        int64
		c        int
		wantEach bool
	}{
		{"small run listed", "/slow", 4, 4, true},
		{"EachMax listed", "/", EachMax, 8, true},
		{"large run not listed", "/", EachMax + 1, 8, false},
		{"many requests", "/", 3000, 20, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, slow)
			res, err := run(t, Options{URL: srv.URL + tc.path, Requests: tc.n, Concurrency: tc.c, KeepAlive: true})
			if err != nil {
				t.Fatal(err)
			}
			tl := res.Timeline
			if tl == nil || tl.IntervalS <= 0 || len(tl.Completed) == 0 || len(tl.Errors) != len(tl.Completed) {
				t.Fatalf("timeline = %+v", tl)
			}
			var sum int64
			for _, n := range tl.Completed {
				sum += n
			}
			if sum != res.Completed {
				t.Errorf("timeline counts %d requests, the run %d", sum, res.Completed)
			}
			if float64(len(tl.Completed)-1)*tl.IntervalS > res.DurationS+tl.IntervalS {
				t.Errorf("timeline of %d × %v s for a run of %v s", len(tl.Completed), tl.IntervalS, res.DurationS)
			}
			if !tc.wantEach {
				if len(res.Each) != 0 {
					t.Errorf("%d requests listed, want none", len(res.Each))
				}
				return
			}
			if int64(len(res.Each)) != tc.n {
				t.Fatalf("%d requests listed, want %d", len(res.Each), tc.n)
			}
			for i, q := range res.Each {
				if q.Status != 200 || q.Error != "" || q.LatencyUS <= 0 || q.StartUS < 0 {
					t.Errorf("request %d = %+v", i, q)
				}
				if i > 0 && q.StartUS < res.Each[i-1].StartUS {
					t.Errorf("requests not in start order: %+v", res.Each)
				}
				if tc.path == "/slow" && q.LatencyUS < 30_000 {
					t.Errorf("request %d took %d µs, the server sleeps 30 ms", i, q.LatencyUS)
				}
				if float64(q.LatencyUS) > res.Latency.Max {
					t.Errorf("request %d took %d µs, more than the maximum %v", i, q.LatencyUS, res.Latency.Max)
				}
			}
		})
	}
}

// TestTimelineCoarsens: a long run's ticks are merged into at most maxTicks
// intervals, keeping the total.
func TestTimelineCoarsens(t *testing.T) {
	for _, ticks := range []int{1, maxTicks, maxTicks + 1, 3000, 7777} {
		s := newStats(2)
		for i := 0; i < ticks; i++ {
			s.ticks = append(s.ticks, int64(i%7))
			s.tickErrs = append(s.tickErrs, int64(i%2))
		}
		tl := s.timeline()
		if len(tl.Completed) > maxTicks {
			t.Errorf("%d ticks: %d intervals", ticks, len(tl.Completed))
		}
		var want, got, wantE, gotE int64
		for i := range s.ticks {
			want += s.ticks[i]
			wantE += s.tickErrs[i]
		}
		for i := range tl.Completed {
			got += tl.Completed[i]
			gotE += tl.Errors[i]
		}
		if got != want || gotE != wantE {
			t.Errorf("%d ticks: totals %d/%d, want %d/%d", ticks, got, gotE, want, wantE)
		}
		if d := tl.IntervalS * float64(len(tl.Completed)); d < float64(ticks)*tick.Seconds()-1e-9 {
			t.Errorf("%d ticks: %v s covered", ticks, d)
		}
	}
}
