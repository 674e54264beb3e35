package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// readBufferSize is each connection's read buffer; a status or header line
// longer than this is a protocol error.
const readBufferSize = 8 << 10

// Run load-tests o.URL and returns the result. It stops when o.Requests
// requests have completed, when o.Duration has passed, or when ctx is
// cancelled; in the last case it returns the partial result (Interrupted
// set) together with ctx's error, wrapped. Bad options give a fail.Usage
// error and no result; when every request failed to connect, Run returns the
// result and a fail.Unreachable error.
func Run(ctx context.Context, o Options) (*Result, error) {
	t, err := o.prepare()
	if err != nil {
		return nil, err
	}
	addrs, err := resolve(ctx, t)
	if err != nil {
		return nil, err
	}
	r := &runner{t: t, o: &o, addrs: addrs}
	if t.tls {
		r.tlsConfig = &tls.Config{
			ServerName:         t.host,
			InsecureSkipVerify: o.Insecure, //nolint:gosec // the user asked for it (--insecure)
			NextProtos:         []string{"http/1.1"},
			ClientSessionCache: tls.NewLRUClientSessionCache(t.concurrent),
		}
	}
	if o.RPS > 0 {
		r.interval = float64(time.Second) / o.RPS
	}

	stopCtx, stop := context.WithCancel(ctx)
	defer stop()
	r.stopCtx = stopCtx
	workers := make([]*worker, t.concurrent)
	digits := histDigits(t.concurrent)
	r.start = time.Now()
	keepEach := o.Requests > 0 && o.Requests <= EachMax
	for i := range workers {
		workers[i] = &worker{r: r, st: newStats(digits)}
		workers[i].st.t0, workers[i].st.keepEach = r.start, keepEach
	}

	var deadline <-chan time.Time
	if o.Duration > 0 {
		timer := time.NewTimer(o.Duration)
		defer timer.Stop()
		deadline = timer.C
	}
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(w.run)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if o.Progress != nil {
		reported := make(chan struct{})
		go r.report(workers, done, reported)
		defer func() { <-reported }()
	}

	var end time.Time
	select {
	case <-done:
		end = time.Now()
	case <-deadline:
		end = time.Now()
		r.halt(workers, stop)
		<-done
	case <-ctx.Done():
		end = time.Now()
		r.halt(workers, stop)
		<-done
	}

	total := newStats(digits)
	for _, w := range workers {
		total.merge(w.st)
	}
	res := &Result{
		Schema:                       Schema,
		Tool:                         Tool{Name: "loadgen", Version: Version},
		URL:                          o.URL,
		Method:                       t.method,
		Requests:                     o.Requests,
		Concurrency:                  t.concurrent,
		KeepAlive:                    o.KeepAlive,
		RPSTarget:                    o.RPS,
		TimeLimitS:                   o.Duration.Seconds(),
		Cores:                        o.Cores,
		Started:                      r.start.UTC(),
		DurationS:                    round(end.Sub(r.start).Seconds(), 6),
		LatencyResolutionUS:          1,
		CoordinatedOmissionCorrected: o.RPS > 0,
		Notes:                        t.notes,
	}
	total.fill(res)
	if res.DurationS > 0 {
		res.RPS = round(float64(res.Completed)/res.DurationS, 2)
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		// The workers stopped at the deadline (isStopped); the context's
		// timer marks it done a moment later.
		<-ctx.Done()
	}
	if err := ctx.Err(); err != nil {
		res.Interrupted = true
		return res, fmt.Errorf("load test of %s interrupted: %w", o.URL, err)
	}
	if res.Completed > 0 && res.Errors.Connect == res.Completed {
		return res, fail.New(fail.Unreachable,
			"check that the server is running and listening on "+t.hostPort(),
			fmt.Errorf("cannot connect to %s: all %d requests failed (%s)", t.hostPort(), res.Completed, res.ErrorSamples["connect"]))
	}
	return res, nil
}

// lookupIP resolves host names; a variable for tests.
var lookupIP = net.DefaultResolver.LookupIPAddr

