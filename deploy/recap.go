package deploy

import (
	"encoding/json"
	"fmt"
	"github.com/deploylab/deploylab/internal/safetext"
	"io"
	"strings"
)

// TaskWidth is the width of the task column in task lines.
const TaskWidth = 10

// TaskLine is the one-line report of a task on a host, the host name padded
// to hostWidth: "lab1  upload      changed  uploaded 3 programs ...". A
// failure adds its error (and hint) on the same line and the next.
func TaskLine(host string, hostWidth int, r TaskResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-*s  %-*s  %-11s", hostWidth, host, TaskWidth, r.Task, r.Status)
	msg := r.Msg
	if r.Error != "" {
		msg = r.Error
	}
	if msg != "" {
		// Errors may quote what the host printed: one escaped line.
		b.WriteString("  " + safetext.Line(msg))
	}
	if r.Hint != "" && (r.Status == Failed || r.Status == Unreachable) {
		fmt.Fprintf(&b, "\n%-*s  hint: %s", hostWidth, "", safetext.Line(r.Hint))
	}
	return strings.TrimRight(b.String(), " ")
}

// HostWidth is the width of the widest host name.
func HostWidth(names []string) int {
	w := 4
	for _, n := range names {
		w = max(w, len(n))
	}
	return w
}

// WriteRecap writes the PLAY RECAP table: one row per host with its counts.
func WriteRecap(w io.Writer, rc *Recap) error {
	var names []string
	for _, h := range rc.Hosts {
		names = append(names, h.Host)
	}
	hw := HostWidth(names)
	title := "PLAY RECAP"
	if rc.Check {
		title += " (check mode: nothing was changed)"
	}
	var b strings.Builder
	b.WriteString(title + "\n")
	for _, h := range rc.Hosts {
		fmt.Fprintf(&b, "%-*s  ok=%-3d changed=%-3d unreachable=%-3d failed=%-3d skipped=%d\n",
			hw, h.Host, h.OK, h.Changed, h.Unreachable, h.Failed, h.Skipped)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the recap as indented JSON (schema deploylab.up/v1).
func WriteJSON(w io.Writer, rc *Recap) error {
	doc := struct {
		Schema string `json:"schema"`
		*Recap
	}{"deploylab.up/v1", rc}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
