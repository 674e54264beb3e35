package observe

import "strings"

// Host is what one run of the script observed on a host. A part that was not
// asked for, or whose tool is missing on the host, keeps its zero value (and,
// for a missing tool, a note says so).
type Host struct {
	// ProbeVersion is the version line of the script's output.
	ProbeVersion string
	Facts
	// ListenersFrom says where Listeners came from: "ss", "proc"
	// (/proc/net/tcp, without process names) or "" (not observed).
	ListenersFrom string
	Listeners     []Listener
	// Programs are the listening sockets' processes' programs, by PID
	// (when readable).
	Programs  map[int]Program
	Processes []Process
	Tools     []Tool
	PM2       []PM2Daemon
	PM2Dumps  []PM2Dump
	Units     []Unit
	Files     []File
	History   []HistoryLine
	// HistoryFiles are the history files' sizes and hashes.
	HistoryFiles []HistoryFile `json:",omitempty"`
	HTTP         []HTTPProbe
	Blocking     []BlockingProbe
	Commands     []CommandResult
	// Notes are non-fatal problems met (a tool missing, a permission
	// denied, output cut short or too long), to show to the teacher.
	Notes []string
	// Complete is false when the output had no end marker (cut short).
	Complete bool
}

// Facts are what the host is: system, user, privileges, disk.
type Facts struct {
	Hostname  string `json:"hostname"`
	OSID      string `json:"os_id"`      // /etc/os-release ID, e.g. debian
	OSVersion string `json:"os_version"` // VERSION_ID, e.g. 12
	OSName    string `json:"os_name"`    // PRETTY_NAME
	Machine   string `json:"machine"`    // uname -m
	Arch      string `json:"arch"`       // Machine as GOARCH (amd64, arm64, ...); "" if unknown
	Kernel    string `json:"kernel"`     // uname -r
	CPUs      int    `json:"cpus"`
	MemTotal  int64  `json:"mem_total"` // bytes
	// Init is PID 1's name (systemd, init, sh, ...); Systemd says whether
	// systemd manages the host (it is PID 1 and /run/systemd/system exists).
	Init    string `json:"init"`
	Systemd bool   `json:"systemd"`
	User    string `json:"user"`
	UID     int    `json:"uid"`
	Home    string `json:"home"`
	// Sudo is "root" (no sudo needed), "nopasswd" (sudo -n works),
	// "password" (sudo asks for one) or "absent" (no sudo).
	Sudo string `json:"sudo"`
	// DiskFree is the free space in bytes for / and each directory asked
	// for (measured on its nearest existing ancestor).
	DiskFree map[string]int64 `json:"disk_free"`
	// MachineID is /etc/machine-id, and HostKeys the SSH host keys'
	// fingerprints ("ED25519 SHA256:…"): a cloned VM shares them.
	MachineID string   `json:"machine_id,omitempty"`
	HostKeys  []string `json:"host_keys,omitempty"`
}

// SudoWorks reports whether commands can run as root without a password.
func (f Facts) SudoWorks() bool { return f.Sudo == "root" || f.Sudo == "nopasswd" }

// Listener is one listening TCP socket.
type Listener struct {
	Addr string // local address as printed ("0.0.0.0", "*", "[::]", "127.0.0.1")
	Port int
	// PIDs of the processes holding the socket (empty when they could not be
	// seen, e.g. other users' processes without root).
	PIDs []int
	// Names are the process names ss printed, in PIDs' order.
	Names []string
}

// Program is what runs in a process: /proc/PID/exe and its command line.
type Program struct {
	Exe     string
	Cmdline string
}

// Process is one process on the host.
type Process struct {
	PID, PPID int
	User      string
	Cmdline   string
}

// HTTPProbe is one GET the script made from the host to itself.
type HTTPProbe struct {
	Port   int
	Path   string
	Status int // 0 when no answer
	Body   string
	// Millis is the time to the whole answer; negative when not measured.
	Millis float64
	Error  string // why there was no answer (refused, timed out, no client)
	Method string // curl, wget or devtcp
}

// File is a project file found (or asked for), with its start.
type File struct {
	Path      string
	Size      int64
	Content   string
	Truncated bool
}

// PM2Daemon is one running PM2 daemon and what `pm2 jlist` said of it.
type PM2Daemon struct {
	PID   int
	Home  string // PM2_HOME (from the daemon's command line or environment)
	User  string
	Apps  []PM2App
	Error string // why jlist could not be read
}