// report calls o.Progress every interval until done is closed, then closes
// reported.
func (r *runner) report(workers []*worker, done <-chan struct{}, reported chan<- struct{}) {
	defer close(reported)
	every := r.o.ProgressInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last Progress
	var lastSumUS, lastResponses int64
	lastAt := r.start
	for {
		select {
		case <-done:
			return
		case <-r.stopCtx.Done():
			return
		case now := <-tick.C:
			var p Progress
			var sumUS, responses int64
			for _, w := range workers {
				p.Completed += w.st.liveCompleted.Load()
				p.Errors += w.st.liveFailed.Load()
				responses += w.st.liveResponses.Load()
				sumUS += w.st.liveSumUS.Load()
			}
			p.Elapsed = now.Sub(r.start)
			p.Percent = -1
			if r.o.Requests > 0 {
				p.Percent = 100 * float64(p.Completed) / float64(r.o.Requests)
			}
			p.IntervalCompleted = p.Completed - last.Completed
			p.IntervalErrors = p.Errors - last.Errors
			if d := now.Sub(lastAt).Seconds(); d > 0 {
				p.IntervalRPS = float64(p.IntervalCompleted) / d
			}
			if n := responses - lastResponses; n > 0 {
				p.IntervalMeanUS = float64(sumUS-lastSumUS) / float64(n)
			}
			r.o.Progress(p)
			last, lastSumUS, lastResponses, lastAt = p, sumUS, responses, now
		}
	}
}

// resolve looks the target's host up once, so that no request pays for it.
func resolve(ctx context.Context, t *target) ([]string, error) {
	if ip := net.ParseIP(t.host); ip != nil {
		return []string{net.JoinHostPort(t.host, t.port)}, nil
	}
	ips, err := lookupIP(ctx, t.host)
	if err != nil {
		return nil, fail.New(fail.Unreachable, "check the host name in the URL", fmt.Errorf("cannot resolve %s: %w", t.host, err))
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = net.JoinHostPort(ip.IP.String(), t.port)
	}
	return addrs, nil
}

// runner is the state shared by the workers of one run.
type runner struct {
	t         *target
	o         *Options
	addrs     []string
	preferred atomic.Int32 // index into addrs of the address that last worked
	tlsConfig *tls.Config
	start     time.Time
	interval  float64 // ns between requests with a rate, else 0
	tickets   atomic.Int64
	stopped   atomic.Bool
	stopCtx   context.Context
}

// halt stops the run: no new request starts, and requests in flight are
// abandoned (not counted) by putting their connections' deadlines in the
// past. The flag is set before the connections are looked at, and workers
// publish a connection before they check the flag, so none is missed.
func (r *runner) halt(workers []*worker, stop context.CancelFunc) {
	r.stopped.Store(true)
	stop()
	past := time.Unix(1, 0)
	for _, w := range workers {
		if c := w.cur.Load(); c != nil {
			_ = c.conn.SetDeadline(past)
		}
	}
}

// isStopped reports whether the run is over: halted, or its context (the
// caller's, e.g. Ctrl-C) cancelled. The second matters between the caller's
// cancel and halt: dials and reads fail with "operation was canceled" then,
// and counting those as the server's errors would report thousands of
// connect errors that never happened. A deadline counts from the instant it
// passes: dials fail with "i/o timeout" then, before the context's own timer
// has marked it done.
func (r *runner) isStopped() bool {
	if r.stopped.Load() || r.stopCtx.Err() != nil {
		return true
	}
	d, ok := r.stopCtx.Deadline()
	return ok && !time.Now().Before(d)
}

// connRef boxes a connection so that it can be published atomically.
type connRef struct{ conn net.Conn }

// worker is one client: one goroutine, one connection at a time.
type worker struct {
	r     *runner
	st    *stats
	cur   atomic.Pointer[connRef]
	conn  net.Conn
	rw    io.ReadWriter // conn, or its raw system-call form (rawio_linux.go)
	br    *bufio.Reader
	timer *time.Timer
}

func (w *worker) run() {
	r := w.r
	defer w.closeConn()
	limit := r.o.Requests
	for {
		seq := r.tickets.Add(1) - 1
		if (limit > 0 && seq >= limit) || r.isStopped() {
			return
		}
		var start time.Time
		if r.interval > 0 {
			start = r.start.Add(time.Duration(float64(seq) * r.interval))
			if !w.sleepUntil(start) {
				return
			}
		} else {
			start = time.Now()
		}
		if !w.do(start) {
			return
		}
	}
}

