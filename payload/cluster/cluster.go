// Package cluster runs an HTTP handler the way Node's cluster module does, and
// fixes what Node and PM2 get wrong: a master process binds the port and forks
// worker processes (re-executions of its own binary) that serve the handler.
//
// The master schedules connections (least-loaded by default, Node's
// round-robin, or the kernel's), re-forks dead workers with an exponential
// back-off, replaces workers one at a time with zero failed requests (rolling
// reload on SIGHUP, and recycling by requests served, age or memory), drains
// on stop, and serves per-worker statistics as JSON on a local unix socket.
//
// A program uses it by calling RunWorker when IsWorker reports that it was
// started as a worker, and Start otherwise (see cmd/sumcluster).
//
// Process layout of a worker: fd 3 is a SOCK_SEQPACKET unix socket to the
// master (messages in ipc.go; connections arrive as SCM_RIGHTS), fd 4 is the
// shared listening socket when the schedule is None, fd 5 the shared memory
// holding every worker's counters (shm.go). Workers are in their own
// process group (a terminal's Ctrl-C reaches only the master, which drains
// them) and get SIGTERM if the master dies (Pdeathsig); they also drain when
// their master socket reaches EOF.
package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Environment variables set by the master for its workers.
const (
	// EnvWorker marks a worker process; its value is the worker's slot (1..N).
	EnvWorker = "DEPLOYLAB_CLUSTER_WORKER"
	// envListenFD is set when the worker must accept on the inherited
	// listening socket (fd 4): schedule None.
	envListenFD = "DEPLOYLAB_CLUSTER_LISTEN_FD"
	// envWorkerID is the worker's unique number in its master's life.
	envWorkerID = "DEPLOYLAB_CLUSTER_WORKER_ID"
	// envShmCell is the worker's counter cell in the shared memory (fd 5).
	envShmCell = "DEPLOYLAB_CLUSTER_SHM_CELL"
	// EnvTestExit, for tests only: a worker exits at once with this code,
	// which makes a crash loop.
	EnvTestExit = "DEPLOYLAB_CLUSTER_TEST_EXIT"
)

const (
	ipcFD    = 3
	listenFD = 4
	shmFD    = 5
)

// IsWorker reports whether this process was started by a master as a worker.
func IsWorker() bool { return os.Getenv(EnvWorker) != "" }

// Schedule is how the master shares connections among workers.
type Schedule int

const (
	// Least (the default): the master accepts and hands each connection to
	// the worker with the fewest requests in flight; a worker whose event
	// loop has made no progress for a while (busy with a long request) ranks
	// after every other one.
	Least Schedule = iota
	// RoundRobin: the master accepts and hands connections to the workers in
	// turn, as Node does by default.
	RoundRobin
	// None: every worker accepts on the shared listening socket and the
	// kernel decides (Node's SCHED_NONE).
	None
)

// ParseSchedule parses "least", "rr" (or "round-robin") and "none".
func ParseSchedule(s string) (Schedule, error) {
	switch s {
	case "least":
		return Least, nil
	case "rr", "round-robin":
		return RoundRobin, nil
	case "none":
		return None, nil
	}
	return 0, fmt.Errorf("unknown schedule %q (want least, rr or none)", s)
}

func (s Schedule) String() string {
	switch s {
	case RoundRobin:
		return "rr"
	case None:
		return "none"
	}
	return "least"
}

// maxInstances guards against a typo forking thousands of processes.
const maxInstances = 256

// Instances resolves Node/PM2's instance count: 0 means one per CPU, -1 one
// per CPU but one (at least 1), N > 0 means N.
func Instances(n, cpus int) (int, error) {
	if cpus < 1 {
		cpus = 1
	}
	switch {
	case n > maxInstances:
		return 0, fmt.Errorf("bad instance count %d: at most %d", n, maxInstances)
	case n > 0:
		return n, nil
	case n == 0:
		return cpus, nil
	case n == -1:
		return max(cpus-1, 1), nil
	}
	return 0, fmt.Errorf("bad instance count %d: want -1 (CPUs-1), 0 (CPUs) or a positive number", n)
}

