package checks

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/deploylab/deploylab/observe"
)

// HostFacts is what was observed on one host, gathered once (by the probe and,
// with --active, by the active prober) and read by every check.
type HostFacts struct {
	// Host is the inventory name or address the facts belong to (set by the
	// caller, not by the probe).
	Host string
	// Reachable is false when the host could not be probed at all; Error says
	// why. Every check of an unreachable host ends in error.
	Reachable bool
	Error     string

	// ProbeVersion is the version line of the probe's output.
	ProbeVersion string
	Hostname     string
	User         string // the user the probe ran as
	UID          int
	Kernel       string
	OS           string // PRETTY_NAME from /etc/os-release
	CPUs         int

	Listeners []Listener
	Processes []Process
	HTTP      []HTTPProbe
	Files     []File
	PM2       []PM2Daemon
	PM2Dumps  []PM2Dump
	Units     []Unit
	Tools     []Tool
	History   []HistoryLine
	Blocking  []BlockingProbe

	// What tells a cloned VM (grade's Similitud sheet): /etc/machine-id,
	// the SSH host keys' fingerprints, the shell history files' hashes.
	MachineID    string        `json:",omitempty"`
	HostKeys     []string      `json:",omitempty"`
	HistoryFiles []HistoryFile `json:",omitempty"`
	Commands     []CommandResult

	// Active holds what the active prober observed (nil without --active).
	Active *ActiveFacts

	// Notes are non-fatal problems the probe met (a tool missing, a
	// permission denied), shown to the teacher.
	Notes []string
}

// The host's observations, as observe parses them.
type (
	Listener      = observe.Listener
	Process       = observe.Process
	HTTPProbe     = observe.HTTPProbe
	File          = observe.File
	PM2Daemon     = observe.PM2Daemon
	PM2Dump       = observe.PM2Dump
	PM2App        = observe.PM2App
	Unit          = observe.Unit
	Tool          = observe.Tool
	HistoryLine   = observe.HistoryLine
	HistoryFile   = observe.HistoryFile
	BlockingProbe = observe.BlockingProbe
	CommandResult = observe.CommandResult
)

// ActiveFacts are observations that change the host (kill a worker, reload),
// made only with --active by another component.
type ActiveFacts struct {
	Respawn []RespawnObservation
	Reload  []ReloadObservation
}

// RespawnObservation: a worker of the server on Port was killed; did a new
// one take its place?
type RespawnObservation struct {
	Port      int
	KilledPID int
	NewPID    int
	Respawned bool
	After     time.Duration
	Detail    string
}

// ReloadObservation: requests sent to Port while the server was reloaded.
type ReloadObservation struct {
	Port     int
	Requests int
	Failed   int
	Detail   string
}

// Server is an app server found on the host: a listening port, the processes
// serving it, and whether it is a cluster.
type Server struct {
	Port int
	// Owners are the processes holding the listening socket.
	Owners []Process
	// Workers are the processes that serve requests (a single server is its
	// own worker).
	Workers []Process
	Cluster bool
	// Unknown is true when the probe could not see the socket's processes.
	Unknown bool
	// Manager says who runs it: "pm2", "systemd <unit>" or "".
	Manager string
}

// Role returns "single", "cluster" or "unknown".
func (s Server) Role() string {
	switch {
	case s.Unknown:
		return "unknown"
	case s.Cluster:
		return ServerCluster
	default:
		return ServerSingle
	}
}

// Describe is a one-line evidence of the server.
func (s Server) Describe() string {
	if s.Unknown {
		return fmt.Sprintf("puerto %d: a la escucha, procesos no visibles", s.Port)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "puerto %d: ", s.Port)
	for i, o := range s.Owners {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "pid %d %s", o.PID, clip(o.Cmdline, 80))
	}
	if s.Cluster {
		fmt.Fprintf(&b, "; cluster de %d workers", len(s.Workers))
	} else {
		b.WriteString("; un solo proceso")
	}
	if s.Manager != "" {
		fmt.Fprintf(&b, " (%s)", s.Manager)
	}
	return b.String()
}

var pm2DaemonRe = regexp.MustCompile(`^PM2 v[0-9.]+[^:]*: God Daemon(?: \((.*)\))?`)

