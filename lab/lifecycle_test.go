package lab_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/deploylab/deploylab/inventory"
	"github.com/google/go-cmp/cmp"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
)

// TestBadOptions: out-of-range host counts and unknown variants fail with
// one usage line, before anything is made.
func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    lab.Options
		wantMsg string
	}{
		{"zero hosts", lab.Options{Hosts: 0}, "--hosts must be between 1 and 250, got 0"},
		{"500 hosts", lab.Options{Hosts: 500}, "--hosts must be between 1 and 250, got 500"},
		{"negative", lab.Options{Hosts: -1}, "--hosts must be between 1 and 250, got -1"},
		{"unknown variant", lab.Options{Hosts: 1, Variant: "python"}, `unknown lab variant "python"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Dir = t.TempDir()
			l, err := lab.Start(context.Background(), tc.opts)
			if err == nil {
				l.Stop(context.Background())
				t.Fatal("started")
			}
			if fail.KindOf(err) != fail.Usage {
				t.Errorf("kind %v, want Usage", fail.KindOf(err))
			}
			if err.Error() != tc.wantMsg {
				t.Errorf("message %q, want %q", err.Error(), tc.wantMsg)
			}
			if fail.HintOf(err) == "" {
				t.Error("no hint")
			}
			if ents, _ := os.ReadDir(tc.opts.Dir); len(ents) != 0 {
				t.Errorf("made files: %v", ents)
			}
		})
	}
}

// TestFilesAndLogins checks what start writes (modes, inventory,
// known_hosts) and every way in: deploy and root by key, deploy by
// password, the system ssh client with strict host key checking, Status.
func TestFilesAndLogins(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Hosts: 2})
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{l.KeyPath(), 0o600}, {l.PasswordPath(), 0o600}, {l.KeyPath() + ".pub", 0o644},
		{l.KnownHostsPath(), 0o644}, {l.InventoryPath(), 0o644}, {filepath.Join(l.Dir(), "lab.json"), 0o600},
	} {
		st, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, st.Mode().Perm(), f.mode)
		}
	}
	inv, err := inventory.Load(l.InventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	hosts := l.Hosts()
	if len(inv.Hosts) != len(hosts) {
		t.Fatalf("inventory has %d hosts, lab %d", len(inv.Hosts), len(hosts))
	}
	for i, h := range hosts {
		got := inv.Hosts[i]
		want := inventory.Host{Name: fmt.Sprintf("lab%d", i+1), Address: h.Address, Student: fmt.Sprintf("Lab Host %d", i+1),
			Vars: inventory.Vars{User: "deploy", Port: 22, Key: l.KeyPath(), KnownHosts: l.KnownHostsPath()}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("inventory host %d (-want +got):\n%s", i+1, diff)
		}
		if !regexp.MustCompile(`^10\.(7[7-9]|80)\.\d+\.2$`).MatchString(h.Address) {
			t.Errorf("address %q", h.Address)
		}
		if len(h.HostKeys) != 1 || !strings.HasPrefix(h.HostKeys[0], "ssh-ed25519 ") {
			t.Errorf("host keys %q", h.HostKeys)
		}
	}
	if hosts[0].Address == hosts[1].Address || hosts[0].HostKeys[0] == hosts[1].HostKeys[0] {
		t.Error("hosts share an address or a host key")
	}

	pw, _ := os.ReadFile(l.PasswordPath())
	password := strings.TrimSpace(string(pw))
	key, _ := os.ReadFile(l.KeyPath())
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, user string
		auth       ssh.AuthMethod
		want       string
	}{
		{"deploy by key", "deploy", ssh.PublicKeys(signer), "deploy"},
		{"root by key", "root", ssh.PublicKeys(signer), "root"},
		{"deploy by password", "deploy", ssh.Password(password), "deploy"},
	} {
		out, err := sshRun(t, l, hosts[1], c.user, c.auth, "id -un")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if out != c.want {
			t.Errorf("%s: id -un = %q", c.name, out)
		}
	}
	if _, err := sshRun(t, l, hosts[1], "root", ssh.Password(password), "true"); err == nil {
		t.Error("root logged in with deploy's password")
	}
	if _, err := sshRun(t, l, hosts[1], "deploy", ssh.Password("wrong"), "true"); err == nil {
		t.Error("a wrong password was accepted")
	}

	// The system ssh client, host key checking on, as `lab ssh N -- cmd` runs it.
	args, err := l.SSHArgs("2")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], append(args[1:], "--", "systemctl", "is-system-running")...).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "running" {
		t.Errorf("ssh: %v: %q", err, out)
	}
	cmd := exec.CommandContext(ctx, args[0], append(args[1:], "--", "exit 7")...)
	if err := cmd.Run(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 {
		t.Errorf("ssh exit code: %v", err)
	}
	var stdout bytes.Buffer
	code, err := l.Run(ctx, "lab1", "echo out; echo err >&2; exit 3", &stdout, os.Stderr)
	if err != nil || code != 3 || stdout.String() != "out\n" {
		t.Errorf("Run: code %d, err %v, stdout %q", code, err, stdout.String())
	}
	// SSH, as `deploylab lab ssh 1 -- cmd` calls it: stdin relayed, exit code kept.
	stdout.Reset()
	code, err = l.SSH(ctx, 1, []string{"tr", "a-z", "A-Z;", "exit", "5"}, strings.NewReader("hello\n"), &stdout, os.Stderr)
	if err != nil || code != 5 || stdout.String() != "HELLO\n" {
		t.Errorf("SSH: code %d, err %v, stdout %q", code, err, stdout.String())
	}
	if _, err := l.Run(ctx, "lab9", "true", nil, nil); fail.KindOf(err) != fail.Usage {
		t.Errorf("Run on lab9: %v", err)
	}

	sts, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if !s.Running || !s.Reachable || s.System != "running" {
			t.Errorf("status %+v", s)
		}
	}
}

func sshRun(t *testing.T, l *lab.Lab, h lab.Host, user string, auth ssh.AuthMethod, cmd string) (string, error) {
	t.Helper()
	hk, err := knownhosts.New(l.KnownHostsPath())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", net.JoinHostPort(h.Address, "22"), &ssh.ClientConfig{
		User: user, Auth: []ssh.AuthMethod{auth}, HostKeyCallback: hk, Timeout: 20 * time.Second,
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer s.Close()
	out, err := s.Output(cmd)
	return strings.TrimSpace(string(out)), err
}

// TestSecondStart: the same start again reuses the running lab; a
// different one is refused and leaves the running lab alone.
func TestSecondStart(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Hosts: 1})
	ctx := context.Background()
	again, err := lab.Start(ctx, lab.Options{Dir: l.Dir(), Hosts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if again.ID() != l.ID() {
		t.Errorf("not reused: id %s, was %s", again.ID(), l.ID())
	}
	for _, o := range []lab.Options{{Hosts: 2}, {Hosts: 1, Variant: lab.VariantNode}} {
		o.Dir = l.Dir()
		_, err := lab.Start(ctx, o)
		if fail.KindOf(err) != fail.Usage || !strings.Contains(fail.HintOf(err), "lab stop") {
			t.Errorf("%+v: err %v (hint %q), want a refusal with a hint to stop", o, err, fail.HintOf(err))
		}
	}
	sts, err := l.Status(ctx)
	if err != nil || len(sts) != 1 || sts[0].System != "running" {
		t.Errorf("after refusals: %+v, %v", sts, err)
	}
}

// TestCancelDuringStart cancels a start at each of its stages and checks
// it returns an interruption and leaves nothing behind.
func TestCancelDuringStart(t *testing.T) {
	labtest.Skip(t)
	for _, stage := range []string{"booting", "waiting for ssh"} {
		t.Run(stage, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			w := &cancelOn{stage: stage, cancel: cancel}
			l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: 3, Log: w})
			if err == nil {
				l.Stop(context.Background())
				t.Fatal("start was not interrupted")
			}
			if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Interrupted {
				t.Fatalf("err = %v, want an interruption", err)
			}
			id := w.id()
			if id == "" {
				t.Fatalf("no lab id in the log:\n%s", w.buf.String())
			}
			if left := lab.Leftovers(id, dir); len(left) > 0 {
				t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
			}
			if ents, _ := os.ReadDir(dir); len(ents) > 1 { // .lock may stay
				t.Errorf("files left in the lab dir: %v", ents)
			}
		})
	}
}

// cancelOn cancels when a log line contains stage, and remembers the log.
type cancelOn struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	stage  string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf.Write(p)
	if strings.Contains(string(p), c.stage) {
		c.cancel()
	}
	return len(p), nil
}

func (c *cancelOn) id() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := regexp.MustCompile(`lab id ([0-9a-f]+)`).FindStringSubmatch(c.buf.String())
	if m == nil {
		return ""
	}
	return m[1]
}

// TestStaleLab kills a lab's containers behind its back: status shows the
// hosts down, start cleans the dead lab up and starts afresh, and stop is
// idempotent.
func TestStaleLab(t *testing.T) {
	labtest.Skip(t)
	dir := t.TempDir()
	ctx := context.Background()
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	oldID := l.ID()
	t.Cleanup(func() { lab.StopDir(context.Background(), dir, nil) })
	killAll(t, dir)
	sts, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.Running || s.Reachable {
			t.Errorf("killed host reported up: %+v", s)
		}
	}
	// Start on the dead lab: cleans it and starts a new one.
	l2, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	if l2.ID() == oldID {
		t.Error("dead lab reused")
	}
	if left := lab.Leftovers(oldID, dir+"/nothing"); len(left) > 0 {
		t.Errorf("dead lab left:\n%s", strings.Join(left, "\n"))
	}
	// Kill again; stop cleans the stale state, twice.
	killAll(t, dir)
	for i := 0; i < 2; i++ {
		if err := lab.StopDir(ctx, dir, nil); err != nil {
			t.Fatalf("stop %d: %v", i+1, err)
		}
	}
	if left := lab.Leftovers(l2.ID(), dir); len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
	if _, err := lab.Open(dir); fail.KindOf(err) != fail.Usage {
		t.Errorf("open after stop: %v", err)
	}
}

// killAll SIGKILLs every process of the lab in dir, as a crash would.
func killAll(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "lab.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Hosts []struct {
			PID     int      `json:"pid"`
			Cgroups []string `json:"cgroups"`
		} `json:"hosts"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	for _, h := range st.Hosts {
		for _, cg := range h.Cgroups {
			filepathWalkProcs(cg, func(pid int) { syscall.Kill(pid, syscall.SIGKILL) })
		}
		syscall.Kill(h.PID, syscall.SIGKILL)
	}
	time.Sleep(500 * time.Millisecond)
}

func filepathWalkProcs(cg string, f func(int)) {
	filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "cgroup.procs" {
			return nil
		}
		fh, err := os.Open(p)
		if err != nil {
			return nil
		}
		defer fh.Close()
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			var pid int
			if _, err := fmt.Sscan(sc.Text(), &pid); err == nil {
				f(pid)
			}
		}
		return nil
	})
}

