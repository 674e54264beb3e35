package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// gate lets a test hold items' work until it says so, so that concurrency
// is asserted by counting, never by sleeping.
type gate struct {
	mu       sync.Mutex
	running  int
	peak     int
	started  []int
	release  chan struct{}
	arrivals chan int
}

func newGate(n int) *gate {
	return &gate{release: make(chan struct{}), arrivals: make(chan int, n)}
}

func (g *gate) work(ctx context.Context, i int) (int, error) {
	g.mu.Lock()
	g.running++
	g.peak = max(g.peak, g.running)
	g.started = append(g.started, i)
	g.mu.Unlock()
	g.arrivals <- i
	<-g.release
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
	return i * 10, nil
}

func TestEachBoundsForks(t *testing.T) {
	for _, forks := range []int{1, 3, 20} {
		t.Run(fmt.Sprint(forks), func(t *testing.T) {
			const n = 12
			g := newGate(n)
			var results []Result[int]
			done := make(chan []Result[int])
			go func() {
				done <- Each(context.Background(), n, Options{Forks: forks}, g.work, func(r Result[int]) { results = append(results, r) })
			}()
			// The first wave: exactly min(forks, n) items arrive before any
			// is released; then release them all.
			want := min(forks, n)
			for range want {
				<-g.arrivals
			}
			select {
			case i := <-g.arrivals:
				t.Fatalf("item %d started while %d were running (forks %d)", i, want, forks)
			case <-time.After(50 * time.Millisecond):
			}
			close(g.release)
			out := <-done
			if g.peak != want {
				t.Errorf("peak %d at once, want %d", g.peak, want)
			}
			if len(out) != n || len(results) != n {
				t.Fatalf("%d results, %d streamed, want %d", len(out), len(results), n)
			}
			for i, r := range out {
				if r.Index != i || r.Value != i*10 || r.Err != nil || !r.Started {
					t.Errorf("result %d = %+v", i, r)
				}
			}
			if forks == 1 && !slices.IsSorted(g.started) {
				t.Errorf("forks 1: started out of order: %v", g.started)
			}
		})
	}
}

// A result is streamed as soon as its item finishes, before slower ones.
func TestEachStreamsAsEachFinishes(t *testing.T) {
	slow := make(chan struct{})
	var order []int
	seenFast := make(chan struct{})
	Each(context.Background(), 2, Options{Forks: 2}, func(ctx context.Context, i int) (string, error) {
		if i == 0 {
			<-slow // item 0 waits until item 1's result was streamed
		}
		return fmt.Sprint(i), nil
	}, func(r Result[string]) {
		order = append(order, r.Index)
		if r.Index == 1 {
			close(seenFast)
			close(slow)
		}
	})
	select {
	case <-seenFast:
	default:
		t.Fatal("item 1's result was never streamed")
	}
	if !slices.Equal(order, []int{1, 0}) {
		t.Errorf("streamed in order %v, want [1 0] (as they finished)", order)
	}
}

func TestEachRecoversPanics(t *testing.T) {
	var streamed atomic.Int32
	out := Each(context.Background(), 3, Options{Forks: 3, Name: func(i int) string { return fmt.Sprintf("alu%02d", i+1) }},
		func(ctx context.Context, i int) (string, error) {
			if i == 1 {
				var fields []string
				_ = fields[5] // index out of range, as a parser of host output could
			}
			return "ok", nil
		}, func(Result[string]) { streamed.Add(1) })
	if streamed.Load() != 3 {
		t.Errorf("%d results streamed, want 3", streamed.Load())
	}
	for i, r := range out {
		if i == 1 {
			var pe *PanicError
			if !r.Panicked || !errors.As(r.Err, &pe) {
				t.Fatalf("item 1: %+v, want a recovered panic", r)
			}
			if !strings.HasPrefix(r.Err.Error(), "alu02: internal error (panic): runtime error: index out of range") {
				t.Errorf("item 1's error %q", r.Err)
			}
			if !strings.Contains(pe.Stack, "fleet.TestEachRecoversPanics") {
				t.Errorf("stack does not show where it panicked:\n%s", pe.Stack)
			}
			continue
		}
		if r.Err != nil || r.Value != "ok" {
			t.Errorf("item %d: %+v, want ok: one panic must not touch the others", i, r)
		}
	}
}

