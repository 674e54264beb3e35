package sumserver

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// heavyN takes a second or two of loop on this kind of machine (~1 ns per
// iteration), more under load.
const heavyN = "2000000000"

// startHandler serves NewHandler(o) and returns its address and handler.
func startHandler(t *testing.T, o Options) (string, *handler) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(o).(*handler)
	srv := NewServer(ln.Addr().String(), h)
	go func() { _ = srv.Serve(WrapListener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String(), h
}

// waitComputing waits until the handler has n requests in flight, then a
// little more so that the loop has started.
func waitComputing(t *testing.T, h *handler, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.inFlight.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests never got in flight", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
}

// TestBlockingExperiment is the practice's browser-tab experiment: while a
// heavy /api/n runs, how long does GET / wait?
func TestBlockingExperiment(t *testing.T) {
	for _, mode := range []Mode{Serial, Parallel} {
		t.Run(mode.String(), func(t *testing.T) {
			addr, h := startHandler(t, Options{Mode: mode})
			start := time.Now()
			heavyDone := make(chan time.Time, 1)
			go func() {
				r, err := do(addr, request{method: "GET", target: "/api/" + heavyN}, time.Minute)
				if err != nil || r.status != 200 {
					t.Errorf("heavy request: %v %v", r, err)
				}
				heavyDone <- time.Now()
			}()
			waitComputing(t, h, 1)
			rootStart := time.Now()
			r, err := do(addr, request{method: "GET", target: "/"}, time.Minute)
			rootDone := time.Now()
			if err != nil || r.body != "Hello World!" {
				t.Fatalf("GET /: %v %v", r, err)
			}
			heavyEnd := <-heavyDone
			heavy := heavyEnd.Sub(start)
			wait := rootDone.Sub(rootStart)
			t.Logf("%s: heavy request %v, GET / during it %v", mode, heavy.Round(time.Millisecond), wait.Round(time.Millisecond))
			switch mode {
			case Serial:
				// GET / waits for the loop: it ends with (or after) the heavy one.
				if rootDone.Before(heavyEnd.Add(-200*time.Millisecond)) || wait < heavy/3 {
					t.Errorf("serial: GET / took %v and ended %v before the heavy request (%v): it did not wait", wait, heavyEnd.Sub(rootDone), heavy)
				}
			case Parallel:
				if wait > heavy/4 || !rootDone.Before(heavyEnd) {
					t.Errorf("parallel: GET / took %v during a %v heavy request: it waited", wait, heavy)
				}
			}
		})
	}
}

// TestClientGoneStopsLoop: a client that leaves stops its computation, and
// in serial mode a queued request whose client left is dropped unrun.
func TestClientGoneStopsLoop(t *testing.T) {
	events := make(chan SumEvent, 10)
	addr, h := startHandler(t, Options{Mode: Serial, OnSum: func(e SumEvent) { events <- e }})

	// A: the capped request (5e9 iterations, 5 s or more), left after 300 ms.
	ctxA, cancelA := context.WithCancel(context.Background())
	defer cancelA()
	go get(ctxA, addr, "/api/5000000000")
	waitComputing(t, h, 1)

	// B: queued behind A, left while waiting.
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	go get(ctxB, addr, "/api/6")
	waitComputing(t, h, 2)
	cancelB()
	select {
	case e := <-events:
		if !e.Dropped || e.Iterations != 0 || e.N != 6 {
			t.Fatalf("first event %+v, want B dropped unrun", e)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the queued request whose client left was not dropped")
	}

	time.Sleep(200 * time.Millisecond)
	left := time.Now()
	cancelA()
	select {
	case e := <-events:
		if e.Err == nil || e.Iterations <= 0 || e.Iterations >= Cap {
			t.Fatalf("event %+v, want A stopped part way with an error", e)
		}
		t.Logf("loop stopped %v after the client left, after %d iterations", time.Since(left).Round(time.Millisecond), e.Iterations)
	case <-time.After(3 * time.Second):
		t.Fatal("the loop went on more than 3 s after its client left (the whole loop takes 5 s or more)")
	}

	// The loop is free again.
	r, err := do(addr, request{method: "GET", target: "/api/6"}, 10*time.Second)
	if err != nil || r.body != "Final count is 21" {
		t.Fatalf("after the cancellations: %v %v", r, err)
	}
}

func get(ctx context.Context, addr, target string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+target, nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
	}
}

// TestWrapListenerKeepAlive sends pipelined requests on one connection in
// small pieces, with a body that looks like a request line.
func TestWrapListenerKeepAlive(t *testing.T) {
	addr, _ := startHandler(t, Options{})
	body := "GET /api/%zz HTTP/1.1\r\n"
	stream := "POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: " + itoa(len(body)) + "\r\n\r\n" + body +
		"GET /api/%zz HTTP/1.1\r\nHost: x\r\n\r\n" +
		"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" +
		"GET /api/\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		for i := 0; i < len(stream); i += 7 {
			_, _ = c.Write([]byte(stream[i:min(i+7, len(stream))]))
			time.Sleep(time.Millisecond)
		}
	}()
	br := bufio.NewReader(c)
	want := []struct {
		method string
		status int
		in     string
	}{
		{"POST", 404, "Cannot POST /nope"},
		{"GET", 400, "<pre>Bad Request</pre>"},
		{"OPTIONS", 404, "Cannot OPTIONS *"},
		{"GET", 400, ""},
	}
	for i, w := range want {
		r, err := readReply(br, w.method)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if r.status != w.status || !strings.Contains(r.body, w.in) {
			t.Errorf("reply %d: %d %q, want %d with %q", i, r.status, r.body, w.status, w.in)
		}
	}
	// Node's bare 400 closed that connection: a new one.
	r, err := do(addr, request{method: "GET", target: "/api/5"}, 10*time.Second)
	if err != nil || r.body != "Final count is 15" {
		t.Fatalf("GET /api/5: %v %v", r, err)
	}
}

