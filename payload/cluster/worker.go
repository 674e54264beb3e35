package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// WorkerConfig configures a worker process.
type WorkerConfig struct {
	// Handler serves the requests.
	Handler http.Handler
	// NewServer builds the server for Handler (its timeouts, limits); nil
	// means a plain &http.Server{Handler: h}. Its ConnState hook, if any, is
	// kept and called after the worker's own.
	NewServer func(addr string, h http.Handler) *http.Server
	// WrapListener, if set, wraps the worker's listener (e.g.
	// sumserver.WrapListener).
	WrapListener func(net.Listener) net.Listener
	// ShutdownTimeout bounds a drain: requests still running then are cut.
	// 0 means 30s.
	ShutdownTimeout time.Duration
	// IdleGrace is how long a draining worker keeps an idle keep-alive
	// connection open (a client may be sending on it right now; its answer
	// carries Connection: close). 0 means 1s.
	IdleGrace time.Duration
	// OnMessage, if set, receives the master's user messages (Broadcast,
	// BroadcastExcept, and Config.OnFork's, which all arrive before the
	// worker serves), one at a time, in order.
	OnMessage func(msg json.RawMessage)
	// OnStart, if set, is called once before the worker serves with a send
	// function for user messages to the master (Config.OnMessage); send is
	// safe for concurrent use and fails once the master is gone.
	OnStart func(send func(v any) error)
	// Logger gets the worker's few log lines; nil means stderr.
	Logger *log.Logger
}

// RunWorker serves as a worker of the master that started this process,
// until the master asks it to drain, the master goes away, or ctx is done
// (SIGTERM/SIGINT): then it stops receiving connections, finishes the
// requests in flight and returns nil (the process should exit 0).
func RunWorker(ctx context.Context, wc WorkerConfig) error {
	if code := os.Getenv(EnvTestExit); code != "" {
		n, _ := strconv.Atoi(code)
		os.Exit(n)
	}
	if !IsWorker() {
		return errors.New("not started as a cluster worker")
	}
	if wc.Handler == nil {
		return errors.New("worker: no handler")
	}
	if wc.ShutdownTimeout <= 0 {
		wc.ShutdownTimeout = 30 * time.Second
	}
	if wc.IdleGrace <= 0 {
		wc.IdleGrace = time.Second
	}
	id := os.Getenv(envWorkerID)
	if wc.Logger == nil {
		wc.Logger = log.New(os.Stderr, "worker "+os.Getenv(EnvWorker)+" (id "+id+", pid "+strconv.Itoa(os.Getpid())+"): ", 0)
	}
	signal.Ignore(syscall.SIGHUP)

	ipc, err := fdConn(ipcFD, "ipc")
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	defer ipc.Close()

	w := &workerRT{
		cfg:     wc,
		ipc:     ipc,
		c:       privateCell(),
		started: time.Now(),
		conns:   make(map[net.Conn]*connInfo),
		drainCh: make(chan string, 4),
		ackCh:   make(chan struct{}),
		gone:    make(chan struct{}),
		hello:   make(chan struct{}),
	}
	if v := os.Getenv(envShmCell); v != "" {
		i, err := strconv.Atoi(v)
		if err == nil {
			w.c, err = workerCell(shmFD, i)
		}
		if err != nil {
			return fmt.Errorf("worker: shared counters: %w", err)
		}
	}
	var ln net.Listener
	if os.Getenv(envListenFD) != "" {
		fl, err := newFDListener(listenFD)
		if err != nil {
			return fmt.Errorf("worker: inherited listener: %w", err)
		}
		ln = fl
	} else {
		w.chanLn = newChanListener()
		ln = w.chanLn
	}
	w.ln = ln
	if wc.WrapListener != nil {
		ln = wc.WrapListener(ln)
	}

	h := http.HandlerFunc(w.serveHTTP)
	if wc.NewServer != nil {
		w.srv = wc.NewServer("", h)
	} else {
		w.srv = &http.Server{Handler: h}
	}
	w.srv.Handler = h
	userState := w.srv.ConnState
	w.srv.ConnState = func(c net.Conn, s http.ConnState) {
		w.connState(c, s)
		if userState != nil {
			userState(c, s)
		}
	}

	if wc.OnStart != nil {
		wc.OnStart(func(v any) error {
			msg, err := userMsg(v)
			if err != nil {
				return fmt.Errorf("send to the master: %w", err)
			}
			return w.send(msg)
		})
	}
	go w.readIPC()
	// The master's greeting (Config.OnFork's messages) comes before serving.
	select {
	case <-w.hello:
	case <-w.gone:
	case <-ctx.Done():
	}
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		_ = w.srv.Serve(ln)
	}()
	go w.reporter()
	if err := w.send([]byte{msgReady}); err != nil {
		// The master is gone: nothing to serve for.
		w.beginDrain("master gone")
	}

	var reason string
	select {
	case reason = <-w.drainCh:
	case <-ctx.Done():
		reason = "signalled"
		// Ask the master to stop sending connections (and to fork a
		// successor) before closing the listener, or a connection sent
		// meanwhile would be lost.
		_ = w.send([]byte{msgQuit})
		if w.chanLn != nil {
			select {
			case <-w.ackCh:
			case <-w.gone:
			case <-time.After(2 * time.Second):
			}
		}
	}
	w.drain(reason, serveDone)
	return nil
}

