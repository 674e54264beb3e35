package observe

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrNotProbe is returned by Parse for output that is not the script's.
var ErrNotProbe = errors.New("not the output of deploylab's probe")

// Bounds on what Parse keeps of a host's output: a host is not trusted, and
// whatever it prints, the result stays small. Past a bound the rest is
// dropped and a note says so.
const (
	MaxOutput       = 64 << 20 // bytes of output parsed
	MaxSections     = 20000
	MaxProcesses    = 100000
	MaxListeners    = 200000
	MaxSocketPIDs   = 4096 // processes kept per listening socket
	MaxSockets      = 500000
	MaxTools        = 1000
	MaxPM2          = 100 // daemons, and dumps
	MaxPM2Apps      = 10000
	MaxUnits        = 10000
	MaxFiles        = 1000
	MaxFileBytes    = 1 << 20
	MaxHistory      = 10000 // lines, all files together
	MaxHistoryFiles = 64    // history files
	MaxHostKeys     = 16    // SSH host keys
	MaxHistoryLine  = 2000  // bytes
	MaxHTTP         = 1000
	MaxBodyBytes    = 64 << 10
	MaxCommands     = 1000
	MaxNotes        = 200
	MaxField        = 4096 // bytes of one field (a command line, a path, an attribute)
	MaxName         = 256  // bytes of a name (a user, a unit, a process name)
)

type section struct {
	name  string
	attrs map[string]string
	body  string
}

// Parse reads the script's output. Output cut short (no end marker) is
// parsed as far as it goes and noted; anything unexpected in it is skipped,
// never a panic.
func Parse(out []byte) (Host, error) {
	h := Host{}
	h.UID = -1
	if len(out) > MaxOutput {
		out = out[:MaxOutput]
		h.note(fmt.Sprintf("probe: output longer than %d MiB: the rest ignored", MaxOutput>>20))
	}
	// Skip whatever a login shell printed before the script's header.
	if i := bytes.Index(out, []byte("#deploylab-probe ")); i > 0 && out[i-1] == '\n' {
		out = out[i:]
	}
	first, rest, _ := bytes.Cut(out, []byte("\n"))
	fields := strings.Fields(string(clipBytes(first, 200)))
	if len(fields) != 3 || fields[0] != "#deploylab-probe" {
		return Host{}, fmt.Errorf("parse probe output: %w", ErrNotProbe)
	}
	h.ProbeVersion = fields[1]
	if h.ProbeVersion != "1" {
		return Host{}, fmt.Errorf("parse probe output: unsupported probe version %q", clip(h.ProbeVersion, 40))
	}
	marker := fields[2] + " "
	secs, complete, dropped := splitSections(string(rest), marker)
	if dropped {
		h.note(fmt.Sprintf("probe: more than %d sections: the rest ignored", MaxSections))
	}
	h.Complete = complete
	var sockets map[string][]int
	var procListeners []string
	for _, s := range secs {
		switch s.name {
		case "meta":
			parseMeta(&h.Facts, s.body)
		case "osrelease":
			parseOSRelease(&h.Facts, s.body)
		case "df":
			h.DiskFree = parseDF(s.body)
		case "processes":
			var n int
			h.Processes, n = ParseProcesses(s.body, s.attrs["format"])
			h.dropped(n, "processes")
		case "listeners":
			h.ListenersFrom = "ss"
			if s.attrs["format"] == "proc" {
				h.ListenersFrom = "proc"
				procListeners = lines(s.body)
			} else {
				var n int
				h.Listeners, n = ParseSS(s.body)
				h.dropped(n, "listening sockets or socket processes")
			}
		case "sockets":
			sockets = ParseSockets(s.body)
		case "exe":
			h.Programs = parseExe(s.body)
		case "tools":
			h.Tools = append(h.Tools, ParseTools(s.body)...)
			if len(h.Tools) > MaxTools {
				h.Tools = h.Tools[:MaxTools]
			}
		case "pm2":
			if len(h.PM2) >= MaxPM2 {
				continue
			}
			d := PM2Daemon{Home: clip(s.attrs["home"], MaxField), User: clip(s.attrs["user"], MaxName)}
			d.PID, _ = strconv.Atoi(s.attrs["pid"])
			if e, ok := strings.CutPrefix(strings.TrimSpace(s.body), "error: "); ok {
				d.Error = clip(e, MaxField)
			} else {
				apps, err := ParsePM2(s.body, false)
				if err != nil {
					d.Error = "pm2 jlist: " + err.Error()
				}
				d.Apps = apps
			}
			h.PM2 = append(h.PM2, d)
		case "pm2dump":
			if len(h.PM2Dumps) >= MaxPM2 {
				continue
			}
			d := PM2Dump{Path: clip(s.attrs["path"], MaxField)}
			apps, err := ParsePM2(s.body, true)
			if err != nil {
				d.Error = err.Error()
			}
			d.Apps = apps
			h.PM2Dumps = append(h.PM2Dumps, d)
		case "units":
			h.Units = ParseUnits(s.body)
		case "cgroups":
			parseCgroups(h.Units, s.body)
		case "file":
			if len(h.Files) >= MaxFiles {
				continue
			}
			size, _ := strconv.ParseInt(s.attrs["size"], 10, 64)
			content, cut := clipText(s.body, MaxFileBytes)
			h.Files = append(h.Files, File{Path: clip(s.attrs["path"], MaxField), Size: size, Content: content, Truncated: cut || s.attrs["truncated"] == "1"})
		case "history":
			room := MaxHistory - len(h.History)
			h.History = append(h.History, ParseHistory(s.body, clip(s.attrs["file"], MaxField), room)...)
			if hf, ok := parseHistoryFile(s.attrs); ok && len(h.HistoryFiles) < MaxHistoryFiles {
				h.HistoryFiles = append(h.HistoryFiles, hf)
			}
		case "hostkeys":
			h.HostKeys = ParseHostKeys(s.body)
		case "http":
			if len(h.HTTP) >= MaxHTTP {
				continue
			}
			p := HTTPProbe{Path: clip(s.attrs["path"], MaxField)}
			p.Port, _ = strconv.Atoi(s.attrs["port"])
			p.Status, p.Millis, p.Method, p.Error = ParseResult(s.attrs["result"])
			if p.Status != 0 {
				p.Body, _ = clipText(s.body, MaxBodyBytes)
			}
			h.HTTP = append(h.HTTP, p)
		case "blocking":
			if len(h.Blocking) >= MaxHTTP {
				continue
			}
			h.Blocking = append(h.Blocking, parseBlocking(s.attrs))
		case "command":
			if len(h.Commands) >= MaxCommands {
				continue
			}
			c := CommandResult{Name: clip(s.attrs["name"], MaxName)}
			c.Output, _ = clipText(s.body, MaxBodyBytes)
			c.Exit, _ = strconv.Atoi(s.attrs["exit"])
			h.Commands = append(h.Commands, c)
		case "note":
			h.note(strings.TrimSpace(s.body))
		}
	}
	if procListeners != nil {
		var n int
		h.Listeners, n = ParseProcNet(procListeners, sockets)
		h.dropped(n, "listening sockets")
	}
	if !complete {
		h.note("probe: output cut short (no end marker)")
	}
	return h, nil
}

