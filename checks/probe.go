package checks

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

//go:embed probe.sh
var probeScript []byte

// ProbeOptions says what the probe should look at besides what it always
// gathers. The zero value probes "/" and "/api/50" on every app port.
type ProbeOptions struct {
	// Paths to GET on every app port.
	Paths []string
	// Ports to probe besides the app ports the probe finds; with OnlyPorts,
	// only these.
	Ports     []int
	OnlyPorts bool
	// BlockHeavy enables the blocking experiment: BlockHeavy is requested
	// and, while it runs, BlockShort. BlockPorts limits it to some ports.
	BlockHeavy string
	BlockShort string
	BlockPorts []int
	// Files are absolute path globs to read besides the project files found.
	Files []string
	// Units are systemd unit names or globs to report.
	Units []string
	// Commands are shell commands to run; each is reported under
	// CommandKey(command).
	Commands []string
	// Search lists the directories to look for project files in (default:
	// the homes, /srv, /opt, /var/www).
	Search      []string
	MaxFiles    int
	MaxBytes    int
	HTTPTimeout time.Duration
}

// DefaultUnits are the unit globs the probe always reports.
var DefaultUnits = []string{"pm2-*.service", "deploylab-*.service"}

// ProbeOptions returns what the probe must observe for the rubric's checks.
func (r *Rubric) ProbeOptions() ProbeOptions {
	o := ProbeOptions{Units: slices.Clone(DefaultUnits)}
	r.walk(func(c *Check) {
		if c.Port != 0 && !slices.Contains(o.Ports, c.Port) {
			o.Ports = append(o.Ports, c.Port)
		}
		if p, ok := c.Params.(prober); ok {
			p.probe(&o)
		}
	})
	if len(o.Paths) == 0 {
		o.Paths = []string{"/", "/api/50"}
	}
	slices.Sort(o.Ports)
	return o
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ProbeScript returns the probe, ready to be fed to `sh -s` on a host: the
// options as variable assignments, then the embedded probe.sh.
func ProbeScript(o ProbeOptions) []byte {
	var b bytes.Buffer
	b.WriteString("#!/bin/sh\n")
	set := func(name, value string) {
		fmt.Fprintf(&b, "%s=%s\n", name, shellQuote(value))
	}
	ints := func(v []int) string {
		s := make([]string, len(v))
		for i, n := range v {
			s[i] = strconv.Itoa(n)
		}
		return strings.Join(s, " ")
	}
	if len(o.Paths) > 0 {
		set("DL_PATHS", strings.Join(o.Paths, " "))
	}
	if len(o.Ports) > 0 {
		set("DL_PORTS", ints(o.Ports))
	}
	if o.OnlyPorts {
		set("DL_ONLY_PORTS", "1")
	}
	if o.BlockHeavy != "" {
		set("DL_BLOCK_HEAVY", o.BlockHeavy)
		if o.BlockShort != "" {
			set("DL_BLOCK_SHORT", o.BlockShort)
		}
		if len(o.BlockPorts) > 0 {
			set("DL_BLOCK_PORTS", ints(o.BlockPorts))
		}
	}
	if len(o.Files) > 0 {
		set("DL_FILES", strings.Join(o.Files, " "))
	}
	if len(o.Units) > 0 {
		set("DL_UNITS", strings.Join(o.Units, " "))
	}
	if len(o.Search) > 0 {
		set("DL_SEARCH", strings.Join(o.Search, " "))
	}
	if o.MaxFiles > 0 {
		set("DL_MAXFILES", strconv.Itoa(o.MaxFiles))
	}
	if o.MaxBytes > 0 {
		set("DL_MAXBYTES", strconv.Itoa(o.MaxBytes))
	}
	if o.HTTPTimeout > 0 {
		set("DL_HTTP_TIMEOUT", strconv.Itoa(max(1, int(o.HTTPTimeout.Round(time.Second)/time.Second))))
	}
	if len(o.Commands) > 0 {
		set("DL_CMDS", strconv.Itoa(len(o.Commands)))
		for i, c := range o.Commands {
			set(fmt.Sprintf("DL_CMD_%d_NAME", i+1), CommandKey(c))
			set(fmt.Sprintf("DL_CMD_%d", i+1), c)
		}
	}
	b.Write(probeScript)
	return b.Bytes()
}

// ErrNotProbe is returned by ParseProbe for output that is not the probe's.
var ErrNotProbe = errors.New("not the output of deploylab's probe")

type section struct {
	name  string
	attrs map[string]string
	body  string
}

// ParseProbe reads the probe's output into facts (Reachable is set; Host is
// left to the caller). Output cut short (no end marker) is parsed as far as
// it goes and noted.
func ParseProbe(out []byte) (HostFacts, error) {
	var f HostFacts
	// Skip whatever a login shell printed before the probe's header.
	if i := bytes.Index(out, []byte("#deploylab-probe ")); i > 0 && out[i-1] == '\n' {
		out = out[i:]
	}
	first, rest, _ := bytes.Cut(out, []byte("\n"))
	fields := strings.Fields(string(first))
	if len(fields) != 3 || fields[0] != "#deploylab-probe" {
		return f, fmt.Errorf("parse probe output: %w", ErrNotProbe)
	}
	f.ProbeVersion = fields[1]
	if f.ProbeVersion != "1" {
		return f, fmt.Errorf("parse probe output: unsupported probe version %q", f.ProbeVersion)
	}
	marker := fields[2] + " "
	secs, complete := splitSections(string(rest), marker)
	f.Reachable = true
	var sockets map[string][]int
	var procListeners []string
	for _, s := range secs {
		switch s.name {
		case "meta":
			parseMeta(&f, s.body)
		case "processes":
			f.Processes = parseProcesses(s.body, s.attrs["format"])
		case "listeners":
			if s.attrs["format"] == "proc" {
				procListeners = lines(s.body)
			} else {
				f.Listeners = parseSS(s.body)
			}
		case "sockets":
			sockets = parseSockets(s.body)
		case "tools":
			for _, l := range lines(s.body) {
				p := strings.SplitN(l, "\t", 3)
				if len(p) == 3 && !slices.ContainsFunc(f.Tools, func(t Tool) bool { return t.Path == p[2] }) {
					f.Tools = append(f.Tools, Tool{Name: p[0], Version: p[1], Path: p[2]})
				}
			}
		case "pm2":
			d := PM2Daemon{Home: s.attrs["home"], User: s.attrs["user"]}
			d.PID, _ = strconv.Atoi(s.attrs["pid"])
			if e, ok := strings.CutPrefix(strings.TrimSpace(s.body), "error: "); ok {
				d.Error = e
			} else {
				apps, err := parsePM2JSON(s.body, false)
				if err != nil {
					d.Error = "pm2 jlist: " + err.Error()
				}
				d.Apps = apps
			}
			f.PM2 = append(f.PM2, d)
		case "pm2dump":
			d := PM2Dump{Path: s.attrs["path"]}
			apps, err := parsePM2JSON(s.body, true)
			if err != nil {
				d.Error = err.Error()
			}
			d.Apps = apps
			f.PM2Dumps = append(f.PM2Dumps, d)
		case "units":
			f.Units = parseUnits(s.body)
		case "file":
			size, _ := strconv.ParseInt(s.attrs["size"], 10, 64)
			f.Files = append(f.Files, File{Path: s.attrs["path"], Size: size, Content: s.body, Truncated: s.attrs["truncated"] == "1"})
		case "history":
			for _, l := range lines(s.body) {
				if l = historyLine(l); l != "" {
					f.History = append(f.History, HistoryLine{File: s.attrs["file"], Line: l})
				}
			}
		case "http":
			h := HTTPProbe{Path: s.attrs["path"], Body: s.body}
			h.Port, _ = strconv.Atoi(s.attrs["port"])
			h.Status, h.Millis, h.Method, h.Error = parseResult(s.attrs["result"])
			if h.Status == 0 {
				h.Body = ""
			}
			f.HTTP = append(f.HTTP, h)
		case "blocking":
			b := BlockingProbe{HeavyPath: s.attrs["heavy"], ShortPath: s.attrs["short"]}
			b.Port, _ = strconv.Atoi(s.attrs["port"])
			b.OffsetMillis, _ = strconv.ParseFloat(s.attrs["offset"], 64)
			var e1, e2, m string
			b.HeavyStatus, b.HeavyMillis, m, e1 = parseResult(s.attrs["heavy_result"])
			b.ShortStatus, b.ShortMillis, _, e2 = parseResult(s.attrs["short_result"])
			if m == "none" || b.HeavyMillis < 0 || b.ShortMillis < 0 {
				b.Error = "no se pudo medir el tiempo de las peticiones en el host"
			} else if b.HeavyStatus == 0 && b.HeavyMillis < 1000 {
				b.Error = "la petición pesada no obtuvo respuesta: " + e1
			}
			_ = e2
			f.Blocking = append(f.Blocking, b)
		case "command":
			c := CommandResult{Name: s.attrs["name"], Output: s.body}
			c.Exit, _ = strconv.Atoi(s.attrs["exit"])
			f.Commands = append(f.Commands, c)
		case "note":
			f.Notes = append(f.Notes, strings.TrimSpace(s.body))
		}
	}
	if procListeners != nil {
		f.Listeners = parseProcListeners(procListeners, sockets)
	}
	if !complete {
		f.Notes = append(f.Notes, "probe: output cut short (no end marker)")
	}
	return f, nil
}

func splitSections(s, marker string) ([]section, bool) {
	var secs []section
	complete := false
	for len(s) > 0 {
		if !strings.HasPrefix(s, marker) {
			// Junk before the first marker (a login banner): skip a line.
			_, s, _ = strings.Cut(s, "\n")
			continue
		}
		header, rest, _ := strings.Cut(s[len(marker):], "\n")
		parts := strings.Split(header, "\t")
		sec := section{name: parts[0], attrs: map[string]string{}}
		for _, a := range parts[1:] {
			k, v, _ := strings.Cut(a, "=")
			sec.attrs[k] = v
		}
		i := strings.Index(rest, "\n"+marker)
		var body string
		if i < 0 {
			body, s = rest, ""
		} else {
			body, s = rest[:i+1], rest[i+1:]
		}
		if sec.name == "end" {
			complete = true
			break
		}
		// Sections whose content is raw end with one newline added by the probe.
		switch sec.name {
		case "file", "http", "blocking", "command", "pm2", "pm2dump", "history":
			body = strings.TrimSuffix(body, "\n")
		}
		sec.body = body
		secs = append(secs, sec)
	}
	return secs, complete
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return out
}

func parseMeta(f *HostFacts, body string) {
	for _, l := range lines(body) {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "hostname":
			f.Hostname = v
		case "user":
			f.User = v
		case "uid":
			f.UID, _ = strconv.Atoi(v)
		case "kernel":
			f.Kernel = v
		case "os":
			f.OS = v
		case "cpus":
			f.CPUs, _ = strconv.Atoi(v)
		}
	}
}

