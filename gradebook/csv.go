package gradebook

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/internal/fail"
)

// IDColumn is the identifying column of the gradebook CSV.
type IDColumn string

// Moodle matches a CSV row to a user by one of these.
const (
	ByEmail    IDColumn = "email"
	ByIDNumber IDColumn = "idnumber"
)

// CSVOptions tunes WriteCSV.
type CSVOptions struct {
	// ID is the identifying column (default ByEmail).
	ID IDColumn
	// TotalOnly writes one grade item, the total, named TotalName (default
	// "Total"), instead of one column per criterion.
	TotalOnly bool
	TotalName string
}

// WriteCSV writes the grades in Moodle's import shape: one identifying
// column, then one column per grade item, nothing else. Criteria without a
// score yet (a manual mark not typed, a criterion that needs review) are left
// empty, which Moodle's import skips. Every student must have the identifier.
func WriteCSV(w io.Writer, r *checks.Rubric, rows []Row, manual map[string]Manual, o CSVOptions) error {
	id := o.ID
	if id == "" {
		id = ByEmail
	}
	idHeader := map[IDColumn]string{ByEmail: "Email address", ByIDNumber: "ID number"}[id]
	if idHeader == "" {
		return fail.Errorf(fail.Usage, "use email or idnumber", "unknown gradebook id column %q", id)
	}
	var missing []string
	for _, row := range rows {
		if idOf(row.Student, id) == "" {
			missing = append(missing, nameOrHost(row.Student))
		}
	}
	if len(missing) > 0 {
		return fail.Errorf(fail.Usage, fmt.Sprintf("add %s: for them in the inventory, or choose the other id column", id),
			"%d students have no %s for the gradebook: %s", len(missing), id, strings.Join(missing, ", "))
	}
	cw := csv.NewWriter(w)
	header := []string{idHeader}
	if o.TotalOnly {
		name := o.TotalName
		if name == "" {
			name = "Total"
		}
		header = append(header, name)
	} else {
		for _, c := range r.Criteria {
			header = append(header, c.Name)
		}
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	for _, row := range rows {
		m := manual[row.Key()]
		rec := []string{idOf(row.Student, id)}
		total, complete := 0.0, true
		for _, c := range r.Criteria {
			v, ok := criterionScore(c, findResult(row.Scorecard, c.ID), m)
			if !ok {
				complete = false
				if !o.TotalOnly {
					rec = append(rec, "")
				}
				continue
			}
			total += v
			if !o.TotalOnly {
				rec = append(rec, fmtScore(v))
			}
		}
		if o.TotalOnly {
			// A total with pieces missing would look final: leave it empty.
			if complete {
				rec = append(rec, fmtScore(total))
			} else {
				rec = append(rec, "")
			}
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// WriteCSVFile writes the gradebook CSV at path atomically.
func WriteCSVFile(path string, r *checks.Rubric, rows []Row, manual map[string]Manual, o CSVOptions) error {
	return writeAtomic(path, func(f *os.File) error {
		return WriteCSV(f, r, rows, manual, o)
	})
}

func idOf(s Student, id IDColumn) string {
	if id == ByIDNumber {
		return strings.TrimSpace(s.ID)
	}
	return strings.TrimSpace(s.Email)
}

func nameOrHost(s Student) string {
	if s.Name != "" {
		return s.Name
	}
	return s.Host
}