func (h *Host) note(s string) {
	if len(h.Notes) < MaxNotes {
		h.Notes = append(h.Notes, clip(s, 1000))
	}
}

func (h *Host) dropped(n int, what string) {
	if n > 0 {
		h.note(fmt.Sprintf("probe: %d %s past the limit ignored", n, what))
	}
}

// splitSections cuts the output into its sections: lines starting with
// marker open one ("MARKER name\tkey=value..."). Linear in the output.
func splitSections(s, marker string) (secs []section, complete, dropped bool) {
	for len(s) > 0 {
		if !strings.HasPrefix(s, marker) {
			// Junk before the first marker (a login banner): skip a line.
			_, s, _ = strings.Cut(s, "\n")
			continue
		}
		if len(secs) >= MaxSections {
			return secs, false, true
		}
		header, rest, _ := strings.Cut(s[len(marker):], "\n")
		parts := strings.Split(clip(header, 8*MaxField), "\t")
		sec := section{name: parts[0], attrs: map[string]string{}}
		for _, a := range parts[1:] {
			k, v, _ := strings.Cut(a, "=")
			sec.attrs[k] = v
		}
		i := strings.Index(rest, "\n"+marker)
		var body string
		if strings.HasPrefix(rest, marker) {
			// An empty section: the next one starts right away.
			s = rest
		} else if i < 0 {
			body, s = rest, ""
		} else {
			body, s = rest[:i+1], rest[i+1:]
		}
		if sec.name == "end" {
			return secs, true, false
		}
		// Sections whose content is raw end with one newline added by the script.
		switch sec.name {
		case "file", "http", "blocking", "command", "pm2", "pm2dump", "history":
			body = strings.TrimSuffix(body, "\n")
		}
		sec.body = body
		secs = append(secs, sec)
	}
	return secs, false, false
}

// lines splits s into its non-blank lines, "\r" trimmed.
func lines(s string) []string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, strings.TrimRight(l, "\r"))
		}
	}
	return out
}

// clip cuts s to at most n bytes, on a UTF-8 boundary when it can.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > n-4 && i > 0 && s[i]&0xC0 == 0x80 {
		i--
	}
	return s[:i]
}

func clipText(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	return clip(s, n), true
}

func clipBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