type connInfo struct {
	state http.ConnState
	since time.Time
}

type workerRT struct {
	cfg     WorkerConfig
	ipc     *net.UnixConn
	srv     *http.Server
	ln      net.Listener // unwrapped
	chanLn  *chanListener
	started time.Time

	draining atomic.Bool

	c cell // the counters the master reads

	mu    sync.Mutex
	conns map[net.Conn]*connInfo
	nNew  int64
	nAct  int64

	drainCh   chan string
	drainOnce sync.Once
	ackCh     chan struct{}
	ackOnce   sync.Once
	gone      chan struct{} // closed when the master's socket reached EOF
	hello     chan struct{} // closed when the master's greeting is over
	helloOnce sync.Once
	sendMu    sync.Mutex
}

func (w *workerRT) send(b []byte) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	_ = w.ipc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := w.ipc.Write(b)
	return err
}

func (w *workerRT) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	if w.draining.Load() {
		// Tell keep-alive clients to go elsewhere: the connection closes
		// cleanly after this answer.
		rw.Header().Set("Connection", "close")
	}
	w.cfg.Handler.ServeHTTP(rw, r)
	w.c.served().Add(1)
	w.c.progress().Store(time.Now().UnixNano())
}

func (w *workerRT) connState(c net.Conn, s http.ConnState) {
	now := time.Now()
	w.mu.Lock()
	before := w.nNew + w.nAct
	ci := w.conns[c]
	if ci != nil {
		switch ci.state {
		case http.StateNew:
			w.nNew--
		case http.StateActive:
			w.nAct--
		}
	}
	switch s {
	case http.StateNew:
		w.nNew++
	case http.StateActive:
		w.nAct++
	}
	switch {
	case s == http.StateClosed || s == http.StateHijacked:
		delete(w.conns, c)
	case ci == nil:
		w.conns[c] = &connInfo{state: s, since: now}
	default:
		ci.state, ci.since = s, now
	}
	if before == 0 && w.nNew+w.nAct > 0 {
		// idle → busy counts as progress: a new request is not "stuck" yet.
		w.c.progress().Store(now.UnixNano())
	}
	w.c.inFlight().Store(w.nNew + w.nAct)
	w.c.conns().Store(int64(len(w.conns)))
	w.mu.Unlock()
}

// reporter sends a stats report (RSS, uptime) every second.
func (w *workerRT) reporter() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r, _ := rss(os.Getpid())
		b := []byte{msgStats}
		b = binary.LittleEndian.AppendUint64(b, uint64(r))
		b = binary.LittleEndian.AppendUint64(b, uint64(time.Since(w.started)))
		if w.send(b) != nil {
			return
		}
		<-tick.C
	}
}

func (w *workerRT) readIPC() {
	buf := make([]byte, maxMsg)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		msg, fds, err := readMsg(w.ipc, buf, oob)
		if err != nil {
			close(w.gone)
			w.beginDrain("master gone")
			return
		}
		switch msg[0] {
		case msgConn:
			if len(fds) != 1 || w.chanLn == nil {
				for _, fd := range fds {
					syscall.Close(fd)
				}
				continue
			}
			w.c.recv().Add(1)
			f := os.NewFile(uintptr(fds[0]), "conn")
			c, err := net.FileConn(f)
			f.Close()
			if err != nil {
				continue
			}
			if !w.chanLn.push(c) {
				c.Close()
			}
		case msgHello:
			for _, fd := range fds {
				syscall.Close(fd)
			}
			w.helloOnce.Do(func() { close(w.hello) })
		case msgDrain:
			for _, fd := range fds {
				syscall.Close(fd)
			}
			w.ackOnce.Do(func() { close(w.ackCh) })
			w.beginDrain("asked by the master")
		case msgUser:
			for _, fd := range fds {
				syscall.Close(fd)
			}
			if w.cfg.OnMessage != nil {
				w.cfg.OnMessage(json.RawMessage(append([]byte(nil), msg[1:]...)))
			}
		default:
			for _, fd := range fds {
				syscall.Close(fd)
			}
		}
	}
}

