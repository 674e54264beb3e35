// Package labtest starts a lab (package lab) for a Go test: hosts in a
// state directory under t.TempDir(), stopped when the test ends, with a
// check that nothing of them is left on the machine.
//
// It skips the test only when DEPLOYLAB_SKIP_LAB=1; otherwise a lab that
// cannot start (not root, systemd-container or debootstrap missing) fails
// the test with the reason and what to install.
package labtest

import (
	"bytes"
	"context"
	"github.com/deploylab/deploylab/internal/need"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/remote"
)

// Options say what lab a test needs.
type Options struct {
	// Hosts is the number of hosts; 0 means 1.
	Hosts int
	// Variant is lab.VariantBase ("" too) or lab.VariantNode.
	Variant string
}

// Skip skips t if DEPLOYLAB_SKIP_LAB=1 (an explicit, logged choice, e.g.
// test.sh's -race run), or under -short outside CI (a newcomer's machine
// with only Go: lab hosts need root, systemd-container and debootstrap, and
// minutes). Otherwise a lab that cannot start fails the test.
func Skip(t testing.TB) {
	t.Helper()
	if os.Getenv("DEPLOYLAB_SKIP_LAB") == "1" {
		// scripts/test.sh runs deploy's, grade's and bench's lab tests by
		// name (-run Lab) and the rest of those packages with
		// DEPLOYLAB_SKIP_LAB=1: a lab test named otherwise would run in
		// neither.
		if need.CI() && !strings.Contains(t.Name(), "Lab") {
			t.Fatalf("%s needs lab hosts but its name lacks \"Lab\": scripts/test.sh runs lab tests by name (-run Lab); rename it", t.Name())
		}
		t.Skip("DEPLOYLAB_SKIP_LAB=1: skipping a test that needs lab hosts")
	}
	need.Slow(t, "a test that needs lab hosts (root, systemd-container, debootstrap)")
}

// Start starts a lab for t and registers its Stop (and a check that it
// left nothing behind) with t.Cleanup. Building the image the first time
// takes a few minutes; later starts take a few seconds.
func Start(t testing.TB, opts Options) *lab.Lab {
	t.Helper()
	Skip(t)
	if opts.Hosts == 0 {
		opts.Hosts = 1
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w := &lineLog{t: t}
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: opts.Hosts, Variant: opts.Variant, Log: w})
	w.done()
	if err != nil {
		if h := fail.HintOf(err); h != "" {
			t.Fatalf("lab start: %v (hint: %s)", err, h)
		}
		t.Fatalf("lab start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			t.Errorf("lab stop: %v", err)
		}
		if left := lab.Leftovers(l.ID(), dir); len(left) > 0 {
			t.Errorf("lab stop left behind:\n%s", strings.Join(left, "\n"))
		}
	})
	return l
}

// lineLog passes whole lines to t.Log while Start runs.
type lineLog struct {
	mu   sync.Mutex
	t    testing.TB
	buf  bytes.Buffer
	over bool
}

func (w *lineLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.over {
		return len(p), nil
	}
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.WriteString(line)
			break
		}
		w.t.Log(strings.TrimRight(line, "\n"))
	}
	return len(p), nil
}

func (w *lineLog) done() {
	w.mu.Lock()
	w.over = true
	w.mu.Unlock()
}

// RemoteHost is the remote.Host for a lab host: the lab key, the lab's
// known_hosts with strict checking (no AcceptNew).
func RemoteHost(h lab.Host) remote.Host {
	return remote.Host{
		Name: h.Name, Address: h.Address, Port: h.Port, User: h.User,
		KeyFiles: []string{h.KeyPath}, KnownHostsFile: h.KnownHostsPath,
	}
}

// Dial connects to a lab host with package remote, ignoring the user's
// ~/.ssh/config and agent, and closes the client when the test ends.
func Dial(t testing.TB, h lab.Host) *remote.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := remote.Dial(ctx, RemoteHost(h), remote.WithSSHConfig(""), remote.WithAgent(""))
	if err != nil {
		t.Fatalf("dial %s: %v", h.Name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