// Servers finds the app servers: listening TCP ports whose processes match
// appRe (or whose processes cannot be seen), grouped by port, with their
// workers. Sorted by port.
func (f *HostFacts) Servers(appRe *regexp.Regexp) []Server {
	byPID := map[int]Process{}
	children := map[int][]Process{}
	for _, p := range f.Processes {
		byPID[p.PID] = p
		children[p.PPID] = append(children[p.PPID], p)
	}
	// One pass over the sockets (a host may have tens of thousands): the
	// PIDs on each port, and the name ss gave each PID (the last one seen).
	ports := map[int][]int{}
	onPort := map[[2]int]bool{}
	nameOf := map[int]string{}
	var order []int
	for _, l := range f.Listeners {
		if _, ok := ports[l.Port]; !ok {
			order = append(order, l.Port)
			ports[l.Port] = nil
		}
		for i, pid := range l.PIDs {
			if i < len(l.Names) {
				nameOf[pid] = l.Names[i]
			}
			if k := [2]int{l.Port, pid}; !onPort[k] {
				onPort[k] = true
				ports[l.Port] = append(ports[l.Port], pid)
			}
		}
	}
	slices.Sort(order)
	var out []Server
	for _, port := range order {
		pids := ports[port]
		if len(pids) == 0 {
			if port >= 1024 {
				out = append(out, Server{Port: port, Unknown: true})
			}
			continue
		}
		slices.Sort(pids)
		s := Server{Port: port}
		app := false
		for _, pid := range pids {
			p, ok := byPID[pid]
			if !ok {
				p = Process{PID: pid, Cmdline: nameOf[pid]}
			}
			s.Owners = append(s.Owners, p)
			if appRe.MatchString(p.Cmdline) {
				app = true
			}
		}
		if !app {
			continue
		}
		f.classify(&s, pids, byPID, children)
		out = append(out, s)
	}
	return out
}

func (f *HostFacts) classify(s *Server, pids []int, byPID map[int]Process, children map[int][]Process) {
	set := make(map[int]bool, len(pids))
	for _, pid := range pids {
		set[pid] = true
	}
	inSet := func(pid int) bool { return set[pid] }
	// PM2 in cluster mode: its daemon holds the socket; the workers are the
	// daemon's cluster_mode apps.
	for _, o := range s.Owners {
		m := pm2DaemonRe.FindStringSubmatch(o.Cmdline)
		if m == nil {
			continue
		}
		s.Manager = "pm2"
		var apps []PM2App
		for _, d := range f.PM2 {
			if d.PID == o.PID || d.PID == 0 && (d.Home == m[1] || len(f.PM2) == 1) {
				for _, a := range d.Apps {
					if a.ExecMode == "cluster_mode" && a.Status == "online" {
						apps = append(apps, a)
					}
				}
			}
		}
		if len(apps) > 0 {
			for _, a := range apps {
				w, ok := byPID[a.PID]
				if !ok {
					w = Process{PID: a.PID, PPID: o.PID, Cmdline: "node " + a.Script}
				}
				s.Workers = append(s.Workers, w)
			}
		} else {
			s.Workers = children[o.PID]
		}
		s.Cluster = len(s.Workers) > 0
		f.manager(s, byPID)
		return
	}
	// Several processes on the socket (SCHED_NONE, reuseport): the workers
	// are those whose parent is not also on the socket... or, if one is the
	// parent of the others, the children.
	if len(pids) > 1 {
		for _, o := range s.Owners {
			if !inSet(o.PPID) {
				hasChild := false
				for _, c := range children[o.PID] {
					if inSet(c.PID) {
						hasChild = true
					}
				}
				if hasChild {
					continue // a master that also holds the socket
				}
			}
			s.Workers = append(s.Workers, o)
		}
		s.Cluster = len(s.Workers) > 1 || len(s.Workers) < len(s.Owners)
		f.manager(s, byPID)
		return
	}
	// One process on the socket: a master with workers of the same program
	// (Node's round-robin cluster), or a single server.
	o := s.Owners[0]
	base := ProgName(o.Cmdline)
	for _, c := range children[o.PID] {
		if base != "" && ProgName(c.Cmdline) == base {
			s.Workers = append(s.Workers, c)
		}
	}
	if len(s.Workers) > 0 {
		s.Cluster = true
	} else {
		s.Workers = []Process{o}
	}
	f.manager(s, byPID)
}

// manager names what supervises the server: PM2 if an owner descends from a
// PM2 daemon, a systemd unit whose ExecStart names the owner's program.
func (f *HostFacts) manager(s *Server, byPID map[int]Process) {
	if s.Manager != "" {
		return
	}
	for _, o := range s.Owners {
		for p, n := byPID[o.PPID], 0; p.PID != 0 && n < 10; p, n = byPID[p.PPID], n+1 {
			if pm2DaemonRe.MatchString(p.Cmdline) {
				s.Manager = "pm2"
				return
			}
		}
		prog := ProgName(o.Cmdline)
		for _, u := range f.Units {
			if u.Active == "active" && prog != "" && ProgName(u.ExecStart) == prog && prog != "node" {
				s.Manager = "systemd " + u.Name
				return
			}
		}
	}
}

// ProgName is the base name of a command line's program ("node" for
// "/usr/bin/node app.js").
func ProgName(cmdline string) string {
	f := strings.Fields(cmdline)
	if len(f) == 0 {
		return ""
	}
	p := f[0]
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	return p
}

// HTTPAt returns the probe of path on port, if the probe made it.
func (f *HostFacts) HTTPAt(port int, path string) (HTTPProbe, bool) {
	for _, h := range f.HTTP {
		if h.Port == port && h.Path == path {
			return h, true
		}
	}
	return HTTPProbe{}, false
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
