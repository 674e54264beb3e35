package cluster

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config configures a master.
type Config struct {
	// Addr is host:port to listen on; port 0 picks a free one.
	Addr string
	// Instances: 0 means one worker per CPU, -1 one per CPU but one, N > 0 N.
	Instances int
	Schedule  Schedule
	// Recycling: replace a worker (with zero downtime) once it has served
	// MaxRequests requests, been up MaxAge, or its RSS reached MaxMemory
	// bytes. Zero disables each.
	MaxRequests uint64
	MaxAge      time.Duration
	MaxMemory   int64
	// StatsSocket is the unix socket serving Stats as JSON; "" means
	// DefaultStatsSocket(port).
	StatsSocket string
	// ShutdownTimeout bounds a worker's drain (the worker cuts what is still
	// running then); the master kills a worker that outlives it by 5s.
	// 0 means 30s.
	ShutdownTimeout time.Duration
	// ReadyTimeout bounds a new worker's start-up during a replacement;
	// 0 means 30s.
	ReadyTimeout time.Duration
	// Logger gets one line per event (fork, ready, exit, reload, recycle);
	// nil means stderr.
	Logger *log.Logger
	// Executable is the binary workers run; "" means this process's own
	// (os.Executable, i.e. /proc/self/exe resolved at start: a binary
	// replaced at that path by rename is what the next reload runs).
	Executable string
	// Args is the workers' argv (argv[0] included); nil means os.Args.
	Args []string
	// Env is the workers' environment (the cluster's variables are added);
	// nil means os.Environ() without NOTIFY_SOCKET.
	Env []string
}

// Worker states.
const (
	stStarting int32 = iota
	stReady
	stDraining
	stExited
)

var stateNames = [...]string{"starting", "ready", "draining", "exited"}

// blockedAfter: a worker with requests in flight and no progress for this
// long (a long computation on a serial event loop) ranks after the others.
const blockedAfter = 20 * time.Millisecond

// connWait bounds how long the master holds a connection while no worker is
// ready (all crashed, or starting).
const connWait = 10 * time.Second

// Master is a running cluster master.
type Master struct {
	cfg       Config
	n         int
	log       *log.Logger
	ln        *os.File // the listening socket (a pollable file: its RawConn can wait)
	rc        syscall.RawConn
	lfd       int
	addr      *net.TCPAddr
	statsLn   *net.UnixListener
	statsPath string
	exe       string
	args      []string
	env       []string
	devnull   int
	shm       *shmRegion
	started   time.Time

	mu         sync.Mutex
	slots      []*slot
	all        map[*worker]struct{}
	stopping   bool
	killed     bool // Kill was called
	ready      bool
	nextID     int
	forks      int
	restarts   int
	reloads    int
	recycled   int
	servedGone uint64
	routeCh    chan struct{} // closed when the routes change

	routes atomic.Pointer[[]*worker]
	rr     atomic.Uint64

	replaceCh    chan replaceReq
	stopCh       chan struct{}
	dispatchDone chan struct{}
	replacerDone chan struct{}
	done         chan struct{}
	err          error
}

type slot struct {
	id             int
	cur            *worker
	restarts       int
	backoff        time.Duration
	replacing      bool
	respawnPending bool
	recycleQueued  bool
	everReady      bool
}

type worker struct {
	slot    int
	id      int
	pid     int
	proc    *os.Process
	ipc     *net.UnixConn
	started time.Time
	readyAt time.Time // under Master.mu

	state     atomic.Int32
	requested bool // under Master.mu: the master asked it to stop
	exitDesc  string

	ready     chan struct{}
	readyOnce sync.Once
	exited    chan struct{}
	readDone  chan struct{}

	sendMu sync.Mutex
	closed bool // under sendMu: no more connections

	handed  atomic.Uint64
	rssRep  atomic.Int64
	cellIdx int
	c       cell // counters the worker keeps in shared memory
}

type replaceReq struct {
	slot   *slot // nil: reload every slot
	reason string
	done   chan error
}