func parseProcesses(body, format string) []Process {
	var out []Process
	for i, l := range lines(body) {
		if format == "ps-header" && i == 0 {
			continue
		}
		fs := strings.Fields(l)
		if len(fs) < 4 {
			continue
		}
		pid, err1 := strconv.Atoi(fs[0])
		ppid, err2 := strconv.Atoi(fs[1])
		if err1 != nil || err2 != nil {
			continue
		}
		// The command line is what follows the third field, spaces kept.
		rest := strings.TrimLeft(l, " ")
		for range 3 {
			j := strings.IndexAny(rest, " \t")
			rest = strings.TrimLeft(rest[j:], " \t")
		}
		out = append(out, Process{PID: pid, PPID: ppid, User: fs[2], Cmdline: rest})
	}
	return out
}

var ssUserRe = regexp.MustCompile(`\("((?:[^"\\]|\\.)*)",pid=(\d+),fd=\d+\)`)

func parseSS(body string) []Listener {
	var out []Listener
	for _, l := range lines(body) {
		fs := strings.Fields(l)
		if len(fs) < 5 || fs[0] != "LISTEN" {
			continue
		}
		addr := fs[3]
		i := strings.LastIndexByte(addr, ':')
		if i < 0 {
			continue
		}
		port, err := strconv.Atoi(addr[i+1:])
		if err != nil {
			continue
		}
		li := Listener{Addr: addr[:i], Port: port}
		for _, m := range ssUserRe.FindAllStringSubmatch(l, -1) {
			pid, _ := strconv.Atoi(m[2])
			if !slices.Contains(li.PIDs, pid) {
				li.PIDs = append(li.PIDs, pid)
				li.Names = append(li.Names, m[1])
			}
		}
		out = append(out, li)
	}
	return out
}