func TestEachTimeout(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	out := Each(context.Background(), 3, Options{Forks: 3, Timeout: 20 * time.Millisecond, Grace: 20 * time.Millisecond},
		func(ctx context.Context, i int) (int, error) {
			switch i {
			case 0: // honours its context
				<-ctx.Done()
				return 0, fmt.Errorf("reading facts: %w", ctx.Err())
			case 1: // ignores it: given up after the grace
				<-hold
				return 1, nil
			}
			return 2, nil
		}, nil)
	for i, want := range []string{
		"host 1: timed out after 20ms (reading facts: context deadline exceeded)",
		"host 2: timed out after 20ms (the host's work did not stop: context deadline exceeded)",
		"",
	} {
		r := out[i]
		got := ""
		if r.Err != nil {
			got = r.Err.Error()
		}
		if got != want {
			t.Errorf("item %d: error %q, want %q", i, got, want)
		}
		if want != "" && (!r.TimedOut || !errors.Is(r.Err, context.DeadlineExceeded)) {
			t.Errorf("item %d: TimedOut %v, err %v: want a timeout", i, r.TimedOut, r.Err)
		}
		if r.Interrupted {
			t.Errorf("item %d marked interrupted without a cancel", i)
		}
	}
	if !errors.Is(out[0].Err, ErrTimeout) || fail.KindOf(out[0].Err) != fail.Unreachable {
		t.Errorf("a timeout is ErrTimeout of kind Unreachable: %v (%v)", out[0].Err, fail.KindOf(out[0].Err))
	}
	if !errors.Is(out[1].Err, ErrAbandoned) {
		t.Errorf("item 2 not ErrAbandoned: %v", out[1].Err)
	}
}

// After a cancel, Each returns within the grace even when a host's work
// never returns; the items not started are reported, none twice.
func TestEachCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	hold := make(chan struct{})
	defer close(hold)
	oneStarted := make(chan struct{})
	var mu sync.Mutex
	seen := map[int]int{}
	ret := make(chan []Result[int])
	go func() {
		ret <- Each(ctx, 10, Options{Forks: 2, Grace: 50 * time.Millisecond}, func(ctx context.Context, i int) (int, error) {
			switch i {
			case 0:
				<-oneStarted
				cancel()
				<-ctx.Done()
				return 0, ctx.Err()
			case 1:
				close(oneStarted)
				<-hold // never returns during the test
			}
			return i, nil
		}, func(r Result[int]) {
			mu.Lock()
			seen[r.Index]++
			mu.Unlock()
		})
	}()
	var out []Result[int]
	select {
	case out = <-ret:
	case <-time.After(10 * time.Second):
		t.Fatal("Each did not return after a cancel with a stuck host")
	}
	for i := range 10 {
		if seen[i] != 1 {
			t.Errorf("item %d streamed %d times, want once", i, seen[i])
		}
		r := out[i]
		if r.Index != i || !r.Interrupted || fail.KindOf(r.Err) != fail.Interrupted {
			t.Errorf("item %d: %+v (%v), want interrupted", i, r, fail.KindOf(r.Err))
		}
	}
	if !out[0].Started || !out[1].Started || out[9].Started {
		t.Errorf("started: 0 %v, 1 %v, 9 %v; want the first two only", out[0].Started, out[1].Started, out[9].Started)
	}
	if !errors.Is(out[1].Err, ErrAbandoned) {
		t.Errorf("stuck item: %v, want ErrAbandoned", out[1].Err)
	}
}

func TestWithDefaults(t *testing.T) {
	ctx := WithDefaults(context.Background(), Options{Forks: 1, Timeout: time.Minute})
	var deadline time.Time
	var peak, running atomic.Int32
	Each(ctx, 3, Options{}, func(ctx context.Context, i int) (int, error) {
		n := running.Add(1)
		defer running.Add(-1)
		if n > peak.Load() {
			peak.Store(n)
		}
		if i == 0 {
			deadline, _ = ctx.Deadline()
		}
		return 0, nil
	}, nil)
	if peak.Load() != 1 {
		t.Errorf("peak %d, want the context's forks 1", peak.Load())
	}
	if deadline.IsZero() {
		t.Error("no deadline: the context's timeout was not used")
	}
}

func TestEvery(t *testing.T) {
	var calls []int
	err := Every(context.Background(), 3, time.Millisecond, func(ctx context.Context, i int) error {
		calls = append(calls, i)
		return nil
	})
	if err != nil || !slices.Equal(calls, []int{0, 1, 2}) {
		t.Errorf("calls %v, err %v", calls, err)
	}
	boom := errors.New("boom")
	if err := Every(context.Background(), 0, time.Millisecond, func(ctx context.Context, i int) error {
		if i == 2 {
			return boom
		}
		return nil
	}); err != boom {
		t.Errorf("err %v, want boom", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := Every(ctx, 0, time.Hour, func(ctx context.Context, i int) error {
		cancel()
		return nil
	}); err != nil {
		t.Errorf("cancelled: %v, want nil", err)
	}
}
