package remote

import (
	"context"
	"fmt"
	"strings"

	"github.com/deploylab/deploylab/observe"
)

// Facts is what a host is, gathered in one round trip by Facts (with
// observe's script and parsers). A field whose tool is missing on the host
// keeps its zero value.
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
	// Listeners are the TCP sockets listening (ss -tlnp); processes are
	// known only for the user's own sockets unless root or passwordless sudo.
	Listeners []Listener `json:"listeners"`
	// SSMissing is set when ss is not installed: Listeners is then unknown.
	SSMissing bool            `json:"ss_missing,omitempty"`
	Tools     map[string]Tool `json:"tools"` // node, npm, pm2, loadtest
	// DiskFree is the free space in bytes for / and each directory asked
	// for (measured on its nearest existing ancestor).
	DiskFree map[string]int64 `json:"disk_free"`
}

// Listener is one listening TCP socket.
type Listener struct {
	Address   string    `json:"address"` // 0.0.0.0, *, ::, 127.0.0.1, ...
	Port      int       `json:"port"`
	Processes []Process `json:"processes,omitempty"`
}

// Process is a process holding a socket.
type Process struct {
	Name string `json:"name"`
	PID  int    `json:"pid"`
}

// Tool is a program found on the host.
type Tool struct {
	Present bool   `json:"present"`
	Path    string `json:"path,omitempty"`
	Version string `json:"version,omitempty"` // without a leading v
}

// FactTools are the tools Facts looks for.
var FactTools = []string{"node", "npm", "pm2", "loadtest"}

// SudoWorks reports whether commands can run as root without a password.
func (f Facts) SudoWorks() bool { return f.Sudo == "root" || f.Sudo == "nopasswd" }

// ListenersOn returns the sockets listening on port.
func (f Facts) ListenersOn(port int) []Listener {
	var out []Listener
	for _, l := range f.Listeners {
		if l.Port == port {
			out = append(out, l)
		}
	}
	return out
}

// gatherFacts runs observe's script (facts, listeners, tools) with r.
func gatherFacts(ctx context.Context, r runner, dirs []string) (Facts, error) {
	res, err := r.Run(ctx, observe.CommandLine(observe.Options{Parts: observe.FactsParts, Dirs: dirs}))
	if err != nil {
		return Facts{}, fmt.Errorf("gather facts: %w", err)
	}
	f, err := ParseFacts(res.Stdout)
	if err != nil {
		return Facts{}, fmt.Errorf("gather facts: %w (exit status %d, stderr %q)", err, res.ExitCode, firstLine(res.Stderr))
	}
	return f, nil
}

// Facts gathers the host's facts in one round trip; dirs are directories
// whose free space to measure besides /.
func (c *Client) Facts(ctx context.Context, dirs ...string) (Facts, error) {
	return gatherFacts(ctx, c, dirs)
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// ParseFacts parses the output of observe's script run for the facts.
func ParseFacts(out []byte) (Facts, error) {
	h, err := observe.Parse(out)
	if err != nil {
		return Facts{}, fmt.Errorf("parse facts: %w", err)
	}
	if !h.Complete {
		return Facts{}, fmt.Errorf("parse facts: output incomplete (no end marker)")
	}
	return FactsOf(h), nil
}

// FactsOf is Facts from what observe saw.
func FactsOf(h observe.Host) Facts {
	o := h.Facts
	f := Facts{
		Hostname: o.Hostname, OSID: o.OSID, OSVersion: o.OSVersion, OSName: o.OSName,
		Machine: o.Machine, Arch: o.Arch, Kernel: o.Kernel, CPUs: o.CPUs, MemTotal: o.MemTotal,
		Init: o.Init, Systemd: o.Systemd, User: o.User, UID: o.UID, Home: o.Home, Sudo: o.Sudo,
		Tools: map[string]Tool{}, DiskFree: map[string]int64{},
	}
	for d, n := range o.DiskFree {
		f.DiskFree[d] = n
	}
	// Without ss (listeners read from /proc, with no process names) the
	// listeners are left unknown.
	f.SSMissing = h.ListenersFrom != "ss"
	if !f.SSMissing {
		for _, l := range h.Listeners {
			ln := Listener{Address: strings.TrimSuffix(strings.TrimPrefix(l.Addr, "["), "]"), Port: l.Port}
			for i, pid := range l.PIDs {
				p := Process{PID: pid}
				if i < len(l.Names) {
					p.Name = l.Names[i]
				}
				ln.Processes = append(ln.Processes, p)
			}
			f.Listeners = append(f.Listeners, ln)
		}
	}
	for _, name := range FactTools {
		for _, t := range h.Tools {
			if t.Name == name && !otherHome(t.Path, o.Home) {
				f.Tools[name] = Tool{Present: true, Path: t.Path, Version: strings.TrimPrefix(t.Version, "v")}
				break
			}
		}
		if _, ok := f.Tools[name]; !ok {
			f.Tools[name] = Tool{}
		}
	}
	return f
}

// otherHome: path is in a home that is not the user's (home).
func otherHome(path, home string) bool {
	if home != "" && home != "/" && strings.HasPrefix(path, strings.TrimSuffix(home, "/")+"/") {
		return false
	}
	return strings.HasPrefix(path, "/home/") || strings.HasPrefix(path, "/root/")
}
