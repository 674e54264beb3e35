package loadgen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// testServer is a local HTTP server that counts requests and connections.
type testServer struct {
	*httptest.Server
	requests atomic.Int64
	conns    atomic.Int64
}

func newTestServer(t testing.TB, h http.HandlerFunc) *testServer {
	t.Helper()
	s := &testServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "Hello World!")
}

// run runs o with a 30 s safety limit.
func run(t *testing.T, o Options) (*Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return Run(ctx, o)
}

func TestRunCountsExact(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepAlive bool
		n         int64
		c         int
	}{
		{"keep-alive", true, 2000, 20},
		{"connection per request", false, 500, 10},
		{"one client", true, 100, 1},
		{"more clients than requests", false, 7, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, hello)
			res, err := run(t, Options{URL: srv.URL + "/api/50", Requests: tc.n, Concurrency: tc.c, KeepAlive: tc.keepAlive})
			if err != nil {
				t.Fatal(err)
			}
			if res.Completed != tc.n || res.OK != tc.n || res.Errors.Total != 0 {
				t.Errorf("completed %d ok %d errors %+v, want %d, %d, none", res.Completed, res.OK, res.Errors, tc.n, tc.n)
			}
			if got := srv.requests.Load(); got != tc.n {
				t.Errorf("server saw %d requests, want %d (none retried, none extra)", got, tc.n)
			}
			if res.StatusCodes[200] != tc.n {
				t.Errorf("status codes %v", res.StatusCodes)
			}
			conns := srv.conns.Load()
			wantC := min(int64(tc.c), tc.n)
			if tc.keepAlive && conns > wantC {
				t.Errorf("keep-alive: %d connections for %d clients", conns, wantC)
			}
			if !tc.keepAlive && conns != tc.n {
				t.Errorf("no keep-alive: %d connections for %d requests, want one each", conns, tc.n)
			}
			if res.Concurrency != int(wantC) {
				t.Errorf("concurrency %d, want %d", res.Concurrency, wantC)
			}
			if (int64(tc.c) > tc.n) != (len(res.Notes) == 1) {
				t.Errorf("notes %q", res.Notes)
			}
			if res.DurationS <= 0 || res.RPS <= 0 {
				t.Errorf("duration %v rps %v", res.DurationS, res.RPS)
			}
			checkMonotone(t, res.Latency)
		})
	}
}

func TestRunServerDown(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	res, err := run(t, Options{URL: "http://" + addr + "/", Requests: 50, Concurrency: 5})
	if fail.KindOf(err) != fail.Unreachable {
		t.Fatalf("error %v (kind %v), want an Unreachable error", err, fail.KindOf(err))
	}
	if !strings.Contains(err.Error(), "cannot connect to "+addr) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not say what failed", err)
	}
	if res == nil || res.Completed != 50 || res.Errors.Connect != 50 || res.Errors.Total != 50 || res.Latency != nil {
		t.Fatalf("result %+v, want 50 connect errors and no latency", res)
	}
}

func TestRunStatusErrors(t *testing.T) {
	var i atomic.Int64
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch i.Add(1) % 4 {
		case 0:
			http.Error(w, "boom", http.StatusInternalServerError)
		case 1:
			http.NotFound(w, r)
		case 2:
			w.WriteHeader(http.StatusNoContent)
		default:
			hello(w, r)
		}
	})
	res, err := run(t, Options{URL: srv.URL, Requests: 400, Concurrency: 4, KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]int64{200: 100, 204: 100, 404: 100, 500: 100}
	for code, n := range want {
		if res.StatusCodes[code] != n {
			t.Errorf("status %d: %d, want %d (all: %v)", code, res.StatusCodes[code], n, res.StatusCodes)
		}
	}
	if res.Errors.Status != 200 || res.Errors.Total != 200 || res.OK != 200 || res.Completed != 400 {
		t.Errorf("errors %+v ok %d completed %d", res.Errors, res.OK, res.Completed)
	}
}

func TestRunTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		hello(w, r)
	})
	defer close(release)
	res, err := run(t, Options{URL: srv.URL + "/slow", Requests: 6, Concurrency: 3, Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors.Timeout != 6 || res.Errors.Total != 6 || res.Completed != 6 {
		t.Errorf("errors %+v completed %d, want 6 timeouts", res.Errors, res.Completed)
	}
}

// rawServer serves every connection with fn on a bare TCP listener, for
// answers net/http would not give.
func rawServer(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				fn(c, bufio.NewReader(c))
			})
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