func (w *workerRT) beginDrain(reason string) {
	w.drainOnce.Do(func() { w.drainCh <- reason })
}

// drain stops receiving connections, answers what is in flight (with
// Connection: close), gives idle keep-alive connections IdleGrace to send one
// last request, and returns when every connection is closed or
// ShutdownTimeout ran out.
func (w *workerRT) drain(reason string, serveDone <-chan struct{}) {
	w.draining.Store(true)
	start := time.Now()
	if reason != "asked by the master" {
		w.cfg.Logger.Printf("draining: %s", reason)
	}
	_ = w.ln.Close() // queued connections are still accepted
	deadline := start.Add(w.cfg.ShutdownTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		now := time.Now()
		w.mu.Lock()
		for c, ci := range w.conns {
			if ci.state != http.StateIdle && ci.state != http.StateNew {
				continue
			}
			since := ci.since
			if since.Before(start) {
				since = start
			}
			if now.Sub(since) >= w.cfg.IdleGrace {
				c.Close()
			}
		}
		n := len(w.conns)
		w.mu.Unlock()
		served := false
		select {
		case <-serveDone:
			served = true
		default:
		}
		if n == 0 && served {
			break
		}
		if now.After(deadline) {
			w.cfg.Logger.Printf("drain timed out after %s with %d connections open; closing them", w.cfg.ShutdownTimeout, n)
			_ = w.srv.Close()
			break
		}
		<-tick.C
	}
}

// chanListener is the listener of a worker fed by its master: Accept returns
// the connections received over IPC; after Close it still returns those
// already received, then net.ErrClosed.
type chanListener struct {
	ch      chan net.Conn
	mu      sync.Mutex
	closed  bool
	closing chan struct{}
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn, 1024), closing: make(chan struct{})}
}

// push queues a connection; false if the listener is closed.
func (l *chanListener) push(c net.Conn) bool {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return false
	}
	select {
	case l.ch <- c:
		return true
	case <-l.closing:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closing:
		select {
		case c := <-l.ch:
			return c, nil
		default:
			return nil, net.ErrClosed
		}
	}
}

func (l *chanListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.closing)
	}
	return nil
}

func (l *chanListener) Addr() net.Addr { return ipcAddr{} }

type ipcAddr struct{}

func (ipcAddr) Network() string { return "ipc" }
func (ipcAddr) String() string  { return "master" }

// fdListener accepts on an inherited listening socket without ever putting
// it in blocking mode: os.File.Fd (which net.FileListener calls) would clear
// O_NONBLOCK on the socket shared with the master and the other workers, and
// their accept calls could then block a thread.
type fdListener struct {
	f    *os.File
	rc   syscall.RawConn
	addr net.Addr
}

func newFDListener(fd int) (*fdListener, error) {
	if err := syscall.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("setnonblock", err)
	}
	f := os.NewFile(uintptr(fd), "listener")
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	l := &fdListener{f: f, rc: rc}
	var sa syscall.Sockaddr
	_ = rc.Control(func(fd uintptr) { sa, _ = syscall.Getsockname(int(fd)) })
	l.addr = sockaddrToTCP(sa)
	return l, nil
}

func (l *fdListener) Accept() (net.Conn, error) {
	for {
		fd, err := acceptRaw(l.rc)
		if err != nil {
			var se *os.SyscallError
			if errors.As(err, &se) && temporaryAcceptErr(err) {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, net.ErrClosed // the poller's "use of closed file"
		}
		f := os.NewFile(uintptr(fd), "conn")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			continue
		}
		return c, nil
	}
}

func (l *fdListener) Close() error   { return l.f.Close() }
func (l *fdListener) Addr() net.Addr { return l.addr }

// acceptRaw accepts one connection on a pollable listening socket, waiting
// with the runtime's poller. The new descriptor is blocking and close-on-exec
// (so that wrapping it in an os.File costs no poller registration).
func acceptRaw(rc syscall.RawConn) (int, error) {
	nfd := -1
	var aerr error
	err := rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = syscall.Accept4(int(fd), syscall.SOCK_CLOEXEC)
		return aerr != syscall.EAGAIN
	})
	if err != nil {
		return -1, err
	}
	if aerr != nil {
		return -1, os.NewSyscallError("accept4", aerr)
	}
	return nfd, nil
}

// temporaryAcceptErr: errors after which accepting again makes sense.
func temporaryAcceptErr(err error) bool {
	return errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EMFILE) ||
		errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EINTR) ||
		errors.Is(err, syscall.EPROTO) || errors.Is(err, syscall.EPERM)
}

func sockaddrToTCP(sa syscall.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(a.Addr[:]), Port: a.Port}
	}
	return &net.TCPAddr{}
}
