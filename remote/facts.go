package remote

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Facts is what a host is, gathered in one round trip by Facts.
// A field whose tool is missing on the host keeps its zero value.
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

// Tool is a program found on the host's PATH.
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

// factsScript gathers everything in one shell run. Every probe tolerates a
// missing tool; sections are delimited by "@@name" lines.
const factsScript = `export LC_ALL=C
PATH="$PATH:/usr/local/bin:/usr/sbin:/sbin"
for d in "$HOME"/.nvm/versions/node/*/bin; do [ -d "$d" ] && PATH="$PATH:$d"; done
sec() { printf '\n@@%s\n' "$1"; }
uid=$(id -u 2>/dev/null)
sudook=no
if [ "$uid" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then sudook=yes; fi
sec hostname; uname -n 2>/dev/null
sec os; cat /etc/os-release 2>/dev/null
sec uname; uname -m 2>/dev/null; uname -r 2>/dev/null
sec nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null
sec mem; grep '^MemTotal:' /proc/meminfo 2>/dev/null
sec init; cat /proc/1/comm 2>/dev/null; [ -d /run/systemd/system ] && echo '!systemd-booted'
sec id; id -un 2>/dev/null; echo "$uid"; printf '%s\n' "$HOME"
sec sudo
if [ "$uid" = 0 ]; then echo root
elif ! command -v sudo >/dev/null 2>&1; then echo absent
elif [ $sudook = yes ]; then echo nopasswd
else echo password; fi
sec ss
if ! command -v ss >/dev/null 2>&1; then echo '!missing'
elif [ $sudook = yes ]; then sudo -n ss -Htlnp 2>/dev/null
else ss -Htlnp 2>/dev/null; fi
ver() {
  p=$(command -v "$1" 2>/dev/null) || { echo '!absent'; return; }
  echo "path $p"
  r=$(readlink -f "$p" 2>/dev/null) || r=$p
  d=$(dirname "$r")
  while [ -n "$d" ] && [ "$d" != / ]; do
    if [ -f "$d/package.json" ]; then
      sed -n 's/^[[:space:]]*"version"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/version \1/p' "$d/package.json" | head -n 1
      return
    fi
    d=$(dirname "$d")
  done
}
sec tool:node
if p=$(command -v node 2>/dev/null); then echo "path $p"; echo "version $(node --version 2>/dev/null)"; else echo '!absent'; fi
sec tool:npm; ver npm
sec tool:pm2; ver pm2
sec tool:loadtest; ver loadtest
sec df
for d in / "$@"; do
  e=$d; while [ ! -e "$e" ] && [ "$e" != / ] && [ "$e" != . ]; do e=$(dirname "$e"); done
  printf '%s\t' "$d"; df -Pk -- "$e" 2>/dev/null | tail -n 1
done
sec end
`

// FactsScript returns the shell command Facts runs, measuring free disk
// space in dirs as well as /. Callers that batch probes may run it
// themselves and parse its output with ParseFacts.
func FactsScript(dirs ...string) string {
	var b strings.Builder
	b.WriteString("sh -c ")
	b.WriteString(ShellQuote(factsScript))
	b.WriteString(" facts")
	for _, d := range dirs {
		b.WriteString(" ")
		b.WriteString(ShellQuote(d))
	}
	return b.String()
}

// gatherFacts runs the facts script with r.
func gatherFacts(ctx context.Context, r runner, dirs []string) (Facts, error) {
	res, err := r.Run(ctx, FactsScript(dirs...))
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
	return s
}

