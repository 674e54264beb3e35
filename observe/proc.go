package observe

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// ParseSockets reads "/proc/PID/fd socket:[INODE]" lines (find's output)
// into the PIDs holding each socket inode.
func ParseSockets(body string) map[string][]int {
	m := map[string][]int{}
	type key struct {
		inode string
		pid   int
	}
	seen := map[key]bool{}
	n := 0
	for l := range strings.SplitSeq(body, "\n") {
		if n >= MaxSockets {
			break
		}
		dir, link, ok := strings.Cut(strings.TrimSpace(l), " ")
		if !ok {
			continue
		}
		pidS := strings.TrimSuffix(strings.TrimPrefix(dir, "/proc/"), "/fd")
		pid, err := strconv.Atoi(pidS)
		inode := clip(strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]"), 32)
		if err != nil || seen[key{inode, pid}] || len(m[inode]) >= MaxSocketPIDs {
			continue
		}
		seen[key{inode, pid}] = true
		m[inode] = append(m[inode], pid)
		n++
	}
	return m
}

// ParseProcNet reads "/proc/net/tcp HEXADDR:HEXPORT INODE" lines (the
// listening rows of /proc/net/tcp and tcp6, as the script prints them),
// with the sockets' PIDs from ParseSockets. It returns at most MaxListeners
// sockets and how many it dropped.
func ParseProcNet(ls []string, sockets map[string][]int) ([]Listener, int) {
	var out []Listener
	dropped := 0
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
		if len(out) >= MaxListeners {
			dropped++
			continue
		}
		out = append(out, Listener{Addr: procAddr(hexAddr), Port: int(port), PIDs: sockets[fs[2]]})
	}
	return out, dropped
}

func procAddr(h string) string {
	if len(h) != 8 && len(h) != 32 {
		return clip(h, MaxName)
	}
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
	if bytes.Equal(b, make([]byte, 16)) {
		return "[::]"
	}
	var parts []string
	for i := 0; i < 16; i += 2 {
		parts = append(parts, strconv.FormatUint(uint64(b[i])<<8|uint64(b[i+1]), 16))
	}
	return "[" + strings.Join(parts, ":") + "]"
}