// DefaultStatsSocket is where the master serves its statistics when not told:
// $RUNTIME_DIRECTORY/stats.sock when systemd sets RUNTIME_DIRECTORY (its first
// entry), else /tmp/sumcluster-<port>.sock.
func DefaultStatsSocket(port int) string {
	if p := RuntimeStatsSocket(); p != "" {
		return p
	}
	return filepath.Join(os.TempDir(), "sumcluster-"+strconv.Itoa(port)+".sock")
}

// RuntimeStatsSocket is $RUNTIME_DIRECTORY/stats.sock (its first entry) when
// systemd sets RUNTIME_DIRECTORY (the unit's RuntimeDirectory=), else "".
func RuntimeStatsSocket() string {
	rd := os.Getenv("RUNTIME_DIRECTORY")
	if rd == "" {
		return ""
	}
	first, _, _ := strings.Cut(rd, ":")
	return filepath.Join(first, "stats.sock")
}

// ParseBytes parses a byte count: a plain number, or one with a suffix
// K, M, G (or KiB, MiB, GiB, KB, MB, GB: all powers of 1024, as ps and PM2
// mean them).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	up := strings.ToUpper(t)
	for _, suf := range []struct {
		s string
		m int64
	}{
		{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30},
		{"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
	} {
		if strings.HasSuffix(up, suf.s) {
			mult = suf.m
			t = strings.TrimSpace(t[:len(t)-len(suf.s)])
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("bad byte count %q: want a number, optionally with K, M or G", s)
	}
	return n * mult, nil
}

// Back-off of a crash loop: the first respawn after a healthy run waits
// backoffMin; each quick crash doubles it up to backoffMax; a worker that
// stayed up backoffReset resets it.
const (
	backoffMin   = 100 * time.Millisecond
	backoffMax   = 15 * time.Second
	backoffReset = 30 * time.Second
)

// nextBackoff returns the delay before re-forking a worker that died after
// uptime, given the previous delay of its slot.
func nextBackoff(prev, uptime time.Duration) time.Duration {
	if uptime >= backoffReset || prev <= 0 {
		return backoffMin
	}
	return min(prev*2, backoffMax)
}

// Stats is what the master serves on its stats socket (and what
// `sumcluster stats` prints), as JSON.
type Stats struct {
	PID       int       `json:"pid"`
	Addr      string    `json:"addr"`
	Schedule  string    `json:"schedule"`
	Instances int       `json:"instances"`
	StartedAt time.Time `json:"started_at"`
	Uptime    float64   `json:"uptime_s"`
	// Ready is true once every slot has had a ready worker.
	Ready bool `json:"ready"`
	// Forks counts every worker process started.
	Forks int `json:"forks"`
	// Restarts counts workers re-forked after an unexpected exit.
	Restarts int `json:"restarts"`
	// Reloads counts completed rolling reloads; Recycled counts workers
	// replaced for max-requests, max-age or max-memory.
	Reloads  int `json:"reloads"`
	Recycled int `json:"recycled"`
	// Served counts requests answered by all workers, past and present.
	Served   uint64        `json:"served"`
	InFlight int64         `json:"in_flight"`
	Workers  []WorkerStats `json:"workers"`
}

// WorkerStats describes one live worker process.
type WorkerStats struct {
	// Slot is the worker's place, 1..instances; a replacement takes its
	// predecessor's slot.
	Slot int `json:"slot"`
	// ID is unique among the master's workers, in fork order (Node's worker.id).
	ID  int `json:"id"`
	PID int `json:"pid"`
	// State is starting, ready or draining.
	State string `json:"state"`
	// Served and InFlight are reported by the worker; InFlight counts
	// requests being served or queued and connections not yet read.
	Served   uint64 `json:"served"`
	InFlight int64  `json:"in_flight"`
	// Conns is the number of open connections; Handed counts connections
	// the master passed to it (0 with schedule none).
	Conns  int64  `json:"conns"`
	Handed uint64 `json:"handed"`
	// RSS is the resident set size in bytes (from /proc/<pid>/statm).
	RSS    int64   `json:"rss_bytes"`
	Uptime float64 `json:"uptime_s"`
	// Restarts counts unexpected exits in this slot.
	Restarts int `json:"restarts"`
}

// errStopping is returned by operations refused because the master stops.
var errStopping = errors.New("cluster is stopping")

// rss reads a process's resident set size from /proc/<pid>/statm.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("malformed /proc/%d/statm", pid)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("malformed /proc/%d/statm: %w", pid, err)
	}
	return pages * int64(os.Getpagesize()), nil
}