func itoa(n int) string { return FormatNumber(float64(n)) }

// TestUnwrappedListener: served without WrapListener, the answers are the
// same but for malformed escapes, which get Go's own 400.
func TestUnwrappedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), NewHandler(Options{Mode: Parallel}))
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	addr := ln.Addr().String()
	for _, tt := range []struct {
		target string
		status int
		body   string
	}{
		{"/api/12abc", 200, "Final count is 78"},
		{"/nope", 404, errorPage("Cannot GET /nope")},
		{"/api/%E0%A4%A", 400, "400 Bad Request"},
		{"/api/\xff", 400, ""},
	} {
		r, err := do(addr, request{method: "GET", target: tt.target}, 10*time.Second)
		if err != nil || r.status != tt.status || r.body != tt.body {
			t.Errorf("GET %q: %v %v, want %d %q", tt.target, r, err, tt.status, tt.body)
		}
	}
}

func TestMaxInFlight(t *testing.T) {
	addr, h := startHandler(t, Options{Mode: Serial, MaxInFlight: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go get(ctx, addr, "/api/5000000000")
	waitComputing(t, h, 1)
	r, err := do(addr, request{method: "GET", target: "/"}, 10*time.Second)
	if err != nil || r.status != http.StatusServiceUnavailable {
		t.Fatalf("second request with MaxInFlight 1: %v %v, want 503", r, err)
	}
}

func TestNewServerTimeouts(t *testing.T) {
	srv := NewServer(":0", NewHandler(Options{}))
	if srv.ReadHeaderTimeout <= 0 || srv.MaxHeaderBytes <= 0 || srv.IdleTimeout <= 0 {
		t.Errorf("NewServer: ReadHeaderTimeout %v, MaxHeaderBytes %d, IdleTimeout %v: want all set",
			srv.ReadHeaderTimeout, srv.MaxHeaderBytes, srv.IdleTimeout)
	}
	if srv.WriteTimeout != 0 || srv.ReadTimeout != 0 {
		t.Errorf("NewServer: WriteTimeout %v, ReadTimeout %v: would cut long answers", srv.WriteTimeout, srv.ReadTimeout)
	}
	// A client that never finishes its headers is cut off: shorten the
	// timeout to see it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.ReadHeaderTimeout = 300 * time.Millisecond
	go func() { _ = srv.Serve(WrapListener(ln)) }()
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 512)
	start := time.Now()
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatal("a slow client kept its connection 10 s")
			}
			break
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("slow client cut after %v", d)
	}
}

func TestParseMode(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Mode
		err  bool
	}{{"serial", Serial, false}, {"parallel", Parallel, false}, {"", 0, true}, {"Serial", 0, true}} {
		m, err := ParseMode(tt.in)
		if (err != nil) != tt.err || (!tt.err && (m != tt.want || m.String() != tt.in)) {
			t.Errorf("ParseMode(%q) = %v, %v", tt.in, m, err)
		}
	}
	var zero Mode
	if zero != Serial {
		t.Error("the zero Mode is not Serial")
	}
}

// TestKeepAliveReuse: a keep-alive client (wrk, loadtest -k) keeps using
// one connection through WrapListener.
func TestKeepAliveReuse(t *testing.T) {
	addr, _ := startHandler(t, Options{})
	conns := 0
	tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		conns++
		return (&net.Dialer{}).DialContext(ctx, network, a)
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range 300 {
		resp, err := client.Get("http://" + addr + "/api/" + itoa(i%50))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		resp.Body.Close()
		if want := "Final count is " + itoa(float64Sum(i%50)); b.String() != want {
			t.Fatalf("request %d: %q, want %q", i, b.String(), want)
		}
	}
	if conns != 1 {
		t.Errorf("300 keep-alive requests used %d connections, want 1", conns)
	}
}

func float64Sum(n int) int { return n * (n + 1) / 2 }
