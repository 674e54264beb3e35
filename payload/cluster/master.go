// The master, split by job:
//
//	master.go      Config, the Master's state, Start, Wait, the monitor tick
//	fork.go        forking a worker and reaping it
//	schedule.go    accepting connections, handing each to a worker (Least, RoundRobin)
//	respawn.go     re-forking a dead worker with an exponential back-off
//	reload.go      rolling reload and the one-slot replacement recycling shares
//	recycle.go     recycling by requests served, age or memory
//	stats.go       Stats and the stats socket
//	master_ipc.go  messages from workers (ready, stats, quit) and Broadcast
//	stop.go        signals: a signalled worker, Stop and Kill
//	sdnotify.go    sd_notify: ready, reloading, stopping

package cluster

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"os"
	"runtime"
	"slices"
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
	// OnFork, if set, is called once for every new worker, in its own
	// goroutine, before that worker may serve: what it sends with send
	// (user messages to that worker only, WorkerConfig.OnMessage) is
	// delivered before the worker starts serving. Use it to hand a new
	// worker the current shared state. id is the worker's ID.
	OnFork func(m *Master, id int, send func(v any) error)
	// OnMessage, if set, receives the workers' user messages
	// (WorkerConfig.OnStart's send), in order per worker, on that worker's
	// reader goroutine. The payload is at most 64 KiB of raw JSON that the
	// worker sent; it is not trusted.
	OnMessage func(m *Master, from int, msg json.RawMessage)
}

// Worker states.
const (
	stStarting int32 = iota
	stReady
	stDraining
	stExited
)

var stateNames = [...]string{"starting", "ready", "draining", "exited"}

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

// monitor ticks the periodic jobs: recycling (recycle.go) and the
// readiness announcement (sdnotify.go).
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
		m.recycleLocked()
		m.announceReadyLocked()
		m.mu.Unlock()
	}
}