// Start binds the port and the stats socket, forks the workers and returns
// the running master. Cancelling ctx stops it gracefully; Wait returns when
// it has stopped.
func Start(ctx context.Context, cfg Config) (*Master, error) {
	n, err := Instances(cfg.Instances, runtime.NumCPU())
	if err != nil {
		return nil, err
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	m := &Master{
		cfg:          cfg,
		n:            n,
		log:          cfg.Logger,
		lfd:          -1,
		devnull:      -1,
		started:      time.Now(),
		all:          make(map[*worker]struct{}),
		routeCh:      make(chan struct{}),
		replaceCh:    make(chan replaceReq, 16),
		stopCh:       make(chan struct{}),
		replacerDone: make(chan struct{}),
		done:         make(chan struct{}),
	}
	if m.log == nil {
		m.log = log.New(os.Stderr, "master: ", 0)
	}
	empty := []*worker{}
	m.routes.Store(&empty)

	m.exe = cfg.Executable
	if m.exe == "" {
		if m.exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
	}
	m.args = cfg.Args
	if m.args == nil {
		m.args = os.Args
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "NOTIFY_SOCKET", EnvWorker, envWorkerID, envListenFD:
			continue
		}
		m.env = append(m.env, kv)
	}

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	m.addr = ln.Addr().(*net.TCPAddr)
	// A net.Listener's RawConn cannot wait for readiness; an *os.File's can.
	m.ln, err = ln.(*net.TCPListener).File()
	ln.Close()
	if err != nil {
		return nil, fmt.Errorf("listener: %w", err)
	}
	if m.rc, err = m.ln.SyscallConn(); err != nil {
		m.ln.Close()
		return nil, fmt.Errorf("listener: %w", err)
	}
	_ = m.rc.Control(func(fd uintptr) { m.lfd = int(fd) })

	m.statsPath = cfg.StatsSocket
	if m.statsPath == "" {
		m.statsPath = DefaultStatsSocket(m.addr.Port)
	}
	if m.statsLn, err = ListenStats(m.statsPath); err != nil {
		m.ln.Close()
		return nil, err
	}
	if m.devnull, err = syscall.Open(os.DevNull, syscall.O_RDWR|syscall.O_CLOEXEC, 0); err != nil {
		m.ln.Close()
		m.statsLn.Close()
		return nil, fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	// Cells for every worker, draining ones and replacements included. The
	// region stays mapped for the master's life (a stale reader may touch a
	// cell at any time; a reused cell only gives it other numbers).
	if m.shm, err = newShmRegion(4*n + 16); err != nil {
		m.ln.Close()
		m.statsLn.Close()
		syscall.Close(m.devnull)
		return nil, err
	}

	m.logf("listening on %s, %d workers, schedule %s, stats on %s", m.addr, n, cfg.Schedule, m.statsPath)
	m.mu.Lock()
	for i := 1; i <= n; i++ {
		s := &slot{id: i}
		m.slots = append(m.slots, s)
		w, err := m.spawnLocked(s)
		if err != nil {
			m.mu.Unlock()
			m.abortStart()
			return nil, err
		}
		s.cur = w
	}
	m.mu.Unlock()

	if cfg.Schedule != None {
		m.dispatchDone = make(chan struct{})
		go m.dispatch()
	}
	go m.serveStats()
	go m.replacer()
	go m.monitor()
	go func() {
		select {
		case <-ctx.Done():
			m.Stop()
		case <-m.done:
		}
	}()
	return m, nil
}

// abortStart undoes a failed Start: kills the workers forked so far.
func (m *Master) abortStart() {
	m.mu.Lock()
	m.stopping = true
	close(m.stopCh)
	ws := m.workersLocked()
	m.mu.Unlock()
	for _, w := range ws {
		_ = w.proc.Kill()
		<-w.exited
	}
	m.ln.Close()
	m.statsLn.Close()
	syscall.Close(m.devnull)
	close(m.replacerDone)
	close(m.done)
}

// Addr is the address the cluster listens on.
func (m *Master) Addr() *net.TCPAddr { return m.addr }

// StatsSocket is the path of the stats socket.
func (m *Master) StatsSocket() string { return m.statsPath }

// Wait blocks until the master has stopped and returns nil if every worker
// drained in time.
func (m *Master) Wait() error {
	<-m.done
	return m.err
}

func (m *Master) logf(format string, args ...any) { m.log.Printf(format, args...) }

func (w *worker) String() string {
	return fmt.Sprintf("worker %d (id %d, pid %d)", w.slot, w.id, w.pid)
}

// spawnLocked forks a worker for s. The caller holds m.mu.
func (m *Master) spawnLocked(s *slot) (*worker, error) {
	if m.stopping {
		return nil, errStopping
	}
	cellIdx, c, err := m.shm.alloc()
	if err != nil {
		return nil, err
	}
	uc, childFD, err := socketpair()
	if err != nil {
		m.shm.release(cellIdx)
		return nil, err
	}
	m.nextID++
	id := m.nextID
	env := append(slices.Clip(m.env), EnvWorker+"="+strconv.Itoa(s.id), envWorkerID+"="+strconv.Itoa(id),
		envShmCell+"="+strconv.Itoa(cellIdx))
	files := []uintptr{uintptr(m.devnull), 1, 2, uintptr(childFD), uintptr(m.devnull), uintptr(m.shm.fd)}
	if m.cfg.Schedule == None {
		files[listenFD] = uintptr(m.lfd)
		env = append(env, envListenFD+"="+strconv.Itoa(listenFD))
	}
	pid, _, err := syscall.StartProcess(m.exe, m.args, &syscall.ProcAttr{
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM},
	})
	syscall.Close(childFD)
	if err != nil {
		uc.Close()
		m.shm.release(cellIdx)
		return nil, fmt.Errorf("fork worker %d: %s: %w", s.id, m.exe, err)
	}
	proc, err := os.FindProcess(pid)
	if err != nil {
		// Cannot happen on Linux; the cell stays taken.
		uc.Close()
		return nil, fmt.Errorf("fork worker %d: %w", s.id, err)
	}
	w := &worker{
		slot: s.id, id: id, pid: pid, proc: proc, ipc: uc, started: time.Now(),
		ready: make(chan struct{}), exited: make(chan struct{}), readDone: make(chan struct{}),
		cellIdx: cellIdx, c: c,
	}
	c.progress().Store(time.Now().UnixNano())
	m.forks++
	m.all[w] = struct{}{}
	m.logf("%s started", w)
	go m.readIPC(w)
	go m.wait(w)
	return w, nil
}

