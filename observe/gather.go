package observe

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// RunFunc runs one command line on a host and returns what it printed and
// its exit status (a remote.Executor's Run, adapted by the caller).
type RunFunc func(ctx context.Context, cmd string) (stdout, stderr []byte, exit int, err error)

// Gather runs the script with o's options through run (as one command line,
// CommandLine) and parses its output. Output cut short (no end marker) is
// an error here: deploy and bench decide on what they gather.
func Gather(ctx context.Context, run RunFunc, o Options) (Host, error) {
	stdout, stderr, exit, err := run(ctx, CommandLine(o))
	if err != nil {
		return Host{}, fmt.Errorf("gather facts: %w", err)
	}
	h, err := Parse(stdout)
	if err == nil && !h.Complete {
		err = errors.New("output incomplete (no end marker)")
	}
	if err != nil {
		return Host{}, fmt.Errorf("gather facts: parse facts: %w (exit status %d, stderr %q)", err, exit, FirstLine(stderr))
	}
	return h, nil
}

// FirstLine is the first line of what a host printed (b), trimmed, at
// most 200 bytes: for an error message (escape it before a terminal).
func FirstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// UserTool returns the first tool named name that the login user would
// run: one in a system directory or in the user's own home, not in another
// user's home (/home/other, /root). Its version has no leading "v".
func (h *Host) UserTool(name string) (Tool, bool) {
	for _, t := range h.Tools {
		if t.Name == name && !otherHome(t.Path, h.Home) {
			t.Version = strings.TrimPrefix(t.Version, "v")
			return t, true
		}
	}
	return Tool{}, false
}

// otherHome: path is in a home that is not the user's (home).
func otherHome(path, home string) bool {
	if home != "" && home != "/" && strings.HasPrefix(path, strings.TrimSuffix(home, "/")+"/") {
		return false
	}
	return strings.HasPrefix(path, "/home/") || strings.HasPrefix(path, "/root/")
}

// Holder is a process holding a listening socket, as ss named it.
type Holder struct {
	Name string
	PID  int
}

// Holders returns the processes ss saw holding a socket listening on port.
// Listeners read from /proc/net/tcp (no ss on the host) have no names and
// are left out: nil then means "unknown", as it does for sockets of other
// users' processes seen without root.
func (h *Host) Holders(port int) []Holder {
	if h.ListenersFrom != "ss" {
		return nil
	}
	var out []Holder
	for _, l := range h.ListenersOn(port) {
		for i, pid := range l.PIDs {
			p := Holder{PID: pid}
			if i < len(l.Names) {
				p.Name = l.Names[i]
			}
			out = append(out, p)
		}
	}
	return out
}
