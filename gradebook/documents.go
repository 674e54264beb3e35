package gradebook

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab/checks"
)

// Sheets written when the students' documents are graded.
const (
	SheetSimilitud = "Similitud"
	SheetEntregas  = "Entregas"
	// sheetSugerencias (hidden) records the marks deploylab suggested, so
	// that a re-grade tells them from marks the teacher typed: a mark that
	// still equals the suggestion is the suggestion, anything else is the
	// teacher's and wins.
	sheetSugerencias = "_sugerencias"
)

// SimilarPair is two students whose work shares something.
type SimilarPair struct {
	A, B string // names
	// Kind: "texto", "captura" or "VM".
	Kind     string
	Detail   string // figure: "62 palabras", "distancia 3"
	Evidence string
}

// SubmissionLine is one submission as it was matched.
type SubmissionLine struct {
	Folder   string
	Student  string // "" when no student matched
	How      string // nombre, id, email
	Files    string
	Problems string
}

// isSuggestion reports whether the cell of criterion c shows deploylab's
// suggestion (not a teacher's mark).
func isSuggestion(c checks.Criterion, cr *checks.CriterionResult, m Manual) bool {
	if cr == nil || !cr.Suggested || !cr.Scored {
		return false
	}
	if c.Manual {
		_, typed := m.Marks[c.ID]
		return !typed
	}
	return true
}

func writeDocumentSheets(x *excelize.File, st styles, r *checks.Rubric, rows []Row, manual map[string]Manual, opts XLSXOptions) error {
	suggested := false
	for _, row := range rows {
		for _, cr := range row.Scorecard.Criteria {
			suggested = suggested || cr.Suggested
		}
	}
	if !suggested && opts.Similar == nil && opts.Submissions == nil {
		return nil
	}
	if err := writeSimilitud(x, st, opts.Similar); err != nil {
		return fmt.Errorf("sheet %s: %w", SheetSimilitud, err)
	}
	if err := writeEntregas(x, st, opts.Submissions); err != nil {
		return fmt.Errorf("sheet %s: %w", SheetEntregas, err)
	}
	if _, err := x.NewSheet(sheetSugerencias); err != nil {
		return err
	}
	rn := 1
	for _, row := range rows {
		for _, c := range r.Criteria {
			cr := findResult(row.Scorecard, c.ID)
			if !isSuggestion(c, cr, manual[row.Key()]) {
				continue
			}
			vals := []any{row.Key(), c.ID, cr.Score}
			if err := x.SetSheetRow(sheetSugerencias, cell(1, rn), &vals); err != nil {
				return err
			}
			rn++
		}
	}
	return x.SetSheetVisible(sheetSugerencias, false)
}

func writeSimilitud(x *excelize.File, st styles, pairs []SimilarPair) error {
	const sh = SheetSimilitud
	if _, err := x.NewSheet(sh); err != nil {
		return err
	}
	header := []string{"Alumno A", "Alumno B", "Tipo", "Medida", "Evidencia"}
	if err := x.SetSheetRow(sh, "A1", &header); err != nil {
		return err
	}
	for i, p := range pairs {
		vals := []any{p.A, p.B, p.Kind, p.Detail, p.Evidence}
		if err := x.SetSheetRow(sh, cell(1, i+2), &vals); err != nil {
			return err
		}
	}
	if len(pairs) == 0 {
		if err := x.SetCellStr(sh, "A2", "ningún par con pasajes, capturas o VM en común"); err != nil {
			return err
		}
	}
	for c, w := range map[string]float64{"A": 26, "B": 26, "C": 10, "D": 16, "E": 120} {
		if err := x.SetColWidth(sh, c, c, w); err != nil {
			return err
		}
	}
	if err := x.SetCellStyle(sh, "A1", "E1", st.header); err != nil {
		return err
	}
	return x.SetCellStyle(sh, "E2", cell(5, max(len(pairs)+1, 2)), st.wrap)
}

func writeEntregas(x *excelize.File, st styles, subs []SubmissionLine) error {
	const sh = SheetEntregas
	if _, err := x.NewSheet(sh); err != nil {
		return err
	}
	header := []string{"Carpeta o fichero", "Alumno", "Emparejado por", "Ficheros", "Problemas"}
	if err := x.SetSheetRow(sh, "A1", &header); err != nil {
		return err
	}
	for i, s := range subs {
		student := s.Student
		if student == "" {
			student = "SIN EMPAREJAR"
		}
		vals := []any{s.Folder, student, s.How, s.Files, s.Problems}
		if err := x.SetSheetRow(sh, cell(1, i+2), &vals); err != nil {
			return err
		}
	}
	for c, w := range map[string]float64{"A": 44, "B": 26, "C": 16, "D": 50, "E": 80} {
		if err := x.SetColWidth(sh, c, c, w); err != nil {
			return err
		}
	}
	if err := x.SetCellStyle(sh, "A1", "E1", st.header); err != nil {
		return err
	}
	return x.SetCellStyle(sh, "D2", cell(5, max(len(subs)+1, 2)), st.wrap)
}

// suggestionAuthor signs the notes on suggested marks (a re-grade writes
// them anew; the teacher's own notes are kept).
const suggestionAuthor = "deploylab"

// noteSuggestions adds a note to every suggested cell of Notas: what the
// mark is made of and that a typed mark replaces it. A cell that carries a
// note of the teacher's keeps it alone.
func noteSuggestions(x *excelize.File, r *checks.Rubric, rows []Row, manual map[string]Manual, old *oldBook) error {
	header, err := x.GetRows(SheetNotas)
	if err != nil || len(header) == 0 {
		return err
	}
	for i, row := range rows {
		for _, c := range r.Criteria {
			cr := findResult(row.Scorecard, c.ID)
			if _, over := manual[row.Key()].Overrides[c.ID]; over || !isSuggestion(c, cr, manual[row.Key()]) {
				continue
			}
			h := CriterionHeader(c)
			col := slices.Index(header[0], h)
			if col < 0 || (old != nil && len(old.notes[row.Key()][h]) > 0) {
				continue
			}
			text := "Nota sugerida por deploylab a partir del documento (" + cr.SuggestedNote + "). Detalle: hoja " + SheetDetalle +
				". Escribe tu nota para sustituirla: la tuya se conserva al volver a calificar."
			if err := x.AddComment(SheetNotas, excelize.Comment{
				Cell: cell(col+1, i+2), Author: suggestionAuthor,
				Paragraph: []excelize.RichTextRun{{Text: text}},
			}); err != nil {
				return err
			}
		}
	}
	return nil
}

// readSuggestions reads the hidden sheet of suggested marks: key → criterion
// → mark.
func readSuggestions(x *excelize.File) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	rows, err := x.GetRows(sheetSugerencias)
	if err != nil {
		return out
	}
	for _, r := range rows {
		if len(r) < 3 {
			continue
		}
		v, err := strconv.ParseFloat(strings.ReplaceAll(r[2], ",", "."), 64)
		if err != nil {
			continue
		}
		if out[r[0]] == nil {
			out[r[0]] = map[string]float64{}
		}
		out[r[0]][r[1]] = v
	}
	return out
}

// dropSuggestions removes from marks the ones that are still deploylab's
// suggestion.
func dropSuggestions(sugg map[string]float64, marks map[string]float64) {
	for id, v := range sugg {
		if m, ok := marks[id]; ok && math.Abs(m-v) < 0.005 {
			delete(marks, id)
		}
	}
}
