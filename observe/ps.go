package observe

import (
	"strconv"
	"strings"
	"unicode"
)

// ParseProcesses reads the process list: "PID PPID USER ARGS..." lines (ps
// -eo pid=,ppid=,user:32=,args=, or /proc read by the script), after a
// header line with format "ps-header". Fields may be separated by any white
// space; the command line keeps its own. It returns at most MaxProcesses
// processes and how many more it dropped.
func ParseProcesses(body, format string) ([]Process, int) {
	var out []Process
	dropped := 0
	first := true
	for l := range strings.SplitSeq(body, "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" {
			continue
		}
		if format == "ps-header" && first {
			first = false
			continue
		}
		first = false
		f, rest := fields(l, 3)
		if len(f) < 3 || rest == "" {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			continue
		}
		if len(out) >= MaxProcesses {
			dropped++
			continue
		}
		out = append(out, Process{PID: pid, PPID: ppid, User: clip(f[2], MaxName), Cmdline: clip(rest, MaxField)})
	}
	return out, dropped
}

// fields splits off the first n white-space separated fields of s (any
// Unicode white space, as strings.Fields) and returns the rest with its
// leading white space removed and the rest of it kept as is.
func fields(s string, n int) ([]string, string) {
	out := make([]string, 0, n)
	rest := strings.TrimLeftFunc(s, isSpace)
	for len(out) < n && rest != "" {
		i := strings.IndexFunc(rest, isSpace)
		if i < 0 {
			out = append(out, rest)
			return out, ""
		}
		out = append(out, rest[:i])
		rest = strings.TrimLeftFunc(rest[i:], isSpace)
	}
	return out, rest
}

func isSpace(r rune) bool { return unicode.IsSpace(r) }