func (m *Master) readIPC(w *worker) {
	defer close(w.readDone)
	buf := make([]byte, maxMsg)
	oob := make([]byte, syscall.CmsgSpace(4*4))
	for {
		msg, fds, err := readMsg(w.ipc, buf, oob)
		for _, fd := range fds {
			syscall.Close(fd) // workers send none
		}
		if err != nil {
			return
		}
		switch msg[0] {
		case msgReady:
			m.onReady(w)
		case msgStats:
			if len(msg) == 17 {
				w.rssRep.Store(int64(binary.LittleEndian.Uint64(msg[1:])))
			}
		case msgQuit:
			go m.onQuit(w)
		}
	}
}

func (m *Master) onReady(w *worker) {
	m.mu.Lock()
	if w.state.CompareAndSwap(stStarting, stReady) {
		w.readyAt = time.Now()
	}
	s := m.slots[w.slot-1]
	if s.cur == w && w.state.Load() == stReady {
		s.everReady = true
		m.rebuildLocked()
	}
	m.mu.Unlock()
	w.readyOnce.Do(func() { close(w.ready) })
	m.logf("%s ready in %s", w, time.Since(w.started).Round(time.Millisecond))
}

// onQuit: the worker was signalled (not by us) and asks to leave: stop
// sending it connections, let it drain, and fork a successor.
func (m *Master) onQuit(w *worker) {
	m.mu.Lock()
	s := m.slots[w.slot-1]
	wasCur := s.cur == w
	up := time.Since(w.started)
	m.mu.Unlock()
	m.logf("%s was signalled; draining it", w)
	m.retire(w, false)
	m.mu.Lock()
	if wasCur && !m.stopping && !s.replacing {
		s.restarts++
		m.restarts++
		s.backoff = nextBackoff(s.backoff, up)
		m.logf("worker %d: restarting in %s", s.id, s.backoff)
		m.respawnAfterLocked(s, s.backoff)
	}
	m.mu.Unlock()
}

