package deploy

import (
	"context"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/hostile"
	"github.com/deploylab/deploylab/remote"
)

// TestUpHostile runs up over VMs that flood output, stall, or lie with
// escape sequences (they run nothing: no normal host here, since a normal
// in-process host would deploy onto this machine; the lab tests cover up on
// a real host). up ends, every host's report says what went wrong, no task
// line holds a control character, and memory stays bounded.
func TestUpHostile(t *testing.T) {
	var targets []Target
	for _, m := range []hostile.Mode{hostile.Flood, hostile.Stall, hostile.Liar} {
		s, err := hostile.Start(m, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		targets = append(targets, Target{Name: "vm-" + m.String(), Host: remote.Host{Name: "vm-" + m.String(),
			Address: "127.0.0.1", Port: s.Port, User: "deploy", KnownHostsFile: s.KnownHosts, KeyFiles: []string{},
			Timeout: 10 * time.Second}})
	}
	dial := func(ctx context.Context, h remote.Host) (remote.Executor, error) {
		return remote.Dial(ctx, h, remote.WithSSHConfig(""), remote.WithAgent(""))
	}
	const limit = 30 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	rc, err := Up(ctx, targets, UpOptions{Dial: dial})
	close(stop)
	t.Logf("up ended after %s, peak heap %.1f MiB, err %v", time.Since(start).Round(time.Millisecond), float64(peak.Load())/(1<<20), err)
	if d := time.Since(start); d > limit+10*time.Second {
		t.Errorf("up took %s", d)
	}
	if p := peak.Load(); p > 200<<20 {
		t.Errorf("peak heap %.1f MiB", float64(p)/(1<<20))
	}
	if rc == nil {
		t.Fatal("no recap")
	}
	width := HostWidth([]string{"vm-flood", "vm-stall", "vm-liar"})
	for _, h := range rc.Hosts {
		if h == nil {
			t.Error("a host has no report")
			continue
		}
		if h.Error == "" && h.Failed == 0 && h.Unreachable == 0 {
			t.Errorf("%s: no failure reported: %+v", h.Host, h)
		}
		for _, r := range h.Tasks {
			line := TaskLine(h.Host, width, r)
			t.Log(line)
			if strings.ContainsAny(line, "\x1b\r\a\v") {
				t.Errorf("task line holds control characters: %q", line)
			}
		}
	}
}
