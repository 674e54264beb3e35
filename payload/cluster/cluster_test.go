package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain doubles as the worker program: the in-process master below forks
// this test binary, which then serves testHandler.
func TestMain(m *testing.M) {
	if IsWorker() {
		var mu sync.Mutex
		last := "none"
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			msg := last
			mu.Unlock()
			fmt.Fprintf(w, "pid=%d msg=%s", os.Getpid(), msg)
		})
		err := RunWorker(context.Background(), WorkerConfig{
			Handler: h,
			OnMessage: func(raw json.RawMessage) {
				mu.Lock()
				last = string(raw)
				mu.Unlock()
			},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func get(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The library's API end to end, in this process: Start, Broadcast, Stats,
// Reload, Stop, Wait.
func TestMasterAPI(t *testing.T) {
	dir, err := os.MkdirTemp("", "cl-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	logs := &logBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m, err := Start(ctx, Config{
		Addr:        "127.0.0.1:0",
		Instances:   2,
		StatsSocket: filepath.Join(dir, "stats.sock"),
		Logger:      log.New(logs, "", 0),
		Executable:  os.Args[0],
		Args:        []string{os.Args[0]},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("master log:\n%s", logs)
		}
	}()
	waitFor(t, "two ready workers", func() bool { st := m.Stats(); return st.Ready && len(st.Workers) == 2 })
	addr := m.Addr().String()

	if err := m.Broadcast(map[string]string{"hello": "workers"}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := 0; i < 50 && len(seen) < 2; i++ {
		body := get(t, addr)
		pid, msg, _ := strings.Cut(body, " ")
		if msg != `msg={"hello":"workers"}` {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		seen[pid] = true
	}
	if len(seen) != 2 {
		t.Errorf("the broadcast reached %d workers (%v), want 2", len(seen), seen)
	}

	// Load reports are coalesced (reportGap): wait for the count.
	waitFor(t, "the requests are counted", func() bool { return m.Stats().Served >= 2 })
	b, err := ReadStats(context.Background(), m.StatsSocket())
	if err != nil {
		t.Fatal(err)
	}
	var st Stats
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.Instances != 2 || st.Schedule != "least" || st.Served < 2 {
		t.Errorf("stats over the socket: %s", b)
	}

	before := st.Workers
	if err := m.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	after := m.Stats()
	if after.Reloads != 1 || len(after.Workers) != 2 {
		t.Errorf("after reload: %+v", after)
	}
	for i, w := range after.Workers {
		if w.PID == before[i].PID || w.Slot != before[i].Slot || w.ID <= 2 {
			t.Errorf("slot %d: pid %d → %d, id %d: not replaced", w.Slot, before[i].PID, w.PID, w.ID)
		}
	}
	if !strings.HasPrefix(get(t, addr), "pid=") {
		t.Error("no answer after the reload")
	}

	cancel() // graceful stop
	if err := m.Wait(); err != nil {
		t.Errorf("wait: %v", err)
	}
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("log lacks the stop:\n%s", logs)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still listening after the stop")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPickLeast(t *testing.T) {
	const now = int64(10 * time.Second)
	fresh := now - int64(time.Millisecond)     // progress 1ms ago
	stuck := now - int64(500*time.Millisecond) // progress 500ms ago
	slow := now - int64(40*time.Millisecond)   // a starved but healthy worker
	slow2 := now - int64(60*time.Millisecond)
	tests := []struct {
		name  string
		ws    []wload
		start int
		want  int
	}{
		{"none", nil, 0, -1},
		{"all skipped", []wload{{skip: true}, {skip: true}}, 0, -1},
		{"idle tie goes to start", []wload{{}, {}, {}}, 1, 1},
		{"idle tie wraps", []wload{{}, {}, {}}, 2, 2},
		{"fewest in flight", []wload{{inflight: 3, progress: fresh}, {inflight: 1, progress: fresh}, {inflight: 2, progress: fresh}}, 0, 1},
		{"pending counts", []wload{{inflight: 1, progress: fresh}, {pending: 2}}, 1, 0},
		{"negative pending ignored", []wload{{pending: -5, inflight: 1, progress: fresh}, {}}, 0, 1},
		{"blocked ranks last", []wload{{inflight: 1, progress: stuck}, {inflight: 3, progress: fresh}}, 0, 1},
		{"blocked with pending still last", []wload{{inflight: 1, progress: stuck}, {inflight: 1, pending: 5, progress: fresh}}, 0, 1},
		{"all blocked: fewest in flight", []wload{{inflight: 4, progress: stuck}, {inflight: 2, progress: stuck}}, 0, 1},
		{"both blocked: stuck longer ranks last", []wload{{inflight: 1, progress: stuck}, {inflight: 3, pending: 2, progress: slow}}, 0, 1},
		{"both blocked alike: fewest in flight", []wload{{inflight: 3, progress: slow}, {inflight: 1, progress: slow2}}, 0, 1},
		{"skip the best", []wload{{inflight: 2, progress: fresh}, {skip: true}, {inflight: 1, progress: fresh}}, 1, 2},
		{"idle is never blocked", []wload{{inflight: 0, progress: stuck}, {inflight: 1, progress: fresh}}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickLeast(tt.ws, tt.start, now); got != tt.want {
				t.Errorf("pickLeast = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestNextBackoff(t *testing.T) {
	var got []time.Duration
	d := time.Duration(0)
	for range 10 {
		d = nextBackoff(d, 10*time.Millisecond)
		got = append(got, d)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
		1600 * time.Millisecond, 3200 * time.Millisecond, 6400 * time.Millisecond, 12800 * time.Millisecond, 15 * time.Second, 15 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("crash loop delays %v, want %v", got, want)
	}
	if d := nextBackoff(15*time.Second, 30*time.Second); d != 100*time.Millisecond {
		t.Errorf("after 30s up the delay is %s, want it reset to 100ms", d)
	}
}

func TestParseBytes(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"0", 0, false},
		{"1048576", 1 << 20, false},
		{"512M", 512 << 20, false},
		{"512MiB", 512 << 20, false},
		{"2g", 2 << 30, false},
		{"64 KB", 64 << 10, false},
		{"100B", 100, false},
		{"", 0, true},
		{"lots", 0, true},
		{"-1", 0, true},
		{"1.5G", 0, true},
		{"9999999999G", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseBytes(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestInstances(t *testing.T) {
	tests := []struct {
		n, cpus, want int
		err           bool
	}{
		{0, 4, 4, false}, {-1, 4, 3, false}, {-1, 1, 1, false}, {3, 2, 3, false},
		{0, 0, 1, false}, {-2, 4, 0, true}, {256, 2, 256, false}, {257, 2, 0, true},
	}
	for _, tt := range tests {
		got, err := Instances(tt.n, tt.cpus)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("Instances(%d, %d) = %d, %v; want %d", tt.n, tt.cpus, got, err, tt.want)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	for in, want := range map[string]Schedule{"least": Least, "rr": RoundRobin, "round-robin": RoundRobin, "none": None} {
		got, err := ParseSchedule(in)
		if err != nil || got != want {
			t.Errorf("ParseSchedule(%q) = %v, %v", in, got, err)
		}
		if in != "round-robin" && got.String() != in {
			t.Errorf("%v.String() = %q, want %q", got, got.String(), in)
		}
	}
	if _, err := ParseSchedule("random"); err == nil {
		t.Error("ParseSchedule(random): no error")
	}
}

func TestDefaultStatsSocket(t *testing.T) {
	t.Setenv("RUNTIME_DIRECTORY", "")
	if got, want := DefaultStatsSocket(3001), filepath.Join(os.TempDir(), "sumcluster-3001.sock"); got != want {
		t.Errorf("without RUNTIME_DIRECTORY: %q, want %q", got, want)
	}
	t.Setenv("RUNTIME_DIRECTORY", "/run/sumcluster:/run/other")
	if got := DefaultStatsSocket(3001); got != "/run/sumcluster/stats.sock" {
		t.Errorf("with RUNTIME_DIRECTORY: %q", got)
	}
}

// The shared counters: a worker's mapping of its cell and the master's are
// the same memory; cells are zeroed when reused; the region can run out.
func TestSharedCounters(t *testing.T) {
	r, err := newShmRegion(3)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	n := len(r.free) // rounded up to a page
	if n < 3 {
		t.Fatalf("%d cells, want at least 3", n)
	}
	i, master, err := r.alloc()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Dup(r.fd)
	if err != nil {
		t.Fatal(err)
	}
	worker, err := workerCell(fd, i)
	if err != nil {
		t.Fatal(err)
	}
	worker.served().Add(41)
	worker.served().Add(1)
	worker.inFlight().Store(3)
	if got := master.served().Load(); got != 42 {
		t.Errorf("master sees served %d, want 42", got)
	}
	if got := master.inFlight().Load(); got != 3 {
		t.Errorf("master sees in flight %d, want 3", got)
	}
	j, other, _ := r.alloc()
	if j == i || other.served().Load() != 0 {
		t.Errorf("second cell %d shares or inherits the first (%d)", j, i)
	}
	r.release(i)
	for range n - 1 { // every cell, the released one included
		if _, c, err := r.alloc(); err != nil {
			t.Fatal(err)
		} else if c.served().Load() != 0 {
			t.Error("a reused cell was not zeroed")
		}
	}
	if _, _, err := r.alloc(); err == nil {
		t.Error("alloc beyond the region: no error")
	}
	if _, err := workerCell(-1, 0); err == nil {
		t.Error("workerCell on a bad fd: no error")
	}
}

// A connection's descriptor passed over the IPC socket (SCM_RIGHTS) works in
// the receiver, which is how rr and least hand connections to workers.
func TestPassConnection(t *testing.T) {
	master, workerFD, err := socketpair()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	worker, err := fdConn(workerFD, "worker")
	if err != nil {
		t.Fatal(err)
	}
	defer worker.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	f, err := srv.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := f.SyscallConn()
	var sendErr error
	_ = rc.Control(func(fd uintptr) { sendErr = sendFD(master, int(fd)) })
	f.Close()
	srv.Close() // the receiver's copy keeps the connection open
	if sendErr != nil {
		t.Fatal(sendErr)
	}

	buf := make([]byte, 64)
	oob := make([]byte, syscall.CmsgSpace(16))
	msg, fds, err := readMsg(worker, buf, oob)
	if err != nil || len(msg) != 1 || msg[0] != msgConn || len(fds) != 1 {
		t.Fatalf("readMsg = %q, %v, %v", msg, fds, err)
	}
	rf := os.NewFile(uintptr(fds[0]), "passed")
	c, err := net.FileConn(rf)
	rf.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("via the worker")); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 14)
	if _, err := io.ReadFull(client, got); err != nil || string(got) != "via the worker" {
		t.Errorf("client read %q, %v", got, err)
	}

	// The peer's close reads as EOF.
	master.Close()
	if _, _, err := readMsg(worker, buf, oob); err == nil {
		t.Error("no error after the master closed its end")
	}
}

// A draining worker's listener still hands out the connections already
// received, then reports closed.
func TestChanListenerDrainsQueue(t *testing.T) {
	l := newChanListener()
	a, b := net.Pipe()
	c, d := net.Pipe()
	defer func() {
		for _, x := range []net.Conn{a, b, c, d} {
			x.Close()
		}
	}()
	if !l.push(a) || !l.push(c) {
		t.Fatal("push refused")
	}
	l.Close()
	if l.push(b) {
		t.Error("push accepted after Close")
	}
	for i, want := range []net.Conn{a, c} {
		got, err := l.Accept()
		if err != nil || got != want {
			t.Errorf("Accept #%d = %v, %v", i, got, err)
		}
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after the queue: %v, want net.ErrClosed", err)
	}
}

func TestRSS(t *testing.T) {
	r, err := rss(os.Getpid())
	if err != nil || r < 1<<20 {
		t.Errorf("rss(self) = %d, %v", r, err)
	}
	if _, err := rss(1 << 30); err == nil {
		t.Error("rss of a missing pid: no error")
	}
}

func TestListenStatsRefusesLiveSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "cls-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "s.sock")
	ln, err := ListenStats(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ListenStats(path); err == nil || !strings.Contains(err.Error(), "another server") {
		t.Errorf("second listener on a live socket: %v", err)
	}
	ln.Close()
	// A stale socket file (crashed master) is replaced.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	ln, err = ListenStats(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	ln.Close()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ListenStats(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("regular file at the path: %v", err)
	}
}