func (m *Master) wait(w *worker) {
	st, err := w.proc.Wait()
	// Let the reader see the worker's last messages.
	select {
	case <-w.readDone:
	case <-time.After(time.Second):
	}
	w.ipc.Close()
	<-w.readDone
	m.onExit(w, describeExit(st, err))
}

func describeExit(st *os.ProcessState, err error) string {
	if err != nil {
		return err.Error()
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			return "killed by signal " + strconv.Itoa(int(ws.Signal())) + " (" + ws.Signal().String() + ")"
		case ws.Exited():
			return "exit code " + strconv.Itoa(ws.ExitStatus())
		}
	}
	return st.String()
}

func (m *Master) onExit(w *worker, desc string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.all, w)
	served := w.c.served().Load()
	m.servedGone += served
	m.shm.release(w.cellIdx)
	prev := w.state.Swap(stExited)
	w.exitDesc = desc
	s := m.slots[w.slot-1]
	wasCur := s.cur == w
	if wasCur {
		s.cur = nil
		m.rebuildLocked()
	}
	up := time.Since(w.started).Round(time.Millisecond)
	close(w.exited)
	if w.requested || m.stopping {
		m.logf("%s exited: %s (served %d)", w, desc, served)
		return
	}
	if prev == stDraining || !wasCur {
		// Signalled by someone else (onQuit respawns), or a replacement
		// that died before it was ready (the replacer handles it).
		m.logf("%s exited: %s after %s", w, desc, up)
		return
	}
	s.restarts++
	m.restarts++
	if s.replacing {
		m.logf("%s exited unexpectedly: %s after %s; its replacement is starting", w, desc, up)
		return
	}
	s.backoff = nextBackoff(s.backoff, up)
	m.logf("%s exited unexpectedly: %s after %s; restarting in %s", w, desc, up, s.backoff)
	m.respawnAfterLocked(s, s.backoff)
}

// respawnAfterLocked forks a worker for s after d, unless something else
// filled the slot meanwhile. The caller holds m.mu.
func (m *Master) respawnAfterLocked(s *slot, d time.Duration) {
	if s.respawnPending {
		return
	}
	s.respawnPending = true
	time.AfterFunc(d, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		s.respawnPending = false
		if m.stopping || s.cur != nil || s.replacing {
			return
		}
		w, err := m.spawnLocked(s)
		if err != nil {
			s.backoff = nextBackoff(s.backoff, 0)
			m.logf("worker %d: %v; retrying in %s", s.id, err, s.backoff)
			m.respawnAfterLocked(s, s.backoff)
			return
		}
		s.cur = w
	})
}

// rebuildLocked publishes the set of workers that receive connections: each
// slot's current worker once ready. The caller holds m.mu.
func (m *Master) rebuildLocked() {
	r := make([]*worker, 0, len(m.slots))
	for _, s := range m.slots {
		if s.cur != nil && s.cur.state.Load() == stReady {
			r = append(r, s.cur)
		}
	}
	m.routes.Store(&r)
	close(m.routeCh)
	m.routeCh = make(chan struct{})
}

func (m *Master) routesChanged() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.routeCh
}

// retire stops sending connections to w and asks it to drain; requested
// means the master wants it gone (no respawn when it exits).
func (m *Master) retire(w *worker, requested bool) {
	m.mu.Lock()
	if requested {
		w.requested = true
	}
	if w.state.Load() == stExited {
		m.mu.Unlock()
		return
	}
	w.state.Store(stDraining)
	if s := m.slots[w.slot-1]; s.cur == w {
		s.cur = nil
	}
	m.rebuildLocked()
	m.mu.Unlock()

	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	_ = w.ipc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, _ = w.ipc.Write([]byte{msgDrain})
}

