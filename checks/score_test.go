package checks

import (
	"fmt"
	"strings"
)

// reportText renders a report for golden files and failure messages.
func reportText(r Scorecard) string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s reachable=%v score=%.2f review=%v", r.Host, r.Reachable, r.Score, r.NeedsReview)
	if r.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", r.Reason)
	}
	b.WriteString("\n")
	for _, c := range r.Criteria {
		if c.Manual {
			fmt.Fprintf(&b, "[%s] %s (%g): manual\n", c.ID, c.Name, c.Points)
			continue
		}
		score := "-"
		if c.Scored {
			score = fmt.Sprintf("%.2f", c.Score)
		}
		fmt.Fprintf(&b, "[%s] %s: %s/%g review=%v\n", c.ID, c.Name, score, c.Points, c.NeedsReview)
		for _, ch := range c.Checks {
			fmt.Fprintf(&b, "  %-5s %s (%s, w%g)\n", ch.Outcome, ch.ID, ch.Kind, ch.Weight)
			if ch.Evidence != "" {
				fmt.Fprintf(&b, "        evidence: %s\n", ch.Evidence)
			}
			if ch.Reason != "" {
				fmt.Fprintf(&b, "        reason: %s\n", ch.Reason)
			}
		}
	}
	return b.String()
}
