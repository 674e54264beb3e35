// Package fleet runs one piece of work per host of a run: the inventory and
// --limit give the targets (Select), and Each visits them a bounded number at
// a time (--forks), each under its own time limit (--timeout), cancellable
// (Ctrl-C ends the run within Options.Grace even if a host's work does not
// return), with a panic in one host's work turned into that host's error, and
// each host's result handed to the caller as soon as it finishes, so it can
// be saved before the next one ends. up and the verbs, bench, grade and the
// lab's start all run through it.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/safetext"
)

// DefaultForks is the number of hosts worked on at once when
// Options.Forks is 0.
const DefaultForks = 10

// DefaultGrace is how long Each waits, after a host's time limit or a
// cancel, for that host's work to return before it gives the host up.
const DefaultGrace = 1500 * time.Millisecond

// ErrTimeout is the error of a host whose time limit ran out (wrapped with
// the limit: "timed out after 30s").
var ErrTimeout = errors.New("timed out")

// ErrAbandoned is wrapped in the error of a host whose work did not return
// within Options.Grace of its time limit or of a cancel: its goroutine is
// left behind and its result, when it comes, is dropped.
var ErrAbandoned = errors.New("the host's work did not stop")

// Options say how to run the hosts.
type Options struct {
	// Forks is how many hosts are worked on at once (DefaultForks when 0).
	Forks int
	// Timeout bounds each host's work (its context's deadline); 0 means
	// no limit other than the run's context.
	Timeout time.Duration
	// Grace is how long to wait for a host's work to return once its
	// time limit ran out or the run was cancelled (DefaultGrace when 0).
	Grace time.Duration
	// Name names item i in errors ("alu01: panic: ..."); nil means
	// "host <i+1>".
	Name func(i int) string
	// Start, if not nil, is called as item i's work starts (from the
	// item's goroutine).
	Start func(i int)
}

// Result is what became of one item.
type Result[R any] struct {
	// Index is the item's position in the run (0 to n-1).
	Index int
	// Value is what the work returned (its zero value when the work did
	// not run, panicked or was abandoned).
	Value R
	// Err is the work's error, or why it did not finish: ErrTimeout,
	// ErrAbandoned, a *PanicError or the run's cancellation (classified
	// fail.Interrupted).
	Err error
	// Elapsed is the time from the start of the item's work to its result.
	Elapsed time.Duration
	// Started is false for items never started because the run was
	// cancelled first.
	Started bool
	// Interrupted: the run was cancelled before this item finished.
	Interrupted bool
	// TimedOut: the item's own time limit ran out.
	TimedOut bool
	// Panicked: the work panicked (Err is a *PanicError).
	Panicked bool
}

// PanicError is a panic in one item's work, recovered.
type PanicError struct {
	// Value is the panic's value, printed and with control characters
	// escaped.
	Value string
	// Stack is the goroutine's stack at the panic.
	Stack string
}

func (e *PanicError) Error() string { return "internal error (panic): " + e.Value }

// Each runs work(ctx, i) for each i from 0 to n-1, at most o.Forks at once,
// started in order, each with a context that ends at o.Timeout or when ctx
// ends (options left zero come from WithDefaults). done, when not nil, gets each item's Result as soon as it is known:
// one call per item (never concurrently, in the order items finish), also
// for the items not started because ctx ended first. Each returns every
// Result in item order once all are known; after ctx ends that is within
// o.Grace (plus done's own time), even if some work ignores its context.
func Each[R any](ctx context.Context, n int, o Options, work func(ctx context.Context, i int) (R, error), done func(Result[R])) []Result[R] {
	o = withDefaults(ctx, o)
	forks := o.Forks
	if forks <= 0 {
		forks = DefaultForks
	}
	grace := o.Grace
	if grace <= 0 {
		grace = DefaultGrace
	}
	name := o.Name
	if name == nil {
		name = func(i int) string { return fmt.Sprintf("host %d", i+1) }
	}
	out := make([]Result[R], n)
	var mu sync.Mutex // serialises done and out
	finish := func(r Result[R]) {
		mu.Lock()
		defer mu.Unlock()
		out[r.Index] = r
		if done != nil {
			done(r)
		}
	}
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			for j := i; j < n; j++ {
				finish(Result[R]{Index: j, Interrupted: true,
					Err: fail.New(fail.Interrupted, "", fmt.Errorf("%s: not started: %w", name(j), ctx.Err()))})
			}
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			finish(runOne(ctx, i, o, grace, name, work))
		}()
	}
	wg.Wait()
	return out
}

