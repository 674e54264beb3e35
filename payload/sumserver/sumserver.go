// Package sumserver is the practice's Express app rewritten in Go: GET / answers
// "Hello World!" and GET /api/:n sums 0..n in a float64 loop, with JavaScript's
// parseInt and Number formatting, so that its answers match Express's exactly
// (status, body, Content-Type, ETag, 304s, Express's 404 and 400 pages).
// In Serial mode it computes one request at a time, like Node's single thread,
// so the practice's blocking experiment reproduces; Parallel mode is idiomatic Go.
//
// The differential test in this package runs the real Express app
// (package nodeapp) next to the handler and compares their answers.
package sumserver

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// Mode is the event-loop mode.
type Mode int

const (
	// Serial computes one request at a time, like Node's event loop.
	Serial Mode = iota
	// Parallel serves requests concurrently, as idiomatic Go does.
	Parallel
)

// ParseMode parses "serial" or "parallel".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "serial":
		return Serial, nil
	case "parallel":
		return Parallel, nil
	}
	return 0, fmt.Errorf("unknown mode %q (want serial or parallel)", s)
}

func (m Mode) String() string {
	if m == Parallel {
		return "parallel"
	}
	return "serial"
}

// DefaultMaxInFlight is the default bound on requests being served or
// waiting for the event loop; more are answered 503 at once, so that a flood
// cannot queue without limit.
const DefaultMaxInFlight = 4096

// Options configure the handler.
type Options struct {
	Mode Mode
	// MaxInFlight bounds the requests being served or queued at once
	// (0 means DefaultMaxInFlight); beyond it the answer is 503.
	MaxInFlight int
	// OnSum, if set, is called after every /api/:n request that reached the
	// loop or was dropped while queued (for tests and statistics). It runs on
	// the request's goroutine and must be quick.
	OnSum func(SumEvent)
}

// SumEvent describes one /api/:n request.
type SumEvent struct {
	N          float64       // parseInt of the parameter, before the cap
	Iterations int64         // loop iterations run
	Wait       time.Duration // time queued for the event loop (Serial mode)
	Compute    time.Duration // time in the loop
	Dropped    bool          // the client left while the request was queued
	Err        error         // the context's error if the client left mid-loop
}

// NewHandler returns the app's handler.
func NewHandler(o Options) http.Handler {
	h := &handler{opts: o, max: int64(o.MaxInFlight)}
	if h.max <= 0 {
		h.max = DefaultMaxInFlight
	}
	if o.Mode == Serial {
		h.loop = make(chan struct{}, 1)
	}
	return h
}

// NewServer returns an *http.Server for h with timeouts suited to the app
// (serve it on WrapListener(ln) to get Express's answers to malformed
// request targets too):
// slow clients get 10 s to send their headers, idle keep-alive connections
// are closed after 5 s (Node's default), headers are limited to 16 KiB like
// Node's. There is no write timeout: a capped /api/n answer takes 5-10 s.
func NewServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       5 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ConnContext:       connContext,
	}
}

type handler struct {
	opts     Options
	max      int64
	inFlight atomic.Int64
	loop     chan struct{} // the event loop's token in Serial mode; nil in Parallel
}

