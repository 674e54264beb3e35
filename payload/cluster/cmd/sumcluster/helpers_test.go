package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/syncbuf"
	"github.com/deploylab/deploylab/payload/cluster"
)

// bin is the sumcluster binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sumcluster-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "sumcluster")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	args := []string{"build", "-o", bin}
	if os.Getenv("SUMCLUSTER_TEST_RACE") == "1" { // race-detecting master and workers
		args = append(args, "-race")
	}
	out, err := exec.Command(gobin, append(args, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build sumcluster: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a running sumcluster master.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	sock   string
	addr   string
	stderr *syncbuf.Buffer
	exited chan struct{}
	err    error
}

type startOpts struct {
	args      []string
	env       []string
	noWait    bool // do not wait for every worker to be ready
	noDefault bool // do not add --port 0 --addr 127.0.0.1
}

// startCluster runs sumcluster on a free loopback port with a private
// stats socket and waits until it is ready. It is killed (with its workers)
// at the end of the test if still running.
func startCluster(t testing.TB, o startOpts) *proc {
	t.Helper()
	dir, err := os.MkdirTemp("", "sc-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p := &proc{t: t, sock: filepath.Join(dir, "stats.sock"), stderr: &syncbuf.Buffer{}, exited: make(chan struct{})}
	args := []string{"--stats-socket", p.sock}
	if !o.noDefault {
		args = append(args, "--port", "0", "--addr", "127.0.0.1")
	}
	p.cmd = exec.Command(bin, append(args, o.args...)...)
	p.cmd.Stderr = p.stderr
	p.cmd.Env = append(os.Environ(), o.env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		defer func() {
			if strings.Contains(p.stderr.String(), "WARNING: DATA RACE") {
				t.Errorf("the race detector fired:\n%s", p.stderr)
			}
		}()
		select {
		case <-p.exited:
			return
		default:
		}
		var pids []int
		if st, err := p.tryStats(); err == nil {
			for _, w := range st.Workers {
				pids = append(pids, w.PID)
			}
		}
		_ = p.cmd.Process.Kill()
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		<-p.exited
		if t.Failed() {
			t.Logf("sumcluster stderr:\n%s", p.stderr)
		}
	})
	st := p.waitStats(15*time.Second, "the stats socket answers", func(st cluster.Stats) bool {
		return o.noWait || st.Ready && readyWorkers(st) == st.Instances
	})
	p.addr = st.Addr
	return p
}

func readyWorkers(st cluster.Stats) int {
	n := 0
	for _, w := range st.Workers {
		if w.State == "ready" {
			n++
		}
	}
	return n
}

func (p *proc) tryStats() (cluster.Stats, error) {
	var st cluster.Stats
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	b, err := cluster.ReadStats(ctx, p.sock)
	if err != nil {
		return st, err
	}
	err = json.Unmarshal(b, &st)
	return st, err
}

func (p *proc) stats() cluster.Stats {
	p.t.Helper()
	st, err := p.tryStats()
	if err != nil {
		p.t.Fatalf("read stats: %v\nstderr:\n%s", err, p.stderr)
	}
	return st
}

// waitStats polls the stats socket until cond holds.
func (p *proc) waitStats(timeout time.Duration, what string, cond func(cluster.Stats) bool) cluster.Stats {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last cluster.Stats
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.t.Fatalf("sumcluster exited (%v) while waiting until %s\nstderr:\n%s", p.err, what, p.stderr)
		default:
		}
		st, err := p.tryStats()
		if err == nil && cond(st) {
			return st
		}
		last, lastErr = st, err
		time.Sleep(30 * time.Millisecond)
	}
	p.t.Fatalf("timed out after %s waiting until %s (last stats %+v, err %v)\nstderr:\n%s", timeout, what, last, lastErr, p.stderr)
	return last
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// waitExit waits for the master to exit and returns its exit code.
func (p *proc) waitExit(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		p.t.Fatalf("sumcluster still running after %s\nstderr:\n%s", timeout, p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

func pids(st cluster.Stats) map[int]bool {
	m := map[int]bool{}
	for _, w := range st.Workers {
		m[w.PID] = true
	}
	return m
}

// --- a raw HTTP/1.1 client: no retries, every failure counted. Go's
// http.Client silently retries idempotent requests on reused connections,
// which would hide exactly the failures these tests look for.

type result struct {
	status int
	body   string
	took   time.Duration
}

// rawGet does one GET on a new connection with Connection: close.
func rawGet(addr, path string, timeout time.Duration) (result, error) {
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return result{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(start.Add(timeout))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path); err != nil {
		return result{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return result{}, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return result{}, err
	}
	return result{status: resp.StatusCode, body: string(b), took: time.Since(start)}, nil
}

// kaConn is a keep-alive connection used for one request after another; it
// reconnects when the server answers Connection: close (that is not a
// failure), and never retries a failed request.
type kaConn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
}

func (k *kaConn) get(path string, timeout time.Duration) (result, error) {
	start := time.Now()
	if k.c == nil {
		c, err := net.DialTimeout("tcp", k.addr, timeout)
		if err != nil {
			return result{}, err
		}
		k.c, k.br = c, bufio.NewReader(c)
	}
	fail := func(err error) (result, error) {
		k.close()
		return result{}, err
	}
	_ = k.c.SetDeadline(start.Add(timeout))
	if _, err := fmt.Fprintf(k.c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		return fail(err)
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return fail(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return fail(err)
	}
	if resp.Close {
		k.close()
	}
	return result{status: resp.StatusCode, body: string(b), took: time.Since(start)}, nil
}

func (k *kaConn) close() {
	if k.c != nil {
		k.c.Close()
		k.c, k.br = nil, nil
	}
}

// localPort is the client-side port of the open connection (0 if none).
func (k *kaConn) localPort() int {
	if k.c == nil {
		return 0
	}
	return k.c.LocalAddr().(*net.TCPAddr).Port
}

// loadStats counts a load run's outcomes.
type loadStats struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
}

func (l *loadStats) record(r result, err error, want string) {
	if err == nil && r.status == 200 && strings.HasPrefix(r.body, want) {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.errs) < 10 {
		if err != nil {
			l.errs = append(l.errs, err.Error())
		} else {
			l.errs = append(l.errs, fmt.Sprintf("status %d body %q", r.status, r.body))
		}
	}
}

// runLoad keeps ka keep-alive clients and fresh new-connection-per-request
// clients busy on path until ctx is done (or maxEach requests each), and
// returns when they have stopped.
func runLoad(ctx context.Context, addr, path, want string, ka, fresh, maxEach int) *loadStats {
	l := &loadStats{}
	var wg sync.WaitGroup
	for range ka {
		wg.Go(func() {
			k := &kaConn{addr: addr}
			defer k.close()
			for i := 0; i < maxEach && ctx.Err() == nil; i++ {
				r, err := k.get(path, 10*time.Second)
				l.record(r, err, want)
			}
		})
	}
	for range fresh {
		wg.Go(func() {
			for i := 0; i < maxEach && ctx.Err() == nil; i++ {
				r, err := rawGet(addr, path, 10*time.Second)
				l.record(r, err, want)
			}
		})
	}
	wg.Wait()
	return l
}

// ownerPID finds which of pids holds the server side of the loopback
// connection whose client port is clientPort (via /proc/net/tcp inodes).
func ownerPID(pids []int, serverPort, clientPort int) (int, error) {
	inode := ""
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 {
				continue
			}
			if hexPort(fs[1]) == serverPort && hexPort(fs[2]) == clientPort {
				inode = fs[9]
			}
		}
	}
	if inode == "" {
		return 0, fmt.Errorf("no server socket for client port %d", clientPort)
	}
	want := "socket:[" + inode + "]"
	for _, pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == want {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no worker holds socket inode %s", inode)
}

func hexPort(addr string) int {
	_, p, ok := strings.Cut(addr, ":")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(p, 16, 32)
	if err != nil {
		return -1
	}
	return int(n)
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}
