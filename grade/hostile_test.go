package grade

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/hostile"
	"github.com/deploylab/deploylab/remote"
)

// hostileTarget starts a host in mode and returns its target.
func hostileTarget(t *testing.T, mode hostile.Mode) Target {
	t.Helper()
	s, err := hostile.Start(mode, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	name := "vm-" + mode.String()
	return Target{
		Host: remote.Host{Name: name, Address: "127.0.0.1", Port: s.Port, User: "deploy",
			KnownHostsFile: s.KnownHosts, KeyFiles: []string{}, Timeout: 10 * time.Second},
		Student: gradebook.Student{Name: "Alumno " + mode.String(), Email: mode.String() + "@example.org", Host: name},
	}
}

func hostileDial(ctx context.Context, h remote.Host) (Runner, error) {
	c, err := remote.Dial(ctx, h, remote.WithSSHConfig(""), remote.WithAgent(""))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// notasRows reads the Notas sheet by host, and checks that no cell of any
// sheet holds a control character (newline and tab aside).
func notasRows(t *testing.T, path string) map[string][]string {
	t.Helper()
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	for _, sh := range x.GetSheetList() {
		rows, err := x.GetRows(sh)
		if err != nil {
			t.Fatal(err)
		}
		for rn, row := range rows {
			for cn, v := range row {
				for _, r := range v {
					if r != '\n' && r != '\t' && (unicode.IsControl(r) || r == unicode.ReplacementChar || (r >= 0x202a && r <= 0x202e)) {
						t.Errorf("sheet %s row %d col %d: %q in %q", sh, rn+1, cn+1, r, v)
						break
					}
				}
			}
		}
	}
	rows, err := x.GetRows(gradebook.SheetNotas)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, r := range rows[1:] {
		out[r[3]] = r
	}
	return out
}

// TestHostileClass grades a class where one VM is normal and the others
// flood output, stall, lie with escape sequences, or have processes named
// with control characters, a bogus ss and a broken pm2 jlist: the run ends,
// nothing panics, the normal host's row is what it is when graded alone,
// each hostile row says what went wrong, no cell or line holds a control
// character, and memory stays bounded.
func TestHostileClass(t *testing.T) {
	r := rubricForTest(t)
	// Over the 2 MiB cap, small enough to be sent quickly under -race.
	hostile.FloodBytes = 8 << 20
	normal := hostileTarget(t, hostile.Normal)
	alone := filepath.Join(t.TempDir(), "alone.xlsx")
	if _, err := Run(context.Background(), Options{Rubric: r, Out: alone, Targets: []Target{normal}, Dial: hostileDial,
		HostTimeout: 60 * time.Second}); err != nil {
		t.Fatalf("normal host alone: %v", err)
	}
	want := notasRows(t, alone)[normal.Student.Host]

	targets := []Target{normal}
	for _, m := range []hostile.Mode{hostile.Tricky, hostile.Flood, hostile.Stall, hostile.Liar} {
		targets = append(targets, hostileTarget(t, m))
	}
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	var warn bytes.Buffer
	var progress []string
	var mu sync.Mutex

	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
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
	const hostTimeout = 40 * time.Second
	start := time.Now()
	sum, err := Run(context.Background(), Options{Rubric: r, Out: out, Targets: targets, Dial: hostileDial,
		HostTimeout: hostTimeout, Warn: &warn, Forks: 10,
		Progress: func(h HostResult) {
			mu.Lock()
			progress = append(progress, fmt.Sprintf("%s: %s", h.Row.Host, h.Row.Scorecard.Reason))
			mu.Unlock()
		}})
	close(stop)
	<-sampled
	t.Logf("graded in %s, peak heap %.1f MiB; error: %v", time.Since(start).Round(time.Millisecond), float64(peak.Load())/(1<<20), err)
	if sum == nil {
		t.Fatalf("no summary: %v", err)
	}
	if d := time.Since(start); d > hostTimeout+30*time.Second {
		t.Errorf("took %s with a %s limit per host", d, hostTimeout)
	}
	if p := peak.Load(); p > 200<<20 {
		t.Errorf("peak heap %.1f MiB, want < 200 MiB", float64(p)/(1<<20))
	}
	if err != nil && strings.ContainsAny(err.Error(), "\x1b\r\a") {
		t.Errorf("the run's error holds terminal control characters: %q", err)
	}
	if strings.ContainsAny(warn.String(), "\x1b\r\a") {
		t.Errorf("warnings hold control characters: %q", warn.String())
	}

	rows := notasRows(t, out)
	got := rows[normal.Student.Host]
	if len(got) < 12 || len(want) < 12 || strings.Join(got[4:12], "|") != strings.Join(want[4:12], "|") {
		t.Errorf("the normal host's row changed with hostile neighbours:\n alone %q\n class %q", want, got)
	}
	says := map[hostile.Mode]string{hostile.Flood: "truncated", hostile.Stall: "timed out"}
	for _, tg := range targets[1:] {
		row := rows[tg.Student.Host]
		if len(row) < 5 {
			t.Errorf("%s: no row (%q)", tg.Student.Host, row)
			continue
		}
		t.Logf("%s: %s", tg.Student.Host, row[4])
		mode := strings.TrimPrefix(tg.Student.Host, "vm-")
		for m, word := range says {
			if m.String() == mode && !strings.Contains(row[4], word) {
				t.Errorf("%s: Estado %q does not say %q", tg.Student.Host, row[4], word)
			}
		}
	}
	for _, p := range progress {
		t.Log("progress: " + p)
	}
}
