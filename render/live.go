package render

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/internal/fail"
)

// DefaultLiveAddr is where the live page listens unless another address
// is named: loopback only, so a classroom network does not see it.
const DefaultLiveAddr = "127.0.0.1:8080"

// Live serves the bench report while the bench runs: the page (GET /), its
// body alone (GET /fragment) and server-sent events (GET /events): an
// "update" event each time a run finishes, "done" when the bench is over.
// The page's small inline script swaps the body in on each update. Live is
// a bench.Progress, so it can be given to bench.Run next to the terminal's.
type Live struct {
	opts BenchOptions
	ln   net.Listener
	srv  *http.Server

	mu   sync.Mutex
	runs []*bench.Record
	subs map[chan string]struct{}
	done bool
}

// NewLive listens on addr (DefaultLiveAddr when "") and serves the report
// of runs (those already finished, may be nil) plus those added later.
func NewLive(addr string, runs []*bench.Record, o BenchOptions) (*Live, error) {
	if addr == "" {
		addr = DefaultLiveAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fail.New(fail.Usage, "pass a free address: --live 127.0.0.1:8081", fmt.Errorf("live page: %w", err))
	}
	o.Live = true
	l := &Live{opts: o, ln: ln, runs: append([]*bench.Record(nil), runs...), subs: map[chan string]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", l.page)
	mux.HandleFunc("GET /fragment", l.fragment)
	mux.HandleFunc("GET /events", l.events)
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = l.srv.Serve(ln) }()
	return l, nil
}

// Loopback reports whether addr (host:port) listens on loopback only.
func Loopback(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// URL is the page's address.
func (l *Live) URL() string { return "http://" + l.ln.Addr().String() + "/" }

// Add adds a finished run and tells the pages.
func (l *Live) Add(r *bench.Record) {
	l.mu.Lock()
	l.runs = append(l.runs, r)
	n := len(l.runs)
	l.mu.Unlock()
	l.broadcast("update", strconv.Itoa(n))
}

// Finish tells the pages that the bench is over: no more updates.
func (l *Live) Finish() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
	l.broadcast("done", "")
}

// Close stops serving.
func (l *Live) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.mu.Lock()
	for ch := range l.subs {
		close(ch)
		delete(l.subs, ch)
	}
	l.mu.Unlock()
	return l.srv.Shutdown(ctx)
}

func (l *Live) broadcast(event, data string) {
	msg := "event: " + event + "\ndata: " + data + "\n\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	for ch := range l.subs {
		select {
		case ch <- msg:
		default: // a slow page misses one update; the next brings all
		}
	}
}

func (l *Live) report() *BenchReport {
	l.mu.Lock()
	runs := append([]*bench.Record(nil), l.runs...)
	l.mu.Unlock()
	o := l.opts
	o.Generated = time.Now()
	return BuildBench(runs, o)
}

func (l *Live) page(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	if err := l.report().WriteHTML(&b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

func (l *Live) fragment(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	if err := l.report().WriteFragment(&b); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b.Bytes())
}

func (l *Live) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch := make(chan string, 16)
	l.mu.Lock()
	done := l.done
	if !done {
		l.subs[ch] = struct{}{}
	}
	l.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	if done {
		_, _ = fmt.Fprint(w, "event: done\ndata: \n\n")
		fl.Flush()
		return
	}
	fl.Flush()
	defer func() {
		l.mu.Lock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
		}
		l.mu.Unlock()
	}()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			if _, err := fmt.Fprint(w, msg); err != nil {
				return
			}
			fl.Flush()
		case <-keep.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// The bench.Progress side: each finished run updates the page.

func (l *Live) HostStart(string, int)    {}
func (l *Live) StepStart(string, string) {}
func (l *Live) HostDone(string, error)   {}
func (l *Live) Wait()                    {}
func (l *Live) StepDone(_, _ string, rec *bench.Record, err error) {
	if rec != nil && err == nil {
		l.Add(rec)
	}
}

var _ bench.Progress = (*Live)(nil)