// parseSockets reads "/proc/PID/fd socket:[INODE]" lines.
func parseSockets(body string) map[string][]int {
	m := map[string][]int{}
	for _, l := range lines(body) {
		dir, link, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		pidS := strings.TrimSuffix(strings.TrimPrefix(dir, "/proc/"), "/fd")
		pid, err := strconv.Atoi(pidS)
		inode := strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")
		if err == nil && !slices.Contains(m[inode], pid) {
			m[inode] = append(m[inode], pid)
		}
	}
	return m
}

// parseProcListeners reads "/proc/net/tcp HEXADDR:HEXPORT INODE" lines.
func parseProcListeners(ls []string, sockets map[string][]int) []Listener {
	var out []Listener
	for _, l := range ls {
		fs := strings.Fields(l)
		if len(fs) < 3 {
			continue
		}
		hexAddr, hexPort, ok := strings.Cut(fs[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil {
			continue
		}
		out = append(out, Listener{Addr: procAddr(hexAddr), Port: int(port), PIDs: sockets[fs[2]]})
	}
	return out
}

func procAddr(h string) string {
	b := make([]byte, 0, 16)
	for i := 0; i+8 <= len(h); i += 8 {
		w, err := strconv.ParseUint(h[i:i+8], 16, 32)
		if err != nil {
			return h
		}
		// each 32-bit word is in host (little-endian) order
		b = append(b, byte(w), byte(w>>8), byte(w>>16), byte(w>>24))
	}
	if len(b) == 4 {
		return fmt.Sprintf("%d.%d.%d.%d", b[0], b[1], b[2], b[3])
	}
	if len(b) == 16 {
		if bytes.Equal(b, make([]byte, 16)) {
			return "[::]"
		}
		var parts []string
		for i := 0; i < 16; i += 2 {
			parts = append(parts, strconv.FormatUint(uint64(b[i])<<8|uint64(b[i+1]), 16))
		}
		return "[" + strings.Join(parts, ":") + "]"
	}
	return h
}

// parseResult reads http_get's "status ms method error…".
func parseResult(r string) (status int, ms float64, method, errText string) {
	fs := strings.SplitN(strings.TrimSpace(r), " ", 4)
	if len(fs) < 3 {
		return 0, -1, "", "no result"
	}
	status, _ = strconv.Atoi(fs[0])
	ms, err := strconv.ParseFloat(fs[1], 64)
	if err != nil {
		ms = -1
	}
	method = fs[2]
	if len(fs) == 4 {
		errText = strings.TrimSpace(fs[3])
	}
	if method == "none" {
		errText = ErrNoHTTPClient
	}
	if status == 0 && errText == "" {
		errText = "sin respuesta"
	}
	return status, ms, method, errText
}

var zshHistRe = regexp.MustCompile(`^: \d+:\d+;`)

func historyLine(l string) string {
	l = zshHistRe.ReplaceAllString(l, "")
	l = strings.TrimPrefix(l, "- cmd: ") // fish
	return strings.TrimSpace(l)
}

// pm2JSON is the part of `pm2 jlist` (and of dump.pm2, whose entries are
// flat pm2_env objects) that the checks read. PM2's environment (which may
// hold secrets) is not kept.
type pm2JSON struct {
	Name     string          `json:"name"`
	PMID     json.RawMessage `json:"pm_id"`
	PID      int             `json:"pid"`
	Env      *pm2Env         `json:"pm2_env"`
	ExecMode string          `json:"exec_mode"`
	Status   string          `json:"status"`
	Inst     json.RawMessage `json:"instances"`
	Exec     string          `json:"pm_exec_path"`
	Cwd      string          `json:"pm_cwd"`
}

type pm2Env struct {
	ExecMode string          `json:"exec_mode"`
	Status   string          `json:"status"`
	Restarts int             `json:"restart_time"`
	Inst     json.RawMessage `json:"instances"`
	Exec     string          `json:"pm_exec_path"`
	Cwd      string          `json:"pm_cwd"`
}

// parsePM2JSON reads jlist's array; PM2 sometimes prints warnings around it.
func parsePM2JSON(body string, dump bool) ([]PM2App, error) {
	i := strings.IndexByte(body, '[')
	if i < 0 {
		msg := strings.TrimSpace(body)
		if msg == "" {
			return nil, errors.New("empty output")
		}
		return nil, fmt.Errorf("no JSON list in %q", clip(msg, 120))
	}
	var raw []pm2JSON
	if err := json.NewDecoder(strings.NewReader(body[i:])).Decode(&raw); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	var apps []PM2App
	for _, r := range raw {
		a := PM2App{Name: r.Name, PID: r.PID, ExecMode: r.ExecMode, Status: r.Status, Script: r.Exec, Cwd: r.Cwd}
		inst := r.Inst
		if r.Env != nil {
			a.ExecMode, a.Status, a.Restarts, a.Script, a.Cwd = r.Env.ExecMode, r.Env.Status, r.Env.Restarts, r.Env.Exec, r.Env.Cwd
			if len(r.Env.Inst) > 0 {
				inst = r.Env.Inst
			}
		}
		a.PMID, _ = strconv.Atoi(strings.Trim(string(r.PMID), `"`))
		a.Instances = strings.Trim(string(inst), `"`)
		if a.Instances == "null" {
			a.Instances = ""
		}
		if dump && r.PID != 0 {
			a.PID = r.PID
		}
		apps = append(apps, a)
	}
	return apps, nil
}

func parseUnits(body string) []Unit {
	var out []Unit
	for _, block := range strings.Split(strings.ReplaceAll(body, "\r", ""), "\n\n") {
		var u Unit
		for _, l := range lines(block) {
			k, v, _ := strings.Cut(l, "=")
			switch k {
			case "Id":
				u.Name = v
			case "LoadState":
				u.Load = v
			case "ActiveState":
				u.Active = v
			case "SubState":
				u.Sub = v
			case "UnitFileState":
				u.Enabled = v
			case "User":
				u.User = v
			case "ExecStart":
				u.ExecStart = execStart(v)
			}
		}
		if u.Name != "" {
			out = append(out, u)
		}
	}
	return out
}

// execStart pulls the argv out of systemctl show's
// "{ path=/x ; argv[]=/x -a ; ignore_errors=no ; … }".
func execStart(v string) string {
	if _, after, ok := strings.Cut(v, "argv[]="); ok {
		a, _, _ := strings.Cut(after, " ;")
		return strings.TrimSpace(a)
	}
	return strings.TrimSpace(v)
}