var errDraining = errors.New("worker is draining")

func (m *Master) sendConn(w *worker, fd int) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	if w.closed {
		return errDraining
	}
	w.handed.Add(1)
	_ = w.ipc.SetWriteDeadline(time.Now().Add(time.Second))
	if err := sendFD(w.ipc, fd); err != nil {
		w.handed.Add(^uint64(0))
		return err
	}
	return nil
}

// dispatch accepts connections and hands them to workers (schedules Least
// and RoundRobin).
func (m *Master) dispatch() {
	defer close(m.dispatchDone)
	var lastLog time.Time
	for {
		fd, err := acceptRaw(m.rc)
		if err != nil {
			var se *os.SyscallError
			if !errors.As(err, &se) {
				return // the listener was closed
			}
			if time.Since(lastLog) > 5*time.Second {
				m.logf("accept: %v", err)
				lastLog = time.Now()
			}
			select {
			case <-m.stopCh:
				return
			case <-time.After(10 * time.Millisecond):
			}
			continue
		}
		m.handOff(fd)
	}
}

// handOff passes one accepted connection to a worker, waiting up to
// connWait for one to be ready; the master's copy is closed either way.
func (m *Master) handOff(fd int) {
	defer syscall.Close(fd)
	var skip []*worker
	var deadline time.Time
	for {
		w := m.pick(*m.routes.Load(), skip)
		if w != nil {
			if m.sendConn(w, fd) == nil {
				return
			}
			skip = append(skip, w)
			continue
		}
		if deadline.IsZero() {
			deadline = time.Now().Add(connWait)
		}
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-m.routesChanged():
			t.Stop()
			skip = nil
		case <-t.C:
			m.logf("no worker ready for %s: connection dropped", connWait)
			return
		case <-m.stopCh:
			t.Stop()
			return
		}
	}
}

// wload is what pickLeast knows of a worker.
type wload struct {
	inflight, pending int64
	progress          int64 // unix ns
	skip              bool
}

// pickLeast returns the index of the least loaded worker, or -1: fewest
// requests in flight plus connections handed but not yet received; a worker
// blocked (requests in flight, no progress for blockedAfter) ranks after
// any other, and of two blocked workers the one stuck more than twice as long
// ranks after the other (on a starved machine a busy-but-healthy worker can
// look blocked too); ties go to the first from start (round-robin among
// equals).
func pickLeast(ws []wload, start int, now int64) int {
	best := -1
	var bestLoad, bestAge int64
	var bestBlocked bool
	n := len(ws)
	for i := range n {
		j := (start + i) % n
		w := ws[j]
		if w.skip {
			continue
		}
		ld := w.inflight + max(w.pending, 0)
		age := now - w.progress
		blocked := w.inflight > 0 && age > int64(blockedAfter)
		better := false
		switch {
		case best < 0:
			better = true
		case blocked != bestBlocked:
			better = !blocked
		case blocked && age*2 < bestAge:
			better = true
		case blocked && bestAge*2 < age:
			better = false
		default:
			better = ld < bestLoad
		}
		if better {
			best, bestLoad, bestAge, bestBlocked = j, ld, age, blocked
		}
	}
	return best
}

func (m *Master) pick(routes, skip []*worker) *worker {
	n := len(routes)
	if n == 0 {
		return nil
	}
	start := int(m.rr.Add(1) % uint64(n))
	if m.cfg.Schedule == RoundRobin {
		for i := range n {
			if w := routes[(start+i)%n]; !slices.Contains(skip, w) {
				return w
			}
		}
		return nil
	}
	ws := make([]wload, n)
	for i, w := range routes {
		ws[i] = wload{
			inflight: w.c.inFlight().Load(),
			pending:  int64(w.handed.Load()) - int64(w.c.recv().Load()),
			progress: w.c.progress().Load(),
			skip:     slices.Contains(skip, w),
		}
	}
	if i := pickLeast(ws, start, time.Now().UnixNano()); i >= 0 {
		return routes[i]
	}
	return nil
}