// readRequest consumes one request's head.
func readRequest(br *bufio.Reader) bool {
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

func TestRunReadAndProtocolErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(c net.Conn, br *bufio.Reader)
		check func(e Errors) bool
	}{
		{"closed without answer", func(c net.Conn, br *bufio.Reader) { readRequest(br) },
			func(e Errors) bool { return e.Read == 20 }},
		{"reset", func(c net.Conn, br *bufio.Reader) {
			readRequest(br)
			_ = c.(*net.TCPConn).SetLinger(0) // close with RST
		}, func(e Errors) bool { return e.Read == 20 }},
		{"cut body", func(c net.Conn, br *bufio.Reader) {
			readRequest(br)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")
		}, func(e Errors) bool { return e.Read == 20 }},
		{"not http", func(c net.Conn, br *bufio.Reader) {
			readRequest(br)
			_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
		}, func(e Errors) bool { return e.Protocol == 20 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := rawServer(t, tc.serve)
			res, err := run(t, Options{URL: url, Requests: 20, Concurrency: 4, KeepAlive: true, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(res.Errors) || res.Errors.Total != 20 || res.Completed != 20 {
				t.Errorf("errors %+v completed %d (samples %v)", res.Errors, res.Completed, res.ErrorSamples)
			}
		})
	}
}

func TestRunKeepAliveServerCloses(t *testing.T) {
	// The server closes after each answer and says so: loadgen reconnects
	// without counting an error.
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		hello(w, r)
	})
	res, err := run(t, Options{URL: srv.URL, Requests: 100, Concurrency: 2, KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 100 || srv.conns.Load() != 100 {
		t.Errorf("ok %d conns %d errors %+v", res.OK, srv.conns.Load(), res.Errors)
	}
}

func TestRunRateHeld(t *testing.T) {
	srv := newTestServer(t, hello)
	res, err := run(t, Options{URL: srv.URL, Concurrency: 10, KeepAlive: true, RPS: 200, Duration: 1500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// The schedule, not the machine's speed, bounds the requests: never
	// more than 200 a second of the run (plus one due per client at the
	// start); how close to 300 a loaded machine gets is BenchmarkRateHeld's
	// measure, not a test.
	if limit := int64(200*res.DurationS) + 10 + 1; res.Completed < 1 || res.Completed > limit || res.Errors.Total != 0 {
		t.Errorf("completed %d in %.2fs (errors %+v), want 1..%d at 200 rps", res.Completed, res.DurationS, res.Errors, limit)
	}
	if !res.CoordinatedOmissionCorrected || res.RPSTarget != 200 || res.TimeLimitS != 1.5 {
		t.Errorf("result fields: co %v target %v limit %v", res.CoordinatedOmissionCorrected, res.RPSTarget, res.TimeLimitS)
	}
	if res.DurationS < 1.4 {
		t.Errorf("duration %v, want at least the 1.5 s time limit", res.DurationS)
	}
}

func TestRunRateCorrectsCoordinatedOmission(t *testing.T) {
	// One client, 100 rps due, and a server that stalls 300 ms once: the
	// requests due during the stall wait behind it, and their latency
	// counts from when they were due, as wrk2 measures.
	var once sync.Once
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { time.Sleep(300 * time.Millisecond) })
		hello(w, r)
	})
	res, err := run(t, Options{URL: srv.URL, Requests: 60, Concurrency: 1, KeepAlive: true, RPS: 100})
	if err != nil {
		t.Fatal(err)
	}
	// About 30 requests were due during the stall; without correction only
	// one would show a high latency and p90 would be tiny.
	if res.Latency.P90 < 50_000 || res.Latency.Max < 250_000 {
		t.Errorf("p90 %v µs, max %v µs: the stall is hidden", res.Latency.P90, res.Latency.Max)
	}
}

func TestRunDuration(t *testing.T) {
	srv := newTestServer(t, hello)
	res, err := run(t, Options{URL: srv.URL, Concurrency: 4, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Completed == 0 || res.Errors.Total != 0 || res.Interrupted {
		t.Errorf("completed %d errors %+v interrupted %v", res.Completed, res.Errors, res.Interrupted)
	}
	if res.DurationS < 0.29 {
		t.Errorf("duration %v, want at least the 0.3 s time limit", res.DurationS)
	}
}

func TestRunCancelReturnsPartial(t *testing.T) {
	// 100 fast answers, then a server that hangs: cancellation must stop
	// the blocked reads at once and keep what was done.
	var n atomic.Int64
	block := make(chan struct{})
	allStuck := make(chan struct{})
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch k := n.Add(1); {
		case k == 105: // the 5 clients are all waiting
			close(allStuck)
			fallthrough
		case k > 100:
			select {
			case <-block:
			case <-r.Context().Done():
			}
		}
		hello(w, r)
	})
	defer close(block)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-allStuck:
		case <-time.After(20 * time.Second):
		}
		cancel()
	}()
	res, err := Run(ctx, Options{URL: srv.URL, Requests: 1_000_000, Concurrency: 5, KeepAlive: true})
	if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Interrupted {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if res == nil || !res.Interrupted {
		t.Fatalf("result %+v, want a partial, interrupted result", res)
	}
	// The requests stuck in the hung server are abandoned, not errors.
	if res.Completed != 100 || res.Errors.Total != 0 {
		t.Errorf("completed %d errors %+v, want the 100 answered and no errors", res.Completed, res.Errors)
	}
}

