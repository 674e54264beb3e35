package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/golden"
	"github.com/deploylab/deploylab/payload/cluster"
)

// heavyN returns an n for /api/<n> that keeps a worker busy for about d,
// measured on this machine.
func heavyN(t *testing.T, addr string, d time.Duration) int64 {
	t.Helper()
	const probe = 100_000_000
	r, err := rawGet(addr, "/api/"+strconv.Itoa(probe), 30*time.Second)
	if err != nil || r.status != 200 {
		t.Fatalf("calibration request: %v %+v", err, r)
	}
	n := int64(float64(probe) * d.Seconds() / max(r.took.Seconds(), 0.001))
	n = min(max(n, probe), 5_000_000_000)
	t.Logf("calibration: /api/%d took %s, so n=%d for ~%s", probe, r.took.Round(time.Millisecond), n, d)
	return n
}

type heavyResult struct {
	took time.Duration
	end  time.Time
	err  error
}

// startHeavy starts a heavy request and waits until a worker reports it in
// flight; the result arrives on the channel.
func startHeavy(t *testing.T, p *proc, n int64) <-chan heavyResult {
	t.Helper()
	done := make(chan heavyResult, 1)
	go func() {
		r, err := rawGet(p.addr, fmt.Sprintf("/api/%d", n), 60*time.Second)
		if err == nil && (r.status != 200 || !strings.HasPrefix(r.body, "Final count is ")) {
			err = fmt.Errorf("heavy request: status %d body %q", r.status, r.body)
		}
		done <- heavyResult{r.took, time.Now(), err}
	}()
	p.waitStats(10*time.Second, "the heavy request is in flight", func(st cluster.Stats) bool {
		return st.InFlight >= 1
	})
	time.Sleep(100 * time.Millisecond) // let the worker count as blocked
	return done
}