// Reload replaces every worker, one at a time, each new one ready before
// its predecessor stops receiving connections; the old one then drains. It
// returns when the reload is done (nil if every slot was replaced).
func (m *Master) Reload() error {
	req := replaceReq{reason: "reload", done: make(chan error, 1)}
	select {
	case m.replaceCh <- req:
	case <-m.stopCh:
		return errStopping
	default:
		return errors.New("too many reloads queued")
	}
	select {
	case err := <-req.done:
		return err
	case <-m.stopCh:
		return errStopping
	}
}

func (m *Master) replacer() {
	defer close(m.replacerDone)
	for {
		select {
		case <-m.stopCh:
			return
		case req := <-m.replaceCh:
			if req.slot != nil {
				_ = m.replace(req.slot, req.reason)
				m.mu.Lock()
				req.slot.recycleQueued = false
				m.mu.Unlock()
				continue
			}
			req.done <- m.reloadAll()
		}
	}
}

func (m *Master) reloadAll() error {
	start := time.Now()
	sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading", monotonicUsec()))
	m.logf("reload: replacing %d workers one at a time", len(m.slots))
	var errs []error
	for _, s := range m.slots {
		if err := m.replace(s, "reload"); err != nil {
			errs = append(errs, err)
			if errors.Is(err, errStopping) {
				return err
			}
		}
	}
	sdNotify("READY=1\nSTATUS=serving")
	m.mu.Lock()
	m.reloads++
	m.mu.Unlock()
	err := errors.Join(errs...)
	if err != nil {
		m.logf("reload done in %s with errors: %v", time.Since(start).Round(time.Millisecond), err)
	} else {
		m.logf("reload done in %s", time.Since(start).Round(time.Millisecond))
	}
	return err
}

// replace puts a new worker in slot s: fork, wait until it is ready, route
// to it instead of the old one, then let the old one drain and wait for it.
func (m *Master) replace(s *slot, reason string) error {
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return errStopping
	}
	if s.cur == nil || s.cur.state.Load() != stReady {
		// Empty or starting: what starts is already the new code.
		m.mu.Unlock()
		return nil
	}
	s.replacing = true
	nw, err := m.spawnLocked(s)
	m.mu.Unlock()
	endReplacing := func() {
		m.mu.Lock()
		s.replacing = false
		if s.cur == nil && !m.stopping {
			s.backoff = nextBackoff(s.backoff, 0)
			m.respawnAfterLocked(s, s.backoff)
		}
		m.mu.Unlock()
	}
	if err != nil {
		endReplacing()
		m.logf("worker %d: %s: %v", s.id, reason, err)
		return err
	}
	t := time.NewTimer(m.cfg.ReadyTimeout)
	defer t.Stop()
	select {
	case <-nw.ready:
	case <-nw.exited:
		err = fmt.Errorf("worker %d: new worker pid %d exited before it was ready: %s", s.id, nw.pid, nw.exitDesc)
	case <-t.C:
		err = fmt.Errorf("worker %d: new worker pid %d not ready within %s", s.id, nw.pid, m.cfg.ReadyTimeout)
	case <-m.stopCh:
		return errStopping
	}
	if err == nil {
		m.mu.Lock()
		if m.stopping {
			m.mu.Unlock()
			return errStopping
		}
		if nw.state.Load() != stReady {
			err = fmt.Errorf("worker %d: new worker pid %d exited before it was ready", s.id, nw.pid)
		}
		m.mu.Unlock()
	}
	if err != nil {
		m.mu.Lock()
		nw.requested = true
		m.mu.Unlock()
		_ = nw.proc.Kill()
		m.logf("%s: %v; keeping the old worker", reason, err)
		endReplacing()
		return err
	}

	m.mu.Lock()
	old := s.cur
	s.cur = nw
	s.everReady = true
	if reason != "reload" {
		m.recycled++
	}
	m.rebuildLocked()
	m.mu.Unlock()
	if old == nil {
		m.logf("%s: worker %d is now id %d, pid %d", reason, s.id, nw.id, nw.pid)
	} else {
		m.logf("%s: %s replaced by id %d, pid %d", reason, old, nw.id, nw.pid)
		m.retire(old, true)
		kill := time.NewTimer(m.cfg.ShutdownTimeout + 5*time.Second)
		select {
		case <-old.exited:
		case <-kill.C:
			m.logf("%s did not drain within %s: killing it", old, m.cfg.ShutdownTimeout+5*time.Second)
			_ = old.proc.Kill()
		case <-m.stopCh:
		}
		kill.Stop()
	}
	endReplacing()
	return nil
}