// ParseFacts parses the output of FactsScript.
func ParseFacts(out []byte) (Facts, error) {
	secs := map[string][]string{}
	var order []string
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if name, ok := strings.CutPrefix(line, "@@"); ok {
			cur = name
			order = append(order, name)
			secs[name] = nil
			continue
		}
		if cur == "" || strings.TrimSpace(line) == "" {
			continue
		}
		secs[cur] = append(secs[cur], line)
	}
	if err := sc.Err(); err != nil {
		return Facts{}, fmt.Errorf("parse facts: %w", err)
	}
	if !slices.Contains(order, "end") {
		return Facts{}, fmt.Errorf("parse facts: output incomplete (%d sections, no end marker)", len(order))
	}

	f := Facts{Tools: map[string]Tool{}, DiskFree: map[string]int64{}, UID: -1}
	if l := secs["hostname"]; len(l) > 0 {
		f.Hostname = strings.TrimSpace(l[0])
	}
	for _, line := range secs["os"] {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = unquoteOSRelease(v)
		switch k {
		case "ID":
			f.OSID = v
		case "VERSION_ID":
			f.OSVersion = v
		case "PRETTY_NAME":
			f.OSName = v
		}
	}
	if l := secs["uname"]; len(l) > 0 {
		f.Machine = strings.TrimSpace(l[0])
		f.Arch = GoArch(f.Machine)
		if len(l) > 1 {
			f.Kernel = strings.TrimSpace(l[1])
		}
	}
	if l := secs["nproc"]; len(l) > 0 {
		f.CPUs, _ = strconv.Atoi(strings.TrimSpace(l[0]))
	}
	if l := secs["mem"]; len(l) > 0 {
		// MemTotal:       24608904 kB
		fs := strings.Fields(l[0])
		if len(fs) >= 2 {
			if kb, err := strconv.ParseInt(fs[1], 10, 64); err == nil {
				f.MemTotal = kb * 1024
			}
		}
	}
	for _, line := range secs["init"] {
		if line == "!systemd-booted" {
			f.Systemd = true
		} else if f.Init == "" {
			f.Init = strings.TrimSpace(line)
		}
	}
	f.Systemd = f.Systemd && f.Init == "systemd"
	if l := secs["id"]; len(l) >= 2 {
		f.User = strings.TrimSpace(l[0])
		if n, err := strconv.Atoi(strings.TrimSpace(l[1])); err == nil {
			f.UID = n
		}
		if len(l) >= 3 {
			f.Home = strings.TrimSpace(l[2])
		}
	}
	if l := secs["sudo"]; len(l) > 0 {
		f.Sudo = strings.TrimSpace(l[0])
	}
	if l := secs["ss"]; len(l) == 1 && l[0] == "!missing" {
		f.SSMissing = true
	} else {
		for _, line := range l {
			if ln, ok := parseSSLine(line); ok {
				f.Listeners = append(f.Listeners, ln)
			}
		}
	}
	for _, name := range FactTools {
		lines, ok := secs["tool:"+name]
		if !ok {
			continue
		}
		t := Tool{}
		for _, line := range lines {
			switch {
			case line == "!absent":
			case strings.HasPrefix(line, "path "):
				t.Present = true
				t.Path = strings.TrimPrefix(line, "path ")
			case strings.HasPrefix(line, "version "):
				t.Version = strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(line, "version ")), "v")
			}
		}
		f.Tools[name] = t
	}
	for _, line := range secs["df"] {
		dir, rest, ok := strings.Cut(line, "\t")
		if !ok {
			continue
		}
		// Filesystem 1024-blocks Used Available Capacity Mounted-on
		fs := strings.Fields(rest)
		if len(fs) < 6 {
			continue
		}
		if kb, err := strconv.ParseInt(fs[3], 10, 64); err == nil {
			f.DiskFree[dir] = kb * 1024
		}
	}
	return f, nil
}

func unquoteOSRelease(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
		v = v[1 : len(v)-1]
		v = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\$`, `$`, "\\`", "`").Replace(v)
	}
	return v
}

// GoArch maps uname -m to GOARCH; "" when there is no Go port.
func GoArch(machine string) string {
	switch machine {
	case "x86_64", "amd64":
		return "amd64"
	case "aarch64", "arm64", "aarch64_be":
		return "arm64"
	case "armv7l", "armv6l", "armv7", "armhf":
		return "arm"
	case "i386", "i486", "i586", "i686":
		return "386"
	case "riscv64":
		return "riscv64"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	case "loongarch64":
		return "loong64"
	}
	return ""
}

var ssProcRe = regexp.MustCompile(`\("((?:[^"\\]|\\.)*)",pid=(\d+)`)

// parseSSLine parses a line of ss -Htlnp:
//
//	LISTEN 0 511 *:3000 *:* users:(("node",pid=456,fd=18),("node",pid=457,fd=18))
func parseSSLine(line string) (Listener, bool) {
	fs := strings.Fields(line)
	if len(fs) < 5 {
		return Listener{}, false
	}
	local := fs[3]
	if fs[0] != "LISTEN" {
		// Without -H's state column (ss -l on a single state omits nothing,
		// but be lenient with "0 128 addr:port ..." lines).
		if _, err := strconv.Atoi(fs[0]); err != nil {
			return Listener{}, false
		}
		local = fs[2]
	}
	i := strings.LastIndexByte(local, ':')
	if i < 0 {
		return Listener{}, false
	}
	port, err := strconv.Atoi(local[i+1:])
	if err != nil {
		return Listener{}, false
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(local[:i], "["), "]")
	l := Listener{Address: addr, Port: port}
	for _, m := range ssProcRe.FindAllStringSubmatch(line, -1) {
		pid, _ := strconv.Atoi(m[2])
		l.Processes = append(l.Processes, Process{Name: m[1], PID: pid})
	}
	return l, true
}