// answer is a response ready to write.
type answer struct {
	status int
	header [][2]string
	body   string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// What Node's HTTP parser refuses never reaches Express: a bare 400.
	target, ok := requestTarget(r.Context(), r.RequestURI)
	if r.ProtoMajor != 1 || !nodeMethods[r.Method] || !ok {
		w.Header().Set("Connection", "close")
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if h.inFlight.Add(1) > h.max {
		h.inFlight.Add(-1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "server busy", http.StatusServiceUnavailable)
		return
	}
	defer h.inFlight.Add(-1)

	ctx := r.Context()
	rt, param, perr := routeTarget(target)
	var n float64
	if rt == routeAPI && perr == nil {
		n = ParseInt(param)
	}

	queued := time.Now()
	if h.loop != nil {
		select {
		case h.loop <- struct{}{}:
		case <-ctx.Done():
			h.dropped(rt, n, time.Since(queued))
			return
		}
		if ctx.Err() != nil {
			<-h.loop
			h.dropped(rt, n, time.Since(queued))
			return
		}
	}
	a, ok := h.answer(ctx, r, target, rt, perr, n, time.Since(queued))
	if h.loop != nil {
		<-h.loop
	}
	if ok {
		write(w, r, a)
	}
}

func (h *handler) dropped(rt route, n float64, wait time.Duration) {
	if rt == routeAPI && h.opts.OnSum != nil {
		h.opts.OnSum(SumEvent{N: n, Wait: wait, Dropped: true, Err: context.Canceled})
	}
}

// routeTarget decides which of the app's routes a request target reaches; perr
// is a 400 error when the matching route's parameter is not valid
// percent-encoding.
func routeTarget(target string) (rt route, param string, perr error) {
	p, ok := pathname(target)
	if !ok {
		return routeNone, "", nil
	}
	rt, raw := matchRoute(p)
	if rt == routeAPI {
		param, perr = decodeURIComponent(raw)
	}
	return rt, param, perr
}

// answer computes the response, running the loop for /api/:n. ok is false
// when the client left during the loop: nobody is left to answer.
func (h *handler) answer(ctx context.Context, r *http.Request, target string, rt route, perr error, n float64, wait time.Duration) (answer, bool) {
	switch {
	case perr != nil:
		return errorAnswer(http.StatusBadRequest, "Bad Request"), true
	case rt == routeNone:
		return notFound(r.Method, target), true
	case r.Method == http.MethodOptions:
		// Express answers OPTIONS itself with the methods of the routes
		// that match (both routes have GET and its implicit HEAD).
		const allow = "GET, HEAD"
		return answer{status: http.StatusOK, body: allow, header: [][2]string{
			{"Allow", allow},
			{"Content-Type", "text/plain"},
			{"X-Content-Type-Options", "nosniff"},
		}}, true
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		return notFound(r.Method, target), true
	case rt == routeRoot:
		return sendAnswer(r, "Hello World!"), true
	}
	start := time.Now()
	count, iters, err := Sum(ctx, n)
	if h.opts.OnSum != nil {
		h.opts.OnSum(SumEvent{N: n, Iterations: iters, Wait: wait, Compute: time.Since(start), Err: err})
	}
	if err != nil {
		return answer{}, false
	}
	return sendAnswer(r, "Final count is "+FormatNumber(count)), true
}

// sendAnswer is Express's res.send(string): HTML, ETag, 304 when fresh.
func sendAnswer(r *http.Request, body string) answer {
	etag := ETag([]byte(body))
	if fresh(headerList(r, "If-None-Match"), r.Header.Get("If-Modified-Since"), headerList(r, "Cache-Control"), etag) {
		return answer{status: http.StatusNotModified, header: [][2]string{{"ETag", etag}}}
	}
	return answer{status: http.StatusOK, body: body, header: [][2]string{
		{"Content-Type", "text/html; charset=utf-8"},
		{"ETag", etag},
	}}
}

// headerList joins repeated header lines with ", " as Node does.
func headerList(r *http.Request, name string) string {
	v := r.Header.Values(name)
	switch len(v) {
	case 0:
		return ""
	case 1:
		return v[0]
	}
	s := v[0]
	for _, x := range v[1:] {
		s += ", " + x
	}
	return s
}

// notFound is finalhandler's 404: "Cannot <METHOD> <path>".
func notFound(method, target string) answer {
	p, ok := pathname(target)
	if !ok {
		p = "null" // encodeurl(String(null))
	}
	return errorAnswer(http.StatusNotFound, "Cannot "+method+" "+encodeURL(p))
}

// errorAnswer is finalhandler's error document with its security headers.
func errorAnswer(status int, msg string) answer {
	return answer{status: status, body: errorPage(msg), header: [][2]string{
		{"Content-Security-Policy", "default-src 'none'"},
		{"X-Content-Type-Options", "nosniff"},
		{"Content-Type", "text/html; charset=utf-8"},
	}}
}

func write(w http.ResponseWriter, r *http.Request, a answer) {
	hd := w.Header()
	for _, kv := range a.header {
		hd[kv[0]] = []string{kv[1]} // as written: "ETag", not "Etag"
	}
	if a.status != http.StatusNotModified {
		hd["Content-Length"] = []string{strconv.Itoa(len(a.body))}
	}
	w.WriteHeader(a.status)
	if r.Method != http.MethodHead && a.status != http.StatusNotModified {
		_, _ = w.Write([]byte(a.body))
	}
}
