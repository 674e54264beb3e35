package gradebook

import (
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/xuri/excelize/v2"
)

// hostileText is what a student's VM can put in a reason or evidence: a
// screen clear, a title change, a carriage return forging a line, a
// direction override, bytes that are not UTF-8.
const hostileText = "\x1b[2J\x1b[Hpwned\x1b]0;title\x07 ok\rFAKE 10/10 \u202egnp.exe \xff\x00 end"

// controlLeft returns the first control or direction character in s (but
// newline and tab), or -1.
func controlLeft(s string) rune {
	for _, r := range s {
		if r == '\n' || r == '\t' {
			continue
		}
		if unicode.IsControl(r) || (r >= 0x202a && r <= 0x202e) || r == unicode.ReplacementChar {
			return r
		}
	}
	return -1
}

// TestHostileTextEscaped: VM text reaches every sheet cell and the
// feedback escaped.
func TestHostileTextEscaped(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	for i := range rows {
		sc := &rows[i].Scorecard
		if !sc.Reachable {
			sc.Reason = hostileText
		}
		for j := range sc.Criteria {
			for k := range sc.Criteria[j].Checks {
				sc.Criteria[j].Checks[k].Evidence = hostileText
				sc.Criteria[j].Checks[k].Reason = hostileText
			}
		}
		for j := range sc.Bench {
			sc.Bench[j].Tool = hostileText
		}
	}
	path := filepath.Join(t.TempDir(), "notas.xlsx")
	if err := WriteXLSX(path, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	seen := 0
	for _, sh := range x.GetSheetList() {
		cells, err := x.GetRows(sh)
		if err != nil {
			t.Fatal(err)
		}
		for rn, row := range cells {
			for cn, v := range row {
				if c := controlLeft(v); c >= 0 {
					t.Errorf("sheet %s %s: %q left in %q", sh, cell(cn+1, rn+1), c, v)
				}
				if strings.Contains(v, `\x1b[2J`) {
					seen++
				}
			}
		}
	}
	if seen == 0 {
		t.Error("the hostile text is not in the sheets at all (escaped)")
	}
	for _, row := range rows {
		fb := Feedback(r, row, Manual{})
		if c := controlLeft(fb); c >= 0 {
			t.Errorf("feedback of %s: %q left", row.Name, c)
		}
	}
}
