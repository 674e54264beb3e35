package gradebook

import (
	"slices"

	"github.com/deploylab/deploylab/internal/safetext"
)

// safeRows returns rows with every text that came from a host (reasons,
// evidence, bench tool names) escaped with internal/safetext: sheet cells
// and feedback files hold no control characters a VM chose.
func safeRows(rows []Row) []Row {
	out := make([]Row, len(rows))
	for i, row := range rows {
		out[i] = safeRow(row)
	}
	return out
}

func safeRow(row Row) Row {
	sc := &row.Scorecard
	sc.Reason = safetext.Line(sc.Reason)
	sc.Criteria = slices.Clone(sc.Criteria)
	for i := range sc.Criteria {
		c := &sc.Criteria[i]
		c.Checks = slices.Clone(c.Checks)
		for j := range c.Checks {
			ch := &c.Checks[j]
			ch.Evidence = safetext.Text(ch.Evidence)
			ch.Reason = safetext.Line(ch.Reason)
		}
	}
	sc.Bench = slices.Clone(sc.Bench)
	for i := range sc.Bench {
		b := &sc.Bench[i]
		b.Tool, b.Server, b.Route = safetext.Line(b.Tool), safetext.Line(b.Server), safetext.Line(b.Route)
	}
	return row
}
