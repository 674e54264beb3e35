package deploy

import (
	"strings"
	"testing"
)

// TestTaskLineEscapesHostText: an error quoting what the host printed
// reaches the terminal as one line, with no escape sequence.
func TestTaskLineEscapesHostText(t *testing.T) {
	r := TaskResult{Task: "start", Status: Failed, Error: "exit status 1: \x1b[2J\x1b[Hall good\rok\nforged line"}
	line := TaskLine("vm01", 4, r)
	if strings.ContainsAny(line, "\x1b\r") || strings.Count(line, "\n") != strings.Count(r.Hint, "\n")+boolInt(r.Hint != "") {
		t.Fatalf("task line not escaped: %q", line)
	}
	if !strings.Contains(line, `\x1b[2J`) || !strings.Contains(line, `\nforged line`) {
		t.Fatalf("escaped text missing: %q", line)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