// sleepUntil waits until t; false means the run was stopped meanwhile.
func (w *worker) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	if w.timer == nil {
		w.timer = time.NewTimer(d)
	} else {
		w.timer.Reset(d)
	}
	select {
	case <-w.timer.C:
		return true
	case <-w.r.stopCtx.Done():
		w.timer.Stop()
		return false
	}
}

// do makes one request, measured from start, and records its outcome; false
// means the run was stopped and the request abandoned.
func (w *worker) do(start time.Time) bool {
	r := w.r
	if w.conn == nil {
		if err := w.dial(); err != nil {
			if r.isStopped() {
				return false
			}
			w.st.failedAfter(classifyDial(err), err, time.Since(start))
			return true
		}
	}
	if r.o.Timeout > 0 {
		_ = w.conn.SetDeadline(start.Add(r.o.Timeout))
		// halt may have put the deadline in the past just before this.
		if r.isStopped() {
			return false
		}
	}
	if _, err := w.rw.Write(r.t.request); err != nil {
		w.closeConn()
		if r.isStopped() {
			return false
		}
		w.st.failedAfter(classify(err, kindWrite), err, time.Since(start))
		return true
	}
	status, mustClose, err := readResponse(w.br, r.t.head)
	if err != nil {
		w.closeConn()
		if r.isStopped() {
			return false
		}
		w.st.failedAfter(classify(err, kindRead), err, time.Since(start))
		return true
	}
	w.st.response(status, time.Since(start))
	if mustClose || !r.o.KeepAlive {
		w.closeConn()
	}
	return true
}

// dial opens a connection, trying each address of the host from the one
// that last worked; the connection is published for halt before use.
func (w *worker) dial() error {
	r := w.r
	var d net.Dialer
	if r.o.Timeout > 0 {
		d.Timeout = r.o.Timeout
	}
	first := int(r.preferred.Load())
	var conn net.Conn
	var err error
	for i := range r.addrs {
		k := (first + i) % len(r.addrs)
		conn, err = d.DialContext(r.stopCtx, "tcp", r.addrs[k])
		if err == nil {
			if k != first {
				r.preferred.Store(int32(k))
			}
			break
		}
		if r.isStopped() {
			return err
		}
	}
	if err != nil {
		return err
	}
	if r.tlsConfig != nil {
		tc := tls.Client(conn, r.tlsConfig)
		w.publish(tc)
		if r.isStopped() {
			w.closeConn()
			return errStopped
		}
		if r.o.Timeout > 0 {
			_ = tc.SetDeadline(time.Now().Add(r.o.Timeout))
		}
		if err := tc.HandshakeContext(r.stopCtx); err != nil {
			w.closeConn()
			return &tlsError{err}
		}
		return nil
	}
	w.publish(conn)
	if r.isStopped() {
		w.closeConn()
		return errStopped
	}
	return nil
}

var errStopped = errors.New("stopped")

// tlsError marks a failed TLS handshake, counted as a connect error.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return "tls handshake: " + e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

func (w *worker) publish(c net.Conn) {
	w.conn = c
	w.rw = newFastIO(c)
	if w.br == nil {
		w.br = bufio.NewReaderSize(w.rw, readBufferSize)
	} else {
		w.br.Reset(w.rw)
	}
	w.cur.Store(&connRef{c})
}

func (w *worker) closeConn() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn, w.rw = nil, nil
		w.cur.Store(nil)
	}
}

// classifyDial sorts a dial error: a TLS handshake that timed out is a
// "timeout"; anything else (refused, unreachable, dial timeout) is "connect".
func classifyDial(err error) int {
	var te *tlsError
	if errors.As(err, &te) && isTimeout(err) {
		return kindTimeout
	}
	return kindConnect
}

// classify sorts an error on an established connection; def (write or read)
// is the kind for errors that are neither timeouts nor protocol errors:
// resets, broken pipes, early ends of the connection.
func classify(err error, def int) int {
	switch {
	case isTimeout(err):
		return kindTimeout
	case errors.Is(err, errProtocol):
		return kindProtocol
	}
	return def
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
