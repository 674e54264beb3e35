package observe

import (
	"slices"
	"strconv"
	"strings"
)

// ParseSS reads `ss -ltnp` (with or without its header, with or without the
// State column) into listening sockets, in order. Lines it does not
// understand are skipped. It is linear in the input: a socket held by many
// processes, or many sockets, cost no more than their bytes. It returns at
// most MaxListeners sockets (MaxSocketPIDs processes each) and how many
// sockets and processes it dropped.
func ParseSS(body string) ([]Listener, int) {
	var out []Listener
	dropped := 0
	for line := range strings.SplitSeq(body, "\n") {
		l, n, ok := parseSSLine(line)
		dropped += n
		if !ok {
			continue
		}
		if len(out) >= MaxListeners {
			dropped++
			continue
		}
		out = append(out, l)
	}
	return out, dropped
}

// ParseSSLine parses one line of ss -ltnp (at most MaxSocketPIDs processes):
//
//	LISTEN 0 511 *:3000 *:* users:(("node",pid=456,fd=18),("node",pid=457,fd=18))
//
// A process listed twice (two descriptors on the socket) is kept once.
func ParseSSLine(line string) (Listener, bool) {
	l, _, ok := parseSSLine(line)
	return l, ok
}

// parseSSLine is ParseSSLine, and how many processes it dropped.
func parseSSLine(line string) (Listener, int, bool) {
	f, rest := fields(line, 5)
	if len(f) < 5 {
		return Listener{}, 0, false
	}
	local := f[3]
	if f[0] != "LISTEN" {
		// Without the State column (ss prints none when filtering on one
		// state): "0 128 addr:port peer ...".
		if _, err := strconv.Atoi(f[0]); err != nil {
			return Listener{}, 0, false
		}
		local = f[2]
		rest = f[4] + " " + rest
	}
	i := strings.LastIndexByte(local, ':')
	if i < 0 {
		return Listener{}, 0, false
	}
	port, err := strconv.Atoi(local[i+1:])
	if err != nil || port < 0 || port > 65535 {
		return Listener{}, 0, false
	}
	l := Listener{Addr: clip(local[:i], MaxName), Port: port}
	dropped := parseUsers(rest, &l)
	return l, dropped, true
}

// parseUsers reads ss's users:(("name",pid=N,fd=M),...) in one pass,
// keeping at most MaxSocketPIDs processes; it returns how many more there
// were.
func parseUsers(s string, l *Listener) (dropped int) {
	var seen map[int]bool
	for {
		i := strings.Index(s, `("`)
		if i < 0 {
			return dropped
		}
		s = s[i+2:]
		j := strings.Index(s, `",pid=`)
		if j < 0 {
			return dropped
		}
		name := s[:j]
		s = s[j+len(`",pid=`):]
		k := 0
		for k < len(s) && s[k] >= '0' && s[k] <= '9' {
			k++
		}
		if k == 0 || k > 9 {
			continue
		}
		pid, _ := strconv.Atoi(s[:k])
		s = s[k:]
		// A few processes: look them over; many: index them.
		if seen == nil && len(l.PIDs) >= 16 {
			seen = make(map[int]bool, 2*len(l.PIDs))
			for _, p := range l.PIDs {
				seen[p] = true
			}
		}
		if seen != nil && seen[pid] || seen == nil && slices.Contains(l.PIDs, pid) {
			continue
		}
		if len(l.PIDs) >= MaxSocketPIDs {
			dropped++
			continue
		}
		if seen != nil {
			seen[pid] = true
		}
		l.PIDs = append(l.PIDs, pid)
		l.Names = append(l.Names, clip(name, MaxName))
	}
}