// TestLabsAtOnce starts two labs at the same time, as tests of different
// packages do: distinct addresses, both working.
func TestLabsAtOnce(t *testing.T) {
	labtest.Skip(t)
	var wg sync.WaitGroup
	labs := make([]*lab.Lab, 2)
	errs := make([]error, 2)
	for i := range labs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := t.TempDir()
			labs[i], errs[i] = lab.Start(context.Background(), lab.Options{Dir: dir, Hosts: 3})
			if errs[i] == nil {
				t.Cleanup(func() {
					if err := labs[i].Stop(context.Background()); err != nil {
						t.Error(err)
					}
					if left := lab.Leftovers(labs[i].ID(), dir); len(left) > 0 {
						t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
					}
				})
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, l := range labs {
		sts, err := l.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sts {
			if seen[s.Address] {
				t.Errorf("address %s given twice", s.Address)
			}
			seen[s.Address] = true
			if s.System != "running" {
				t.Errorf("%s %s: %+v", l.ID(), s.Name, s)
			}
		}
	}
}

// TestTenHosts starts ten hosts and logs the timings of start and stop.
func TestTenHosts(t *testing.T) {
	labtest.Skip(t)
	dir := t.TempDir()
	ctx := context.Background()
	t0 := time.Now()
	l, err := lab.Start(ctx, lab.Options{Dir: dir, Hosts: 10})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Since(t0)
	sts, err := l.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sts {
		if s.System != "running" {
			t.Errorf("%+v", s)
		}
	}
	t1 := time.Now()
	if err := l.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("10 hosts: start %s, stop %s", started.Round(10*time.Millisecond), time.Since(t1).Round(10*time.Millisecond))
	if left := lab.Leftovers(l.ID(), dir); len(left) > 0 {
		t.Errorf("left behind:\n%s", strings.Join(left, "\n"))
	}
}

// TestImage checks the cached base image: found at once when warm, an
// OS tree with sshd and the deploy user, and no host keys (each host
// makes its own).
func TestImage(t *testing.T) {
	labtest.Skip(t)
	ctx := context.Background()
	if _, err := lab.EnsureImage(ctx, "", lab.VariantBase, nil); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	dir, err := lab.EnsureImage(ctx, "", lab.VariantBase, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm EnsureImage: %s", time.Since(t0))
	for _, f := range []string{"usr/sbin/sshd", "usr/lib/systemd/systemd", "home/deploy", "etc/sudoers.d/deploylab", "etc/ssh/sshd_config.d/deploylab.conf"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	keys, _ := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	if len(keys) > 0 {
		t.Errorf("host keys in the shared image: %v", keys)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/machine-id")); len(b) != 0 {
		t.Errorf("machine-id in the shared image: %q", b)
	}
	if _, err := lab.EnsureImage(ctx, "", "python", nil); fail.KindOf(err) != fail.Usage {
		t.Errorf("unknown variant: %v", err)
	}
}

// TestImageBuildCancelled interrupts a real debootstrap mid-way (in a
// private cache) and checks that nothing is left: no temp tree, no mount,
// no debootstrap process.
func TestImageBuildCancelled(t *testing.T) {
	labtest.Skip(t)
	cache := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &afterLine{line: "debootstrap", after: 20 * time.Second, cancel: cancel}
	_, err := lab.EnsureImage(ctx, cache, lab.VariantBase, w)
	if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Interrupted {
		t.Fatalf("err = %v, want an interruption", err)
	}
	for _, sub := range []string{"tmp", "images"} {
		if ents, _ := os.ReadDir(filepath.Join(cache, sub)); len(ents) > 0 {
			t.Errorf("%s left: %v", sub, ents)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), cache) {
		t.Errorf("mounts left under %s", cache)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		if b, err := os.ReadFile(p); err == nil && strings.Contains(string(b), cache) {
			t.Errorf("process left: %s", strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// afterLine cancels some time after a log line contains line.
type afterLine struct {
	once   sync.Once
	line   string
	after  time.Duration
	cancel func()
}

func (a *afterLine) Write(p []byte) (int, error) {
	if strings.Contains(string(p), a.line) {
		a.once.Do(func() { time.AfterFunc(a.after, a.cancel) })
	}
	return len(p), nil
}
