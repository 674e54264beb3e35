package observe

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runLocal runs the script with sh on this machine, as a host would, and
// parses it.
func runLocal(t *testing.T, o Options, env ...string) (Host, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-s")
	cmd.Stdin = bytes.NewReader(Script(o))
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("probe wrote to stderr:\n%s", stderr.String())
	}
	h, err := Parse(out)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	if !h.Complete {
		t.Errorf("output incomplete:\n%s", out)
	}
	return h, out
}

// TestRunLocalFacts gathers this machine's facts and checks them against
// what Go sees.
func TestRunLocalFacts(t *testing.T) {
	target := filepath.Join(t.TempDir(), "not", "yet", "there")
	h, _ := runLocal(t, Options{Parts: FactsParts, Dirs: []string{target}})
	var uts syscall.Utsname
	if err := syscall.Uname(&uts); err != nil {
		t.Fatal(err)
	}
	var kernel []byte
	for _, c := range uts.Release {
		if c == 0 {
			break
		}
		kernel = append(kernel, byte(c))
	}
	hostname, _ := os.Hostname()
	wantSudo := "root"
	if os.Getuid() != 0 {
		wantSudo = h.Sudo // depends on the machine
	}
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"arch", h.Arch == runtime.GOARCH},
		{"cpus", h.CPUs == runtime.NumCPU()},
		{"kernel", h.Kernel == string(kernel)},
		{"hostname", h.Hostname == hostname},
		{"os", h.OSID != "" && h.OSVersion != "" && h.OSName != ""},
		{"memory", h.MemTotal > 64<<20},
		{"uid", h.UID == os.Getuid()},
		{"sudo", h.Sudo == wantSudo},
		{"disk /", h.DiskFree["/"] > 0},
		{"disk target", h.DiskFree[target] > 0},
		{"init", h.Init != ""},
		{"listeners", h.ListenersFrom != ""},
		{"no processes asked", h.Processes == nil && h.Units == nil && h.HTTP == nil},
	} {
		if !c.ok {
			t.Errorf("%s wrong: %+v", c.name, h.Facts)
		}
	}
	if node, err := exec.LookPath("node"); err == nil {
		tl, ok := h.Tool("node")
		out, _ := exec.Command(node, "--version").Output()
		if !ok || tl.Version != strings.TrimSpace(string(out)) {
			t.Errorf("node: %+v, node says %q", tl, out)
		}
	}
}

// TestRunNoUserPrograms: the script never runs a program from the caller's
// PATH or from a home, even when they come first: programs there are
// reported, not run.
func TestRunNoUserPrograms(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "ran")
	evil := filepath.Join(dir, "evil")
	home := filepath.Join(dir, "home")
	bins := filepath.Join(home, ".local", "bin")
	nvm := filepath.Join(home, ".nvm", "versions", "node", "v99.1.0", "bin")
	trap := "#!/bin/sh\necho \"$0 $*\" >>" + mark + "\n"
	for _, d := range []string{evil, bins, nvm} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{
		filepath.Join(evil, "ss"), filepath.Join(evil, "ps"), filepath.Join(evil, "systemctl"), filepath.Join(evil, "node"),
		filepath.Join(evil, "curl"), filepath.Join(evil, "id"), filepath.Join(evil, "pm2"), filepath.Join(evil, "uname"),
		filepath.Join(bins, "ab"), filepath.Join(bins, "wrk"), filepath.Join(bins, "siege"), filepath.Join(nvm, "autocannon"),
	} {
		if err := os.WriteFile(p, []byte(trap), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h, _ := runLocal(t, Options{Parts: []Part{PartFacts, PartListeners, PartTools, PartProcesses, PartPM2, PartUnits}},
		"PATH="+evil+":"+os.Getenv("PATH"), "HOME="+home)
	if b, err := os.ReadFile(mark); err == nil {
		t.Errorf("the script ran programs from PATH or a home:\n%s", b)
	}
	if h.User == "" || h.CPUs < 1 || len(h.Processes) < 2 {
		t.Errorf("facts: %+v, %d processes", h.Facts, len(h.Processes))
	}
	for _, name := range []string{"ab", "siege", "autocannon"} {
		if _, err := exec.LookPath(name); err == nil {
			continue // installed on this machine: found there first
		}
		tl, ok := h.Tool(name)
		if !ok || !strings.HasPrefix(tl.Path, home+"/") || tl.Version != "" {
			t.Errorf("%s: %+v (%v), want it reported from the home, not run", name, tl, ok)
		}
	}
}
