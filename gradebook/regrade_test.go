package gradebook

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
)

// TestRegradeKeepsTeacherWork: whatever the teacher changed or added in
// notas.xlsx survives a re-grade: an automatic score typed over (kept, and
// said so in Revisar), a column and a note of their own; marks that are not
// marks (NaN, negative, above the maximum) are kept as typed, flagged and
// not summed; the previous file is kept as notas.xlsx.bak; the mode stays.
func TestRegradeKeepsTeacherWork(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	path := filepath.Join(t.TempDir(), "notas.xlsx")
	if err := WriteXLSX(path, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	before := sheetText(t, path, SheetNotas)
	// Row 2 is Ana, row 3 Bea, row 4 Carlos. F..I automatic, J and K manual.
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(x.SetCellValue(SheetNotas, "G3", 0.25))           // Bea: an automatic score changed by hand
	must(x.SetCellStr(SheetNotas, "O1", "Entrega tardía")) // a column of the teacher's own
	must(x.SetCellStr(SheetNotas, "O2", "sí, 2 días"))     // for Ana
	must(x.AddComment(SheetNotas, excelize.Comment{Cell: "H3", Author: "Profe", Text: "revisar el cluster en clase"}))
	must(x.SetCellStr(SheetNotas, "J4", "NaN")) // Carlos: not a mark
	must(x.SetCellValue(SheetNotas, "K4", -1))  // negative
	must(x.SetCellValue(SheetNotas, "J2", 99))  // Ana: above the maximum
	must(x.Save())
	x.Close()
	edited, _ := os.ReadFile(path)

	reversed := []Row{rows[2], rows[1], rows[0]}
	reversed = append(reversed, rows[3:]...)
	if err := WriteXLSX(path, r, reversed, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	if bak, err := os.ReadFile(path + ".bak"); err != nil || !bytes.Equal(bak, edited) {
		t.Errorf("notas.xlsx.bak is not the previous file (%v)", err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("mode after re-grade: %v %v", st.Mode().Perm(), err)
	}
	notas := sheetText(t, path, SheetNotas)
	byName := map[string][]string{}
	for _, row := range notas[1:] {
		byName[row[0]] = row
	}
	at := func(row []string, i int) string {
		if i < len(row) {
			return row[i]
		}
		return ""
	}
	header := notas[0]
	iTotal, iRev := 11, 12
	if header[iTotal] != colTotal || header[iRev] != colRevisar || at(header, 14) != "Entrega tardía" {
		t.Fatalf("header %q", header)
	}
	bea := byName["Bea López"]
	if bea[6] != "0.25" || !strings.Contains(bea[iRev], "cambiada a mano") {
		t.Errorf("Bea's override: %q", bea)
	}
	// Bea's total: the old total with G's automatic score replaced by 0.25.
	var oldBea []string
	for _, row := range before[1:] {
		if row[0] == "Bea López" {
			oldBea = row
		}
	}
	if want := fmtTotal(t, oldBea, 6, 0.25); bea[iTotal] != want {
		t.Errorf("Bea's total %s, want %s", bea[iTotal], want)
	}
	ana := byName["Ana García"]
	if at(ana, 14) != "sí, 2 días" {
		t.Errorf("Ana's own column: %q", ana)
	}
	if ana[9] != "99" || !strings.Contains(ana[iRev], "no válida") {
		t.Errorf("Ana's above-maximum mark: %q", ana)
	}
	carlos := byName["Carlos Ruiz"]
	if carlos[9] != "NaN" || carlos[10] != "-1" || !strings.Contains(carlos[iRev], "no válida") {
		t.Errorf("Carlos's invalid marks: %q", carlos)
	}
	var oldCarlos []string
	for _, row := range before[1:] {
		if row[0] == "Carlos Ruiz" {
			oldCarlos = row
		}
	}
	if carlos[iTotal] != oldCarlos[iTotal] {
		t.Errorf("Carlos's total %s, want %s (invalid marks not summed)", carlos[iTotal], oldCarlos[iTotal])
	}
	x, err = excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	comments, err := x.GetComments(SheetNotas)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range comments {
		col, rn, _ := excelize.CellNameToCoordinates(c.Cell)
		if strings.Contains(c.Text+paragraphText(c), "revisar el cluster") {
			found = col == 8 && notas[rn-1][0] == "Bea López"
		}
	}
	if !found {
		t.Errorf("the teacher's note is not on Bea's H cell: %+v", comments)
	}
}

func paragraphText(c excelize.Comment) string {
	var b strings.Builder
	for _, p := range c.Paragraph {
		b.WriteString(p.Text)
	}
	return b.String()
}

// fmtTotal is row's total with column i's value replaced by v.
func fmtTotal(t *testing.T, row []string, i int, v float64) string {
	t.Helper()
	total := 0.0
	for c := 5; c <= 10; c++ {
		s := row[c]
		if c == i {
			total += v
			continue
		}
		if s == "" {
			continue
		}
		var f float64
		if _, err := fmtSscan(s, &f); err != nil {
			t.Fatalf("cell %q: %v", s, err)
		}
		total += f
	}
	return fmtScore2(total)
}

func fmtSscan(s string, f *float64) (int, error) { return fmt.Sscan(s, f) }

func fmtScore2(v float64) string { return strconv.FormatFloat(round2(v), 'f', 2, 64) }

// TestRegradeKeepsRowsNotGraded: a re-grade of part of the class (--limit)
// keeps the other students' rows as they were, marked for review.
func TestRegradeKeepsRowsNotGraded(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	path := filepath.Join(t.TempDir(), "notas.xlsx")
	if err := WriteXLSX(path, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	x.SetCellValue(SheetNotas, "J3", 0.5)             // Bea's manual mark
	x.SetCellStr(SheetNotas, "N3", "Bien el cluster") // and a comment
	x.Save()
	x.Close()
	before := sheetText(t, path, SheetNotas)

	if err := WriteXLSX(path, r, rows[:1], XLSXOptions{}); err != nil { // Ana only
		t.Fatal(err)
	}
	after := sheetText(t, path, SheetNotas)
	if len(after) != len(before) {
		t.Fatalf("%d rows after grading one student, want %d", len(after), len(before))
	}
	for _, old := range before[2:] {
		var got []string
		for _, row := range after {
			if row[0] == old[0] {
				got = row
			}
		}
		if got == nil {
			t.Errorf("%s's row is gone", old[0])
			continue
		}
		for i := range old {
			if i == 11 || i == 12 { // the total is recomputed; Revisar says why
				continue
			}
			if i >= len(got) || got[i] != old[i] {
				t.Errorf("%s: column %d %q, was %q", old[0], i+1, at(got, i), old[i])
			}
		}
		if old[0] == "Bea López" && got[11] != "3.25" {
			t.Errorf("Bea's total %s, want 3.25 (with her manual mark)", got[11])
		}
		if !strings.Contains(at(got, 12), "no calificado en esta ejecución") {
			t.Errorf("%s: Revisar %q", old[0], at(got, 12))
		}
	}
}

func at(row []string, i int) string {
	if i < len(row) {
		return row[i]
	}
	return ""
}