// monitor recycles workers and announces readiness.
func (m *Master) monitor() {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-m.stopCh:
			return
		case <-tick.C:
		}
		m.mu.Lock()
		anyReady, allReady := false, true
		for _, s := range m.slots {
			if s.everReady {
				anyReady = true
			} else {
				allReady = false
			}
			w := s.cur
			if w == nil || w.state.Load() != stReady || s.replacing || s.recycleQueued {
				continue
			}
			reason := ""
			switch served := w.c.served().Load(); {
			case m.cfg.MaxRequests > 0 && served >= m.cfg.MaxRequests:
				reason = fmt.Sprintf("recycle: served %d requests (max %d)", served, m.cfg.MaxRequests)
			case m.cfg.MaxAge > 0 && time.Since(w.readyAt) >= m.cfg.MaxAge:
				reason = fmt.Sprintf("recycle: up %s (max %s)", time.Since(w.readyAt).Round(time.Second), m.cfg.MaxAge)
			case m.cfg.MaxMemory > 0:
				if r, err := rss(w.pid); err == nil && r >= m.cfg.MaxMemory {
					reason = fmt.Sprintf("recycle: rss %d bytes (max %d)", r, m.cfg.MaxMemory)
				}
			}
			if reason != "" {
				select {
				case m.replaceCh <- replaceReq{slot: s, reason: reason}:
					s.recycleQueued = true
				default:
				}
			}
		}
		if !m.ready && (allReady || (anyReady && time.Since(m.started) > 10*time.Second)) {
			m.ready = true
			m.logf("ready: serving on %s", m.addr)
			sdNotify(fmt.Sprintf("READY=1\nMAINPID=%d\nSTATUS=serving on %s", os.Getpid(), m.addr))
		}
		m.mu.Unlock()
	}
}

// Stop stops the master gracefully: no more connections are accepted,
// every worker drains (up to ShutdownTimeout), then Wait returns. It
// returns at once if a stop is already under way.
func (m *Master) Stop() {
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		return
	}
	m.stopping = true
	close(m.stopCh)
	m.mu.Unlock()
	sdNotify("STOPPING=1\nSTATUS=stopping")
	m.logf("stopping: draining workers (up to %s)", m.cfg.ShutdownTimeout)

	m.ln.Close()
	if m.dispatchDone != nil {
		<-m.dispatchDone
	}
	m.mu.Lock()
	ws := m.workersLocked()
	m.mu.Unlock()
	for _, w := range ws {
		m.retire(w, true)
	}
	limit := time.NewTimer(m.cfg.ShutdownTimeout + 5*time.Second)
	var killed []*worker
	for _, w := range ws {
		select {
		case <-w.exited:
		case <-limit.C:
			limit.Reset(0)
			killed = append(killed, w)
			_ = w.proc.Kill()
		}
	}
	for _, w := range killed {
		<-w.exited
	}
	<-m.replacerDone
	m.statsLn.Close()
	syscall.Close(m.devnull)
	m.mu.Lock()
	forced := m.killed
	m.mu.Unlock()
	switch {
	case len(killed) > 0:
		m.err = fmt.Errorf("%d workers did not drain within %s and were killed", len(killed), m.cfg.ShutdownTimeout+5*time.Second)
	case forced:
		m.err = errors.New("workers killed before they drained")
	}
	m.logf("stopped")
	close(m.done)
}

