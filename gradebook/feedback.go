package gradebook

import (
	"fmt"
	"strings"

	"github.com/deploylab/deploylab/checks"
)

var outcomeMark = map[checks.Outcome]string{
	checks.Pass:  "[superada]     ",
	checks.Fail:  "[no superada]  ",
	checks.Skip:  "[omitida]      ",
	checks.Error: "[sin comprobar]",
}

// Feedback is the text a student receives: each criterion's score, and for
// every check whether it passed, with what was observed and, when a point was
// lost, why.
func Feedback(r *checks.Rubric, row Row, m Manual) string {
	row = safeRow(row)
	var b strings.Builder
	title := r.Title
	if title == "" {
		title = "Práctica"
	}
	fmt.Fprintf(&b, "%s\n", title)
	who := row.Name
	if row.Email != "" {
		who += " <" + row.Email + ">"
	}
	fmt.Fprintf(&b, "Alumno: %s\nHost: %s\n", strings.TrimSpace(who), row.Host)
	rep := row.Scorecard
	if !rep.Reachable {
		fmt.Fprintf(&b, "\nNo se pudo acceder al host: %s\nLas comprobaciones automáticas quedan pendientes de revisión.\n", rep.Reason)
	}
	total, max, pending := 0.0, 0.0, false
	for _, c := range r.Criteria {
		max += c.Points
		cr := findResult(rep, c.ID)
		v, ok := criterionScore(c, cr, m)
		b.WriteString("\n")
		switch {
		case ok:
			total += v
			fmt.Fprintf(&b, "%s: %s de %s\n", c.Name, fmtScore(v), fmtScore(c.Points))
		case c.Manual:
			pending = true
			fmt.Fprintf(&b, "%s: pendiente (la pone el profesor, sobre %s)\n", c.Name, fmtScore(c.Points))
		default:
			pending = true
			fmt.Fprintf(&b, "%s: pendiente de revisión (sobre %s)\n", c.Name, fmtScore(c.Points))
		}
		if c.Manual && c.Question != "" {
			fmt.Fprintf(&b, "  Pregunta: %s\n", c.Question)
		}
		if cr == nil {
			continue
		}
		if cr.Scored && cr.NeedsReview {
			b.WriteString("  (alguna comprobación no se pudo hacer: el profesor la revisará)\n")
		}
		for _, ch := range cr.Checks {
			name := ch.Name
			if name == "" {
				name = ch.ID
			}
			mark := outcomeMark[ch.Outcome]
			if ch.Partial() {
				mark = "[parcial]      "
			}
			fmt.Fprintf(&b, "  %s %s\n", mark, name)
			if ch.Outcome != checks.Pass && ch.Reason != "" {
				fmt.Fprintf(&b, "      motivo: %s\n", ch.Reason)
			}
			if ch.Evidence != "" {
				fmt.Fprintf(&b, "      observado: %s\n", ch.Evidence)
			}
		}
	}
	b.WriteString("\n")
	if pending {
		fmt.Fprintf(&b, "Nota provisional: %s de %s (faltan criterios por calificar)\n", fmtScore(total), fmtScore(max))
	} else {
		fmt.Fprintf(&b, "Nota: %s de %s\n", fmtScore(total), fmtScore(max))
	}
	if m.Comment != "" {
		fmt.Fprintf(&b, "Comentario del profesor: %s\n", m.Comment)
	}
	return b.String()
}