// runOne runs item i's work in its own goroutine and waits for it, or for
// its deadline (or the run's cancel) plus grace.
func runOne[R any](ctx context.Context, i int, o Options, grace time.Duration, name func(int) string, work func(context.Context, int) (R, error)) Result[R] {
	hctx, cancel := ctx, context.CancelFunc(func() {})
	if o.Timeout > 0 {
		hctx, cancel = context.WithTimeout(ctx, o.Timeout)
	}
	defer cancel()
	start := time.Now()
	if o.Start != nil {
		o.Start(i)
	}
	type ret struct {
		v     R
		err   error
		panic *PanicError
	}
	ch := make(chan ret, 1) // buffered: an abandoned work still returns
	go func() {
		var r ret
		defer func() {
			if p := recover(); p != nil {
				r = ret{panic: &PanicError{Value: safetext.Line(fmt.Sprint(p)), Stack: string(debug.Stack())}}
			}
			ch <- r
		}()
		r.v, r.err = work(hctx, i)
	}()
	res := Result[R]{Index: i, Started: true}
	take := func(r ret) {
		res.Value, res.Err = r.v, r.err
		if r.panic != nil {
			res.Panicked = true
			res.Err = fail.New(fail.Failed, "this is a bug in deploylab: please report it", fmt.Errorf("%s: %w", name(i), r.panic))
		}
	}
	select {
	case r := <-ch:
		take(r)
	case <-hctx.Done():
		t := time.NewTimer(grace)
		select {
		case r := <-ch:
			t.Stop()
			take(r)
		case <-t.C:
			res.Err = fmt.Errorf("%s: %w: %w", name(i), ErrAbandoned, hctx.Err())
		}
	}
	res.Elapsed = time.Since(start)
	switch {
	case res.Err == nil || res.Panicked:
	case ctx.Err() != nil:
		res.Interrupted = true
		if fail.KindOf(res.Err) == fail.Failed {
			res.Err = fail.New(fail.Interrupted, "", res.Err)
		}
	case o.Timeout > 0 && hctx.Err() != nil:
		res.TimedOut = true
		if !errors.Is(res.Err, ErrTimeout) {
			res.Err = timeoutError(name(i), o.Timeout, res.Err)
		}
	}
	return res
}

// timeoutError says that a host ran out of time, keeping what it was doing.
func timeoutError(name string, limit time.Duration, err error) error {
	hint := "raise --timeout if the host is only slow"
	msg := strings.TrimPrefix(err.Error(), name+": ")
	return fail.New(fail.Unreachable, hint, &timeoutErr{msg: fmt.Sprintf("%s: %s after %s (%s)", name, ErrTimeout, limit, msg), err: err})
}

type timeoutErr struct {
	msg string
	err error
}

func (e *timeoutErr) Error() string { return e.msg }
func (e *timeoutErr) Unwrap() []error {
	return []error{ErrTimeout, e.err}
}

// Every calls f once, then again every interval (counted from each call's
// start) until count calls were made (0: until ctx ends) or f fails. It
// returns f's error, or nil when ctx ends.
func Every(ctx context.Context, count int, interval time.Duration, f func(ctx context.Context, i int) error) error {
	for i := 0; count == 0 || i < count; i++ {
		start := time.Now()
		if err := f(ctx, i); err != nil || ctx.Err() != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if count != 0 && i == count-1 {
			break
		}
		t := time.NewTimer(max(interval-time.Since(start), 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

type defaultsKey struct{}

// WithDefaults returns a context whose runs use o's Forks, Timeout and Grace
// where their own Options leave them zero. A command sets the run's
// --forks and --timeout once, on the context it passes down, and every
// library's host loop (deploy's engine, bench, grade) honours them without
// threading them through each options struct.
func WithDefaults(ctx context.Context, o Options) context.Context {
	return context.WithValue(ctx, defaultsKey{}, o)
}

// withDefaults fills o's zero Forks, Timeout and Grace from ctx's defaults.
func withDefaults(ctx context.Context, o Options) Options {
	d, _ := ctx.Value(defaultsKey{}).(Options)
	if o.Forks <= 0 {
		o.Forks = d.Forks
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.Grace <= 0 {
		o.Grace = d.Grace
	}
	return o
}