// Kill kills every worker at once (SIGKILL), e.g. on a second Ctrl-C.
func (m *Master) Kill() {
	m.mu.Lock()
	m.killed = true
	ws := m.workersLocked()
	m.mu.Unlock()
	for _, w := range ws {
		_ = w.proc.Kill()
	}
}

func (m *Master) workersLocked() []*worker {
	ws := make([]*worker, 0, len(m.all))
	for w := range m.all {
		ws = append(ws, w)
	}
	slices.SortFunc(ws, func(a, b *worker) int {
		return cmp.Or(cmp.Compare(a.slot, b.slot), cmp.Compare(a.id, b.id))
	})
	return ws
}

// Broadcast sends v, as JSON, to every live worker (WorkerConfig.OnMessage).
func (m *Master) Broadcast(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("broadcast: %w", err)
	}
	if len(b)+1 > maxMsg {
		return fmt.Errorf("broadcast: message of %d bytes exceeds %d", len(b), maxMsg-1)
	}
	msg := append([]byte{msgUser}, b...)
	m.mu.Lock()
	ws := m.workersLocked()
	m.mu.Unlock()
	var errs []error
	for _, w := range ws {
		w.sendMu.Lock()
		_ = w.ipc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := w.ipc.Write(msg); err != nil && w.state.Load() != stExited {
			errs = append(errs, fmt.Errorf("%s: %w", w, err))
		}
		w.sendMu.Unlock()
	}
	return errors.Join(errs...)
}

// Stats returns the master's current statistics.
func (m *Master) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	st := Stats{
		PID: os.Getpid(), Addr: m.addr.String(), Schedule: m.cfg.Schedule.String(),
		Instances: m.n, StartedAt: m.started.UTC().Truncate(time.Millisecond),
		Uptime: now.Sub(m.started).Seconds(), Ready: m.ready,
		Forks: m.forks, Restarts: m.restarts, Reloads: m.reloads, Recycled: m.recycled,
		Served:  m.servedGone,
		Workers: []WorkerStats{},
	}
	for _, w := range m.workersLocked() {
		ws := WorkerStats{
			Slot: w.slot, ID: w.id, PID: w.pid, State: stateNames[w.state.Load()],
			Served: w.c.served().Load(), InFlight: w.c.inFlight().Load(), Conns: w.c.conns().Load(),
			Handed: w.handed.Load(), RSS: w.rssRep.Load(), Uptime: now.Sub(w.started).Seconds(),
			Restarts: m.slots[w.slot-1].restarts,
		}
		if r, err := rss(w.pid); err == nil {
			ws.RSS = r
		}
		st.Served += ws.Served
		st.InFlight += ws.InFlight
		st.Workers = append(st.Workers, ws)
	}
	return st
}

func (m *Master) serveStats() { ServeStats(m.statsLn, func() any { return m.Stats() }) }

// ServeStats writes stats() as JSON to each connection ln accepts, until ln
// is closed (sumcluster's master and sumserver serve their statistics so).
func ServeStats(ln net.Listener, stats func() any) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			b, _ := json.MarshalIndent(stats(), "", "  ")
			_, _ = c.Write(append(b, '\n'))
		}()
	}
}

// ListenStats listens on the stats socket path, replacing a stale socket
// file but refusing to steal one a live server serves.
func ListenStats(path string) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("stats socket %s: exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("stats socket %s: another server is serving it (stop it or pass --stats-socket)", path)
		}
		_ = os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("stats socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	// Read-only statistics: any local user (deploylab over SSH) may read them.
	_ = os.Chmod(path, 0o666)
	return ln, nil
}

// ReadStats connects to a stats socket (ListenStats, ServeStats) and returns
// the raw JSON.
func ReadStats(ctx context.Context, path string) ([]byte, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	}
	b, err := io.ReadAll(io.LimitReader(c, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("stats socket %s: %w", path, err)
	}
	if !json.Valid(b) {
		return nil, fmt.Errorf("stats socket %s: not JSON", path)
	}
	return b, nil
}