// PM2Dump is a saved process list (~/.pm2/dump.pm2), what `pm2 resurrect`
// restores at boot.
type PM2Dump struct {
	Path  string
	Apps  []PM2App
	Error string
}

// PM2App is one process of `pm2 jlist` (or one entry of a dump).
type PM2App struct {
	Name     string
	PMID     int
	PID      int
	ExecMode string // "cluster_mode" or "fork_mode"
	Status   string // "online", "stopped", "errored", …
	// Instances is what the app was started with ("max", "0", "-1", "2" or "").
	Instances string
	Restarts  int
	Script    string // pm_exec_path
	Cwd       string
	// What deploy's verbs read besides (live figures, not kept in a
	// grade's JSON): Started is when the process (re)started (pm_uptime),
	// in ms since the epoch, 0 when unknown; Port is the PORT of its
	// environment as written ("" when unset); CPU (percent of one CPU) and
	// Memory (RSS bytes) are PM2's own sample (monit), as pm2 ls shows
	// them; OutLog and ErrLog are its log files.
	Started int64   `json:"-"`
	Port    string  `json:"-"`
	CPU     float64 `json:"-"`
	Memory  int64   `json:"-"`
	OutLog  string  `json:"-"`
	ErrLog  string  `json:"-"`
}

// Unit is a systemd unit's state (systemctl show).
type Unit struct {
	Name      string
	Load      string // loaded, not-found
	Active    string // active, inactive, failed
	Sub       string // running, dead, exited
	Enabled   string // UnitFileState: enabled, disabled, static, …
	ExecStart string
	User      string
	// MainPID, NRestarts, ActiveEnterTimestampMonotonic (µs since boot),
	// ControlGroup, RuntimeDirectory as systemctl show prints them; CPUStat
	// is the cgroup's cpu.stat file, when readable.
	MainPID          int    `json:",omitempty"`
	Restarts         int    `json:",omitempty"`
	ActiveSince      int64  `json:",omitempty"`
	ControlGroup     string `json:",omitempty"`
	RuntimeDirectory string `json:",omitempty"`
	CPUStat          string `json:",omitempty"`
}

// Tool is an installed program and its version ("" when unknown).
type Tool struct {
	Name    string
	Version string
	Path    string
}

// HistoryLine is one shell history line that mentions a load test or PM2.
type HistoryLine struct {
	File string
	Line string
}

// HistoryFile is one shell history file as a whole: its lines, the SHA-256
// of its content and of its first 30 lines (a cloned VM's history starts
// alike even when added to after).
type HistoryFile struct {
	File    string
	Lines   int
	Sum     string
	HeadSum string
}

// BlockingProbe is the browser-tab experiment: a short request sent while a
// heavy one runs on the same port.
type BlockingProbe struct {
	Port        int
	HeavyPath   string
	ShortPath   string
	HeavyStatus int
	HeavyMillis float64
	ShortStatus int
	ShortMillis float64
	// OffsetMillis is how long after the heavy request the short one was
	// sent.
	OffsetMillis float64
	Error        string
}

// CommandResult is a command the caller asked the script to run.
type CommandResult struct {
	Name   string
	Exit   int
	Output string
}

// ListenersOn returns the sockets listening on port.
func (h *Host) ListenersOn(port int) []Listener {
	var out []Listener
	for _, l := range h.Listeners {
		if l.Port == port {
			out = append(out, l)
		}
	}
	return out
}

// Tool returns the first tool named name (the one a shell would run).
func (h *Host) Tool(name string) (Tool, bool) {
	for _, t := range h.Tools {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}

// Unit returns the unit named name.
func (h *Host) Unit(name string) (Unit, bool) {
	for _, u := range h.Units {
		if u.Name == name {
			return u, true
		}
	}
	return Unit{}, false
}

// systemDirs are the directories only root writes to, where the script runs
// programs from (the script's trusted()).
var systemDirs = []string{
	"/usr/bin/", "/usr/sbin/", "/bin/", "/sbin/", "/usr/local/bin/", "/usr/local/sbin/",
	"/usr/lib/node_modules/", "/usr/local/lib/node_modules/", "/usr/share/nodejs/",
	"/usr/lib/nodejs/", "/usr/local/lib/nodejs/", "/opt/deploylab/",
}

// SystemPath reports whether a program at path (as the host reported it) is
// in a system directory, and so may be run as root.
func SystemPath(p string) bool {
	if strings.Contains(p, "/../") || strings.Contains(p, "/./") || strings.Contains(p, "//") {
		return false
	}
	for _, d := range systemDirs {
		if strings.HasPrefix(p, d) {
			return true
		}
	}
	return false
}