func TestRunCancelDuringDialsCountsNoErrors(t *testing.T) {
	// Without keep-alive every request dials. When the caller cancels, the
	// dials under way fail with "operation was canceled": the run's end,
	// not the server's errors.
	// The run is cancelled once the server has answered 50 more requests
	// (structural: on a loaded machine a fixed time may see none).
	var served atomic.Int64
	var mu sync.Mutex
	var cancelAt int64
	var cancelRun context.CancelFunc
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		hello(w, r)
		n := served.Add(1)
		mu.Lock()
		if cancelRun != nil && n >= cancelAt {
			cancelRun()
		}
		mu.Unlock()
	})
	for round := 0; round < 5; round++ {
		ctx, cancel := context.WithCancel(context.Background())
		mu.Lock()
		cancelAt, cancelRun = served.Load()+50, cancel
		mu.Unlock()
		res, err := Run(ctx, Options{URL: srv.URL, Concurrency: 20})
		cancel()
		if !errors.Is(err, context.Canceled) || res == nil || !res.Interrupted {
			t.Fatalf("round %d: err %v result %+v", round, err, res)
		}
		if res.Completed == 0 || res.Errors.Total != 0 {
			t.Fatalf("round %d: completed %d, errors %+v %v; want answers and no errors", round, res.Completed, res.Errors, res.ErrorSamples)
		}
	}
}

func TestRunCancelIsPrompt(t *testing.T) {
	// Cancellation during connects, sleeps (rate) and reads ends the run:
	// the server never answers, so without it Run would never return (the
	// 60 s watchdog is a liveness bound, not a speed target).
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	for _, o := range []Options{
		{URL: srv.URL, Concurrency: 50, KeepAlive: true},
		{URL: srv.URL, Concurrency: 3, RPS: 0.5},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		type ran struct {
			res *Result
			err error
		}
		done := make(chan ran, 1)
		go func() {
			res, err := Run(ctx, o)
			done <- ran{res, err}
		}()
		var r ran
		select {
		case r = <-done:
		case <-time.After(60 * time.Second):
			t.Fatalf("%+v: Run did not return after its context was cancelled", o)
		}
		cancel()
		res, err := r.res, r.err
		if !errors.Is(err, context.DeadlineExceeded) || res == nil || !res.Interrupted || res.Completed != 0 {
			t.Errorf("%+v: err %v result %+v", o, err, res)
		}
	}
}

func TestRunTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(hello))
	defer srv.Close()
	res, err := run(t, Options{URL: srv.URL, Requests: 50, Concurrency: 5, KeepAlive: false, Insecure: true})
	if err != nil || res.OK != 50 {
		t.Fatalf("insecure: ok %v err %v", res, err)
	}
	// Without --insecure the test certificate is refused: connect errors.
	res, err = run(t, Options{URL: srv.URL, Requests: 5, Concurrency: 1})
	if fail.KindOf(err) != fail.Unreachable || res.Errors.Connect != 5 || !strings.Contains(res.ErrorSamples["connect"], "certificate") {
		t.Errorf("verified: err %v, errors %+v %v", err, res.Errors, res.ErrorSamples)
	}
}

func TestRunSendsMethodBodyHeaders(t *testing.T) {
	type seen struct{ method, body, ctype, header, ua, host string }
	got := make(chan seen, 10)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, string(b), r.Header.Get("Content-Type"), r.Header.Get("X-Test"), r.UserAgent(), r.Host}
		hello(w, r)
	})
	res, err := run(t, Options{
		URL: srv.URL + "/api/5", Requests: 3, Concurrency: 1, KeepAlive: true,
		Body: []byte(`{"n":5}`), ContentType: "application/json",
		Headers: []Header{{"X-Test", "yes"}},
	})
	if err != nil || res.OK != 3 {
		t.Fatalf("ok %v err %v", res, err)
	}
	s := <-got
	want := seen{"POST", `{"n":5}`, "application/json", "yes", "loadgen/" + Version, strings.TrimPrefix(srv.URL, "http://")}
	if s != want {
		t.Errorf("server saw %+v, want %+v", s, want)
	}
}

func TestRunBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"no url", Options{Concurrency: 1}, "no url"},
		{"zero clients", Options{URL: "http://127.0.0.1:1/", Concurrency: 0}, "concurrency must be at least 1"},
		{"negative requests", Options{URL: "http://127.0.0.1:1/", Concurrency: 1, Requests: -1}, "must not be negative"},
		{"websocket", Options{URL: "ws://127.0.0.1:1/", Concurrency: 1}, `unsupported scheme "ws"`},
		{"no scheme", Options{URL: "localhost:3000/", Concurrency: 1}, "scheme"},
		{"no host", Options{URL: "http:///x", Concurrency: 1}, "no host"},
		{"bad port", Options{URL: "http://127.0.0.1:99999/", Concurrency: 1}, "bad port"},
		{"bad header", Options{URL: "http://127.0.0.1:1/", Concurrency: 1, Headers: []Header{{"X", "a\r\nb"}}}, "bad header"},
		{"reserved header", Options{URL: "http://127.0.0.1:1/", Concurrency: 1, Headers: []Header{{"Connection", "close"}}}, "cannot be set"},
		{"bad method", Options{URL: "http://127.0.0.1:1/", Concurrency: 1, Method: "GE T"}, "bad method"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Run(context.Background(), tc.o)
			if res != nil || err == nil || fail.KindOf(err) != fail.Usage || fail.HintOf(err) == "" {
				t.Fatalf("got %v, %v; want a usage error with a hint", res, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestRunLargeAndChunkedBodies(t *testing.T) {
	chunk := strings.Repeat("x", 64<<10)
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fixed" {
			w.Header().Set("Content-Length", "1048576")
		}
		for range 16 { // 1 MiB, flushed in 64 KiB pieces: chunked unless fixed
			_, _ = io.WriteString(w, chunk)
			w.(http.Flusher).Flush()
		}
	})
	for _, path := range []string{"/chunked", "/fixed"} {
		res, err := run(t, Options{URL: srv.URL + path, Requests: 40, Concurrency: 4, KeepAlive: true})
		if err != nil || res.OK != 40 {
			t.Errorf("%s: err %v, result %+v", path, err, res)
		}
	}
	if srv.conns.Load() != 8 {
		t.Errorf("%d connections for 2 runs of 4 clients: bodies were not read to their end", srv.conns.Load())
	}
}

func TestRunLocalhostFallsBack(t *testing.T) {
	// The server listens on 127.0.0.1 only and "localhost" resolves to ::1
	// first (as on many systems): loadgen must try the next address, not
	// count errors.
	lookupIP = func(ctx context.Context, host string) ([]net.IPAddr, error) {
		return []net.IPAddr{{IP: net.IPv6loopback}, {IP: net.IPv4(127, 0, 0, 1)}}, nil
	}
	defer func() { lookupIP = net.DefaultResolver.LookupIPAddr }()
	srv := newTestServer(t, hello)
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	res, err := run(t, Options{URL: url, Requests: 50, Concurrency: 5})
	if err != nil || res.OK != 50 || res.Errors.Total != 0 {
		t.Fatalf("err %v, result %+v", err, res)
	}
}

func TestRunProgress(t *testing.T) {
	srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("i") == "" {
			time.Sleep(2 * time.Millisecond)
		}
		hello(w, r)
	})
	var mu sync.Mutex
	var reports []Progress
	res, err := run(t, Options{
		URL: srv.URL, Concurrency: 2, KeepAlive: true, Duration: 700 * time.Millisecond,
		ProgressInterval: 100 * time.Millisecond,
		Progress: func(p Progress) {
			mu.Lock()
			reports = append(reports, p)
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) < 1 {
		t.Fatalf("no progress report in 700 ms at 100 ms intervals")
	}
	for i, p := range reports {
		if p.Percent != -1 || p.Completed > res.Completed || p.Errors != 0 || p.IntervalMeanUS < 1000 && p.IntervalCompleted > 0 {
			t.Errorf("report %d: %+v", i, p)
		}
		if i > 0 && (p.Completed < reports[i-1].Completed || p.Completed-reports[i-1].Completed != p.IntervalCompleted) {
			t.Errorf("report %d not cumulative: %+v after %+v", i, p, reports[i-1])
		}
	}
	last := reports[len(reports)-1]
	if last.Completed == 0 || last.IntervalRPS <= 0 {
		t.Errorf("last report %+v", last)
	}
}