// concurrentGets fires k concurrent GET / on new connections and returns
// when each one ended.
func concurrentGets(t *testing.T, addr string, k int) []time.Time {
	t.Helper()
	ends := make([]time.Time, k)
	var wg sync.WaitGroup
	errs := make(chan error, k)
	for i := range k {
		wg.Go(func() {
			r, err := rawGet(addr, "/", 30*time.Second)
			if err == nil && (r.status != 200 || r.body != "Hello World!") {
				err = fmt.Errorf("GET /: status %d body %q", r.status, r.body)
			}
			if err != nil {
				errs <- err
			}
			ends[i] = time.Now()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return ends
}

// The practice's blocking experiment: one heavy request, then concurrent
// GET /. With one worker they wait for it; with least scheduling they answer
// at once; with Node's round-robin some are handed to the busy worker.
// Structural, not timed: which worker each GET was handed to (the stats'
// handed counters), and that every GET handed to a free worker finished
// before the heavy request did.
func TestBlockingExperiment(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		gets     int
		wantBusy int // exactly this many GET / are handed to the busy worker (-1: at least one)
	}{
		{name: "one worker blocks", args: []string{"--instances", "1"}, gets: 1, wantBusy: 1},
		{name: "least keeps all fast", args: []string{"--instances", "2", "--schedule", "least"}, gets: 4, wantBusy: 0},
		{name: "round-robin hands some to the busy worker", args: []string{"--instances", "2", "--schedule", "rr"}, gets: 4, wantBusy: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startCluster(t, startOpts{args: tt.args})
			n := heavyN(t, p.addr, 2*time.Second)
			heavy := startHeavy(t, p, n)
			before := p.stats()
			ends := concurrentGets(t, p.addr, tt.gets)
			after := p.stats()
			h := <-heavy
			if h.err != nil {
				t.Fatal(h.err)
			}
			busy := 0 // GET / handed to the worker running the heavy request
			for i, w := range after.Workers {
				b := before.Workers[i]
				t.Logf("worker %d: in flight %d, handed %d → %d", w.Slot, b.InFlight, b.Handed, w.Handed)
				if b.PID != w.PID {
					t.Fatalf("worker %d changed during the experiment", w.Slot)
				}
				if b.InFlight > 0 {
					busy += int(w.Handed - b.Handed)
				}
			}
			before1 := 0 // GET / that finished before the heavy request
			for _, e := range ends {
				if e.Before(h.end) {
					before1++
				}
			}
			t.Logf("heavy request took %s; %d of %d GET / handed to the busy worker, %d finished before the heavy one",
				h.took.Round(time.Millisecond), busy, tt.gets, before1)
			switch {
			case tt.wantBusy >= 0 && busy != tt.wantBusy:
				t.Errorf("%d of %d GET / were handed to the busy worker, want %d", busy, tt.gets, tt.wantBusy)
			case tt.wantBusy < 0 && busy == 0:
				t.Errorf("no GET / was handed to the busy worker; round-robin should have handed one to it")
			}
			// The light requests on a free worker finished before the heavy one.
			if free := tt.gets - busy; before1 < free {
				t.Errorf("%d GET / finished before the heavy request, want at least the %d handed to a free worker", before1, free)
			}
		})
	}
}

// kill -9 of a worker under load: it is replaced within about a second and
// the connections on the other worker never fail.
func TestKilledWorkerIsReplaced(t *testing.T) {
	p := startCluster(t, startOpts{args: []string{"--instances", "2"}})
	st := p.stats()
	var workerPIDs []int
	for _, w := range st.Workers {
		workerPIDs = append(workerPIDs, w.PID)
	}
	serverPort := portOf(t, p.addr)

	// Open keep-alive connections until both workers hold some.
	byPID := map[int][]*kaConn{}
	for i := 0; i < 40 && (len(byPID[workerPIDs[0]]) < 3 || len(byPID[workerPIDs[1]]) < 3); i++ {
		k := &kaConn{addr: p.addr}
		if r, err := k.get("/", 5*time.Second); err != nil || r.status != 200 {
			t.Fatalf("GET /: %v %+v", err, r)
		}
		pid, err := ownerPID(workerPIDs, serverPort, k.localPort())
		if err != nil {
			t.Fatal(err)
		}
		byPID[pid] = append(byPID[pid], k)
	}
	victim, survivor := workerPIDs[0], workerPIDs[1]
	if len(byPID[victim]) == 0 || len(byPID[survivor]) == 0 {
		t.Fatalf("connections not spread over both workers: %v", byPID)
	}
	defer func() {
		for _, ks := range byPID {
			for _, k := range ks {
				k.close()
			}
		}
	}()

	// Load on the survivor's connections, and fresh connections, while the
	// victim dies.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	survivorLoad := &loadStats{}
	for _, k := range byPID[survivor] {
		wg.Go(func() {
			for i := 0; i < 100000 && ctx.Err() == nil; i++ {
				r, err := k.get("/", 10*time.Second)
				survivorLoad.record(r, err, "Hello World!")
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	killed := time.Now()
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = p.waitStats(10*time.Second, "the killed worker is replaced", func(st cluster.Stats) bool {
		ps := pids(st)
		return !ps[victim] && readyWorkers(st) == 2
	})
	replacedIn := time.Since(killed)
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()

	t.Logf("replaced in %s; survivor's connections: %d ok, %d failed", replacedIn.Round(time.Millisecond), survivorLoad.ok.Load(), survivorLoad.failed.Load())
	if st.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", st.Restarts)
	}
	if n := survivorLoad.failed.Load(); n != 0 {
		t.Errorf("%d requests failed on the other worker's connections: %v", n, survivorLoad.errs)
	}
	if survivorLoad.ok.Load() == 0 {
		t.Error("no request served on the survivor's connections")
	}
	// The victim's connections are dead; new connections are served.
	for _, k := range byPID[victim] {
		if _, err := k.get("/", 5*time.Second); err == nil {
			t.Error("a connection of the killed worker still answers")
		}
	}
	for range 4 {
		if r, err := rawGet(p.addr, "/", 5*time.Second); err != nil || r.status != 200 {
			t.Errorf("GET / after the replacement: %v %+v", err, r)
		}
	}
	if !strings.Contains(p.stderr.String(), fmt.Sprintf("pid %d) exited unexpectedly: killed by signal 9", victim)) {
		t.Errorf("the master did not log the death of pid %d:\n%s", victim, p.stderr)
	}
}

// SIGHUP under constant load, keep-alive and not, 2 workers: zero failed
// requests, every worker replaced.
func TestReloadUnderLoadLosesNothing(t *testing.T) {
	for _, sched := range []string{"least", "rr", "none"} {
		t.Run(sched, func(t *testing.T) {
			p := startCluster(t, startOpts{args: []string{"--instances", "2", "--schedule", sched}})
			before := pids(p.stats())
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			loadDone := make(chan *loadStats)
			go func() { loadDone <- runLoad(ctx, p.addr, "/api/1000", "Final count is 500500", 8, 8, 1_000_000) }()

			time.Sleep(300 * time.Millisecond)
			for i := 1; i <= 2; i++ {
				p.signal(syscall.SIGHUP)
				p.waitStats(30*time.Second, fmt.Sprintf("reload %d is done", i), func(st cluster.Stats) bool {
					return st.Reloads >= i && readyWorkers(st) == 2 && len(st.Workers) == 2
				})
				time.Sleep(200 * time.Millisecond)
			}
			cancel()
			l := <-loadDone
			after := p.stats()
			t.Logf("%d requests ok, %d failed during 2 reloads; forks %d", l.ok.Load(), l.failed.Load(), after.Forks)
			if n := l.failed.Load(); n != 0 {
				t.Errorf("%d requests failed during the reloads, want 0: %v", n, l.errs)
			}
			if l.ok.Load() < 100 {
				t.Errorf("only %d requests served: the load did not run", l.ok.Load())
			}
			for pid := range pids(after) {
				if before[pid] {
					t.Errorf("worker pid %d survived the reloads", pid)
				}
			}
			if after.Forks != 6 {
				t.Errorf("forks = %d, want 6 (2 + 2 reloads of 2)", after.Forks)
			}
		})
	}
}

// Recycling by --max-requests replaces workers with zero failed requests.
func TestRecycleByMaxRequests(t *testing.T) {
	p := startCluster(t, startOpts{args: []string{"--instances", "2", "--max-requests", "300"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	loadDone := make(chan *loadStats)
	go func() { loadDone <- runLoad(ctx, p.addr, "/", "Hello World!", 4, 4, 1_000_000) }()
	p.waitStats(30*time.Second, "two workers are recycled", func(st cluster.Stats) bool {
		return st.Recycled >= 2
	})
	cancel()
	l := <-loadDone
	st := p.stats()
	t.Logf("recycled %d, forks %d; %d requests ok, %d failed", st.Recycled, st.Forks, l.ok.Load(), l.failed.Load())
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed while recycling, want 0: %v", n, l.errs)
	}
	if st.Restarts != 0 {
		t.Errorf("restarts = %d, want 0: recycling is not a crash", st.Restarts)
	}
	if !strings.Contains(p.stderr.String(), "recycle: served ") {
		t.Errorf("the master did not log the recycling:\n%s", p.stderr)
	}
}

// SIGTERM with requests in flight: they complete, the master exits 0.
func TestSIGTERMDrains(t *testing.T) {
	p := startCluster(t, startOpts{args: []string{"--instances", "2"}})
	n := heavyN(t, p.addr, time.Second)
	results := make(chan error, 2)
	for range 2 {
		go func() {
			r, err := rawGet(p.addr, fmt.Sprintf("/api/%d", n), 60*time.Second)
			if err == nil && (r.status != 200 || !strings.HasPrefix(r.body, "Final count is ")) {
				err = fmt.Errorf("status %d body %q", r.status, r.body)
			}
			results <- err
		}()
	}
	p.waitStats(10*time.Second, "both heavy requests are in flight", func(st cluster.Stats) bool { return st.InFlight >= 2 })
	p.signal(syscall.SIGTERM)
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("request in flight at SIGTERM: %v", err)
		}
	}
	if code := p.waitExit(30 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, p.stderr)
	}
	if _, err := rawGet(p.addr, "/", time.Second); err == nil {
		t.Error("the port still answers after the master stopped")
	}
	if _, err := os.Stat(p.sock); !os.IsNotExist(err) {
		t.Errorf("stats socket left behind: %v", err)
	}
}

// Workers that crash at start are re-forked with an exponential back-off,
// not in a fork bomb: each slot's delays double from 100ms (read from the
// master's log, not timed), and every fork but the first two is a restart.
func TestCrashLoopBacksOff(t *testing.T) {
	p := startCluster(t, startOpts{
		args:   []string{"--instances", "2"},
		env:    []string{cluster.EnvTestExit + "=3"},
		noWait: true,
	})
	re := regexp.MustCompile(`worker (\d+) \(id \d+, pid \d+\) exited unexpectedly: exit code 3 after \S+; restarting in (\S+)`)
	delays := func() map[string][]string {
		m := map[string][]string{}
		for _, sm := range re.FindAllStringSubmatch(p.stderr.String(), -1) {
			m[sm[1]] = append(m[sm[1]], sm[2])
		}
		return m
	}
	const want = 4 // 100ms, 200ms, 400ms, 800ms: 1.5 s of back-off per slot
	deadline := time.Now().Add(60 * time.Second)
	for d := delays(); len(d["1"]) < want || len(d["2"]) < want; d = delays() {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d restarts per slot in 60s: %v\n%s", want, d, p.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := p.stats()
	t.Logf("forks %d, restarts %d; delays %v", st.Forks, st.Restarts, delays())
	seq := []string{"100ms", "200ms", "400ms", "800ms", "1.6s", "3.2s", "6.4s", "12.8s", "15s"}
	for slot, got := range delays() {
		for i, d := range got {
			if i >= len(seq) || d != seq[i] {
				t.Errorf("worker %s: back-off delays %v, want a prefix of %v", slot, got, seq)
				break
			}
		}
	}
	// Each respawn is one fork: never more forks than the first two plus
	// one per restart (a fork bomb would have many more).
	if st.Forks > 2+st.Restarts || st.Forks < 2 {
		t.Errorf("forks = %d with %d restarts, want 2 + at most one per restart", st.Forks, st.Restarts)
	}
	p.signal(syscall.SIGTERM)
	if code := p.waitExit(10 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// A flood of idle connections and slow clients neither crashes anything nor
// stops others from being served.
func TestFloodAndSlowClients(t *testing.T) {
	p := startCluster(t, startOpts{args: []string{"--instances", "2"}})
	before := pids(p.stats())
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 1000 {
		c, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
		if err != nil {
			t.Logf("dial stopped after %d connections: %v", len(conns), err)
			break
		}
		conns = append(conns, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 20 { // slowloris: a header byte every 100ms
		wg.Go(func() {
			c, err := net.Dial("tcp", p.addr)
			if err != nil {
				return
			}
			defer c.Close()
			for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
				if ctx.Err() != nil {
					return
				}
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	for i := range 5 {
		r, err := rawGet(p.addr, "/api/50", 10*time.Second)
		if err != nil || r.status != 200 || r.body != "Final count is 1275" {
			t.Errorf("request %d during the flood: %v %+v", i, err, r)
		}
	}
	cancel()
	wg.Wait()
	st := p.stats()
	t.Logf("%d idle connections open; in flight per worker: %d, %d", len(conns), st.Workers[0].InFlight, st.Workers[1].InFlight)
	if len(st.Workers) != 2 || readyWorkers(st) != 2 || st.Restarts != 0 {
		t.Errorf("workers changed during the flood: %+v", st)
	}
	for pid := range pids(st) {
		if !before[pid] {
			t.Errorf("new worker pid %d: one crashed", pid)
		}
	}
}

func TestStatsCommand(t *testing.T) {
	p := startCluster(t, startOpts{args: []string{"--instances", "2"}})
	if r, err := rawGet(p.addr, "/api/50", 5*time.Second); err != nil || r.body != "Final count is 1275" {
		t.Fatalf("GET /api/50: %v %+v", err, r)
	}
	p.waitStats(5*time.Second, "the request is counted", func(st cluster.Stats) bool { return st.Served >= 1 })
	out, err := exec.Command(bin, "stats", "--stats-socket", p.sock).Output()
	if err != nil {
		t.Fatalf("sumcluster stats: %v", err)
	}
	var st cluster.Stats
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("sumcluster stats printed no JSON: %v\n%s", err, out)
	}
	if st.Instances != 2 || len(st.Workers) != 2 || st.Served < 1 || st.Schedule != "least" || st.Addr != p.addr {
		t.Errorf("unexpected stats: %s", out)
	}
	for _, w := range st.Workers {
		if w.PID <= 0 || w.RSS <= 0 || w.State != "ready" {
			t.Errorf("unexpected worker stats: %+v", w)
		}
	}

	// No master there: exit 1, one line saying so, and a hint.
	cmd := exec.Command(bin, "stats", "--stats-socket", filepath.Join(t.TempDir(), "none.sock"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if code := exitCode(err); code != 1 {
		t.Errorf("stats without a master: exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "none.sock") || !strings.Contains(stderr.String(), "hint:") {
		t.Errorf("stats without a master said: %q", stderr.String())
	}
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"--instances", "-2"}, "", "--instances: bad instance count -2"},
		{[]string{"--schedule", "random"}, "", `--schedule: unknown schedule "random" (want least, rr or none)`},
		{[]string{"--mode", "fast"}, "", `--mode: unknown mode "fast"`},
		{[]string{"--port", "70000"}, "", `bad port "70000"`},
		{nil, "PORT=abc", `bad port "abc"`},
		{[]string{"--max-memory", "lots"}, "", `--max-memory: bad byte count "lots"`},
		{[]string{"--max-age", "soon"}, "", `invalid value "soon" for flag -max-age`},
		{[]string{"--shutdown-timeout", "0s"}, "", "--shutdown-timeout: must be positive"},
		{[]string{"--bogus"}, "", "flag provided but not defined: -bogus"},
		{[]string{"--sessions", "redis"}, "", `--sessions: unknown sessions mode "redis" (want memory, master or stateless)`},
		{[]string{"--sessions", "stateless"}, "", "--sessions stateless needs --session-key-file"},
		{[]string{"--sessions", "stateless", "--session-key-file", "/nonexistent"}, "", "--session-key-file: session key: open /nonexistent"},
		{[]string{"--session-cap", "0"}, "", "--session-cap: want 1 to 10000000, got 0"},
		{[]string{"extra"}, "", `unexpected argument "extra"`},
		{[]string{"stats", "--bogus"}, "", "stats: flag provided but not defined: -bogus"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.args, tt.env), " "), func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = os.Environ()
			if tt.env != "" {
				cmd.Env = append(cmd.Env, tt.env)
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("sumcluster %v did not exit", tt.args)
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "sumcluster: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr = %q, want one line containing %q", stderr.String(), tt.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("sumcluster %s: %v", arg, err)
		}
		if !golden.Check(t, filepath.Join("testdata", "help.golden"), out) {
			t.Errorf("sumcluster %s: the help above differs", arg)
		}
	}
}

// The port is in use: exit 1 with the error and a hint. $PORT is honoured.
func TestPortInUseAndPORT(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cmd := exec.Command(bin, "--addr", "127.0.0.1", "--stats-socket", filepath.Join(t.TempDir(), "s.sock"))
	cmd.Env = append(os.Environ(), "PORT="+port)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if code := exitCode(err); code != 1 {
		t.Errorf("port in use: exit %d, want 1\n%s", code, stderr.String())
	}
	if !strings.Contains(stderr.String(), "address already in use") || !strings.Contains(stderr.String(), "hint: another process listens on port "+port) {
		t.Errorf("port in use: stderr %q", stderr.String())
	}
	ln.Close()

	// Now free: $PORT is where it listens.
	p := startCluster(t, startOpts{args: []string{"--addr", "127.0.0.1", "--instances", "1"}, env: []string{"PORT=" + port}, noDefault: true})
	if got := strconv.Itoa(portOf(t, p.addr)); got != port {
		t.Errorf("listening on port %s, want $PORT=%s", got, port)
	}
}

// Under systemd (NOTIFY_SOCKET) the master reports READY=1, RELOADING=1 and
// STOPPING=1.
func TestSystemdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "scn-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()
	waitFor := func(prefix string, after int) int {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			for i := after; i < len(got); i++ {
				if strings.HasPrefix(got[i], prefix) {
					mu.Unlock()
					return i + 1
				}
			}
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no %q notification after #%d; got %q", prefix, after, got)
		return 0
	}
	p := startCluster(t, startOpts{args: []string{"--instances", "2"}, env: []string{"NOTIFY_SOCKET=" + path}})
	i := waitFor("READY=1\nMAINPID="+strconv.Itoa(p.cmd.Process.Pid), 0)
	p.signal(syscall.SIGHUP)
	i = waitFor("RELOADING=1\nMONOTONIC_USEC=", i)
	i = waitFor("READY=1", i)
	p.signal(syscall.SIGTERM)
	waitFor("STOPPING=1", i)
	if code := p.waitExit(30 * time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// A worker signalled by someone else (SIGTERM to its pid) asks the master to
// stop sending it connections, drains, and gets a successor: no request fails.
func TestSignalledWorkerDrainsAndIsReplaced(t *testing.T) {
	for _, sched := range []string{"least", "none"} {
		t.Run(sched, func(t *testing.T) {
			p := startCluster(t, startOpts{args: []string{"--instances", "2", "--schedule", sched}})
			victim := p.stats().Workers[0].PID
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			loadDone := make(chan *loadStats)
			go func() { loadDone <- runLoad(ctx, p.addr, "/", "Hello World!", 4, 4, 1_000_000) }()
			time.Sleep(300 * time.Millisecond)
			if err := syscall.Kill(victim, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			st := p.waitStats(15*time.Second, "the signalled worker is replaced", func(st cluster.Stats) bool {
				return !pids(st)[victim] && readyWorkers(st) == 2 && len(st.Workers) == 2
			})
			time.Sleep(200 * time.Millisecond)
			cancel()
			l := <-loadDone
			t.Logf("%d requests ok, %d failed; restarts %d", l.ok.Load(), l.failed.Load(), st.Restarts)
			if n := l.failed.Load(); n != 0 {
				t.Errorf("%d requests failed, want 0: %v", n, l.errs)
			}
			if st.Restarts != 1 {
				t.Errorf("restarts = %d, want 1", st.Restarts)
			}
			if !strings.Contains(p.stderr.String(), fmt.Sprintf("pid %d) was signalled; draining it", victim)) {
				t.Errorf("the master did not log the signalled worker:\n%s", p.stderr)
			}
		})
	}
}
