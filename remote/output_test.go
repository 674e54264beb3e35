package remote

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// heapPeak samples the live heap every few milliseconds until stop is
// called, which returns the highest figure seen (bytes).
func heapPeak() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
	}
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak.Load()
	}
}

const mib = 1 << 20

// TestOutputCapped: a command printing 300 MB (a real sshd, a real
// process) leaves deploylab with at most MaxOutput of it: the rest is
// counted, the Result and the error say "truncated", the heap stays small.
func TestOutputCapped(t *testing.T) {
	c := dialTest(t, testHost())
	runtime.GC()
	stop := heapPeak()
	r, err := c.Run(testCtx(t), "head -c 300000000 /dev/zero; echo oops >&2; head -c 3000000 /dev/zero >&2; exit 3")
	peak := stop()
	t.Logf("300 MB printed: peak heap %.1f MiB", float64(peak)/mib)
	var oe *OutputError
	if !errors.As(err, &oe) || fail.KindOf(err) != fail.Failed {
		t.Fatalf("got %v, want an *OutputError", err)
	}
	if !strings.Contains(err.Error(), "truncated") {
		t.Errorf("error does not say truncated: %v", err)
	}
	if len(r.Stdout) != MaxOutput || r.StdoutDropped != 300000000-MaxOutput {
		t.Errorf("stdout kept %d, dropped %d", len(r.Stdout), r.StdoutDropped)
	}
	if len(r.Stderr) != MaxStderr || r.StderrDropped != 3000005-MaxStderr {
		t.Errorf("stderr kept %d, dropped %d", len(r.Stderr), r.StderrDropped)
	}
	if r.ExitCode != 3 || !r.Truncated() {
		t.Errorf("exit %d truncated %v", r.ExitCode, r.Truncated())
	}
	if peak > 48*mib {
		t.Errorf("peak heap %.1f MiB for one flooding command, want < 48 MiB", float64(peak)/mib)
	}

	// Output under the cap is whole and no error.
	r, err = c.Run(testCtx(t), "head -c 1000000 /dev/zero")
	if err != nil || len(r.Stdout) != 1000000 || r.Truncated() {
		t.Fatalf("1 MB: %d bytes, %v", len(r.Stdout), err)
	}
}

// TestOutputCappedManyHosts: a 60-host run, 10 hosts at a time (the CLI's
// --forks default), where every host runs two commands at once that flood
// stdout and stderr, stays under 200 MB of heap.
func TestOutputCappedManyHosts(t *testing.T) {
	const hosts, forks, perHost = 60, 10, 2
	runtime.GC()
	stop := heapPeak()
	var truncated atomic.Int32
	sem := make(chan struct{}, forks)
	var wg sync.WaitGroup
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			h := testHost()
			h.Name = fmt.Sprintf("flood%02d", i)
			c, err := Dial(testCtx(t), h, baseOpts()...)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			var hw sync.WaitGroup
			for range perHost {
				hw.Add(1)
				go func() {
					defer hw.Done()
					r, err := c.Run(testCtx(t), "head -c 3000000 /dev/zero & head -c 300000 /dev/zero >&2; wait")
					var oe *OutputError
					if errors.As(err, &oe) && r.Truncated() {
						truncated.Add(1)
					} else {
						t.Errorf("got %v", err)
					}
				}()
			}
			hw.Wait()
		}()
	}
	wg.Wait()
	peak := stop()
	t.Logf("%d hosts (%d at a time) x %d flooding commands: peak heap %.1f MiB", hosts, forks, perHost, float64(peak)/mib)
	if truncated.Load() != hosts*perHost {
		t.Errorf("%d commands said truncated, want %d", truncated.Load(), hosts*perHost)
	}
	if peak > 200*mib {
		t.Errorf("peak heap %.1f MiB, want < 200 MiB", float64(peak)/mib)
	}
}

// TestOutputBudget: buffers sharing a host's budget keep at most the
// budget between them; what they cannot keep is counted; a finished
// command's share comes back.
func TestOutputBudget(t *testing.T) {
	b := newOutputBudget(10)
	x, y := newCapBuffer(8, b), newCapBuffer(8, b)
	x.Write([]byte("1234567"))
	y.Write([]byte("abcdef"))
	x.Write([]byte("89"))
	if string(x.buf) != "1234567" || string(y.buf) != "abc" || x.dropped != 2 || y.dropped != 3 {
		t.Fatalf("x %q (-%d), y %q (-%d)", x.buf, x.dropped, y.buf, y.dropped)
	}
	x.release()
	y.Write([]byte("ghijklm"))
	if string(y.buf) != "abcghijk" || y.dropped != 3+2 {
		t.Fatalf("after release: y %q (-%d)", y.buf, y.dropped)
	}
}
