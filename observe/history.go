package observe

import (
	"strings"
)

// ParseHistory reads the lines of one shell history file (bash, zsh's
// extended format, fish's YAML-ish one) that the script kept, at most max
// of them, each clipped to MaxHistoryLine bytes.
func ParseHistory(body, file string, max int) []HistoryLine {
	var out []HistoryLine
	for l := range strings.SplitSeq(body, "\n") {
		if len(out) >= max {
			break
		}
		if l = HistoryCommand(l); l != "" {
			out = append(out, HistoryLine{File: file, Line: clip(l, MaxHistoryLine)})
		}
	}
	return out
}

// HistoryCommand is the command of one history line: zsh's ": 1700000000:0;"
// and fish's "- cmd: " prefixes removed.
func HistoryCommand(l string) string {
	l = strings.TrimRight(l, "\r")
	if strings.HasPrefix(l, ": ") {
		// zsh: ": <start>:<elapsed>;<command>"
		rest := l[2:]
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i > 0 && i < len(rest) && rest[i] == ':' {
			j := i + 1
			for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
				j++
			}
			if j > i+1 && j < len(rest) && rest[j] == ';' {
				l = rest[j+1:]
			}
		}
	}
	l = strings.TrimPrefix(l, "- cmd: ") // fish
	return strings.TrimSpace(l)
}
