package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/deploylab/deploylab/internal/need"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/golden"
	"github.com/deploylab/deploylab/payload/sumserver"
	"github.com/deploylab/deploylab/remote"
)

func TestUnitFiles(t *testing.T) {
	d, err := NewDeployment(DeploymentOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range d.Services {
		golden.Check(t, filepath.Join("testdata", s.Unit()), []byte(string(d.UnitFile(s))))
	}
	// Ports and instances reach ExecStart.
	d, err = NewDeployment(DeploymentOptions{Port: 8080, ClusterPort: 8081, Instances: -1})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := d.Service("sumcluster")
	if u := string(d.UnitFile(s)); !strings.Contains(u, "ExecStart=/opt/deploylab/bin/sumcluster --port 8081 --instances -1\n") {
		t.Errorf("unit:\n%s", u)
	}
}

// TestUnitFilesVerify runs systemd-analyze verify on the rendered units
// on this machine, with the programs in place as stand-ins.
func TestUnitFilesVerify(t *testing.T) {
	need.Tool(t, "systemd-analyze", "install the Debian package systemd")
	d, _ := NewDeployment(DeploymentOptions{})
	dir := t.TempDir()
	d.Root = dir // the ExecStart paths must exist
	var units []string
	for _, s := range d.Services {
		if err := os.MkdirAll(filepath.Dir(d.BinPath(s.Program)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(d.BinPath(s.Program), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, s.Unit())
		if err := os.WriteFile(p, d.UnitFile(s), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify"}, units...)...).CombinedOutput()
	var mine []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "deploylab-") {
			mine = append(mine, line)
		}
	}
	if err != nil || len(mine) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

func TestNewDeploymentErrors(t *testing.T) {
	tests := []struct {
		o    DeploymentOptions
		want string
	}{
		{DeploymentOptions{Port: 70000}, "--port 70000 is out of range"},
		{DeploymentOptions{ClusterPort: 80}, "--cluster-port 80 is a privileged port: the servers run unprivileged"},
		{DeploymentOptions{Port: 4000, ClusterPort: 4000}, "--port and --cluster-port are both 4000"},
		{DeploymentOptions{Instances: -2}, "--instances -2 is out of range"},
		{DeploymentOptions{Supervisor: "upstart"}, `supervisor "upstart" is not supported`},
	}
	for _, tt := range tests {
		_, err := NewDeployment(tt.o)
		if err == nil || err.Error() != tt.want || fail.KindOf(err) != fail.Usage {
			t.Errorf("NewDeployment(%+v) = %v, want usage error %q", tt.o, err, tt.want)
		}
	}
}

// appServer serves the practice's app (package sumserver) on loopback.
func appServer(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sumserver.NewHandler(sumserver.Options{})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// freePort is a loopback port nothing listens on.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

// TestProbe runs the verify script on this machine (remote.Local) against
// the app on loopback, with curl and with bash's /dev/tcp.
func TestProbe(t *testing.T) {
	need.Tool(t, "curl", "install the Debian package curl")
	up := appServer(t)
	down := freePort(t)
	wrong := func() int {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Cannot GET "+r.URL.Path, http.StatusNotFound)
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().(*net.TCPAddr).Port
	}()
	for _, via := range []string{"curl", "bash"} {
		t.Run(via, func(t *testing.T) {
			probeForce = map[string]string{"curl": "", "bash": "bash"}[via]
			t.Cleanup(func() { probeForce = "" })
			res, err := ProbeOnce(context.Background(), &remote.Local{}, []int{up, down, wrong})
			if err != nil {
				t.Fatal(err)
			}
			if p := res[up]; !p.OK() || p.Via != via {
				t.Errorf("app: %+v, want OK via %s", p, via)
			}
			if p := res[down]; p.OK() || p.Problem() != "no answer (connection refused or timed out)" {
				t.Errorf("nothing listening: %+v, problem %q", p, p.Problem())
			}
			if p := res[wrong]; p.OK() || !strings.Contains(p.Problem(), `GET / answered 404 "Cannot GET /"`) {
				t.Errorf("wrong app: %+v, problem %q", p, p.Problem())
			}
		})
	}
}

// TestRun runs the engine on "hosts" that are this machine (remote.Local)
// and one that cannot be reached (a closed loopback port).
func TestRun(t *testing.T) {
	down := freePort(t)
	var running, maxRunning atomic.Int64
	tasks := []Task[struct{}]{
		{"first", func(ctx context.Context, h *HostRun, _ *struct{}) TaskResult {
			n := running.Add(1)
			defer running.Add(-1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
			time.Sleep(50 * time.Millisecond)
			r, err := h.Exec.Run(ctx, "echo "+h.Name)
			if err != nil {
				return Fail(err)
			}
			return Ok("said %s", strings.TrimSpace(string(r.Stdout)))
		}},
		{"second", func(ctx context.Context, h *HostRun, _ *struct{}) TaskResult {
			if h.Name == "bad" {
				return Fail(fail.Errorf(fail.Failed, "fix it", "bad host"))
			}
			if h.Check {
				return Change([]string{"x"}, "would change x")
			}
			return Change([]string{"x"}, "changed x")
		}},
		{"third", func(ctx context.Context, h *HostRun, _ *struct{}) TaskResult {
			if !h.Changed("second") {
				return Fail(errors.New("second did not change"))
			}
			return Skip("nothing to do")
		}},
	}
	targets := []Target{{Name: "a"}, {Name: "b"}, {Name: "bad"}, {Name: "c"}, {Name: "down"}}
	dial := func(ctx context.Context, h remote.Host) (remote.Executor, error) {
		if h.Name == "down" {
			return remote.Dial(ctx, remote.Host{Name: "down", Address: "127.0.0.1", Port: down, KnownHostsFile: filepath.Join(t.TempDir(), "kh"), Timeout: 5 * time.Second},
				remote.WithSSHConfig(""), remote.WithAgent(""))
		}
		return &remote.Local{}, nil
	}
	for i := range targets {
		targets[i].Host.Name = targets[i].Name
	}
	var buf bytes.Buffer
	obs := &lines{}
	rc := Run(context.Background(), targets, tasks, RunOptions{Forks: 2, Dial: dial, Observer: obs})
	if m := maxRunning.Load(); m > 2 {
		t.Errorf("%d hosts ran at once with forks 2", m)
	}
	if err := WriteRecap(&buf, rc); err != nil {
		t.Fatal(err)
	}
	for _, h := range rc.Hosts {
		for _, l := range obs.m[h.Host] {
			buf.WriteString(normalizePort(l, down) + "\n")
		}
	}
	golden.Check(t, filepath.Join("testdata", "run.golden"), []byte(buf.String()))
	err := rc.Err()
	if fail.KindOf(err) != fail.Unreachable || fail.ExitCode(err) != 3 {
		t.Errorf("Err() = %v (kind %v), want unreachable", err, fail.KindOf(err))
	}
	if want := "2 of 5 hosts did not finish (down, bad); see the tasks above"; err == nil || err.Error() != want {
		t.Errorf("Err() = %v, want %q", err, want)
	}
}

func normalizePort(s string, port int) string {
	return strings.ReplaceAll(s, fmt.Sprintf(":%d", port), ":<port>")
}

func TestRecapErr(t *testing.T) {
	hostKey := fail.New(fail.Auth, "verify the fingerprint", errors.New("host key for x:22 is unknown"))
	unreach := fail.New(fail.Unreachable, "check that the host is up", errors.New("connect to y:22: connection refused"))
	failed := fail.New(fail.Failed, "see: journalctl", errors.New("units: exit status 1"))
	rep := func(name string, err error) *HostReport {
		h := &HostReport{Host: name}
		if err != nil {
			r := TaskResult{Task: "connect", Status: Failed, err: err}
			r.finish(time.Now())
			h.fail(r)
		} else {
			h.Tasks = []TaskResult{{Task: "facts", Status: OK}}
		}
		h.finish()
		return h
	}
	tests := []struct {
		name  string
		hosts []*HostReport
		kind  fail.Kind
		msg   string
	}{
		{"all done", []*HostReport{rep("a", nil), rep("b", nil)}, -1, ""},
		{"one failed", []*HostReport{rep("a", nil), rep("b", failed)}, fail.Failed, "b: connect: units: exit status 1"},
		{"one unreachable", []*HostReport{rep("a", unreach)}, fail.Unreachable, "a: connect: connect to y:22: connection refused"},
		{"unreachable beats failed", []*HostReport{rep("a", failed), rep("b", unreach)}, fail.Unreachable, "2 of 2 hosts did not finish (b, a); see the tasks above"},
		{"refused beats all", []*HostReport{rep("a", failed), rep("b", unreach), rep("c", hostKey)}, fail.Auth, "3 of 3 hosts did not finish (c, b, a); see the tasks above"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &Recap{Hosts: tt.hosts}
			rc.count()
			err := rc.Err()
			if tt.kind == -1 {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if err == nil || fail.KindOf(err) != tt.kind || err.Error() != tt.msg {
				t.Fatalf("Err() = %v (kind %v), want %q (kind %v)", err, fail.KindOf(err), tt.msg, tt.kind)
			}
		})
	}
}

func TestParseShow(t *testing.T) {
	out := "ActiveState=active\nSubState=running\nUnitFileState=enabled\nMainPID=123\nApplied=abc def\n"
	got := parseShow(out)
	want := serviceState{activeState: "active", subState: "running", unitFileState: "enabled", mainPID: 123, applied: "abc def"}
	if got != want {
		t.Errorf("parseShow = %+v, want %+v", got, want)
	}
}
