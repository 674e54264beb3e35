package gradebook

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/internal/fail"
)

// Sheet names and fixed column headers of notas.xlsx.
const (
	SheetNotas   = "Notas"
	SheetDetalle = "Detalle"
	SheetBench   = "Bench"
	SheetRubrica = "Rúbrica"

	colAlumno      = "Alumno"
	colID          = "ID"
	colEmail       = "Email"
	colHost        = "Host"
	colEstado      = "Estado"
	colTotal       = "Total"
	colRevisar     = "Revisar"
	colComentarios = "Comentarios"
)

// Outcome labels in the sheets and the feedback.
var outcomeLabel = map[checks.Outcome]string{
	checks.Pass:  "superada",
	checks.Fail:  "no superada",
	checks.Skip:  "omitida",
	checks.Error: "sin comprobar",
}

// labelPartial is the label of a check that failed but earned part of its
// weight from the evidence of work on the host.
const labelPartial = "parcial"

// resultLabel is the Resultado of one check: "parcial" for a partial mark.
func resultLabel(ch checks.Result) string {
	if ch.Partial() {
		return labelPartial
	}
	return outcomeLabel[ch.Outcome]
}

// CriterionHeader is the Notas column header of a criterion.
func CriterionHeader(c checks.Criterion) string {
	return fmt.Sprintf("%s (%s)", c.Name, fmtScore(c.Points))
}

func col(n int) string {
	s, _ := excelize.ColumnNumberToName(n)
	return s
}

func cell(c, r int) string {
	s, _ := excelize.CoordinatesToCellName(c, r)
	return s
}

// openOld opens an existing notas.xlsx, with a clear error when it cannot.
func openOld(path string) (*excelize.File, error) {
	x, err := excelize.OpenFile(path)
	if err != nil {
		return nil, fail.New(fail.Usage, "move the old file away (its manual marks cannot be read) or choose another --out",
			fmt.Errorf("read the previous %s: %w", path, err))
	}
	if idx, _ := x.GetSheetIndex(SheetNotas); idx < 0 {
		x.Close()
		return nil, fail.Errorf(fail.Usage, "move it away or choose another --out",
			"%s exists but is not a deploylab grade sheet (no sheet %q)", path, SheetNotas)
	}
	return x, nil
}

// SheetDeploylab is a hidden sheet holding the automatic scores deploylab
// wrote, so that a re-grade can tell which of them the teacher changed.
const SheetDeploylab = "deploylab"

// ReadManual reads what the teacher typed in a previous notas.xlsx, by
// student key: manual marks, comments, marks typed over automatic scores,
// marks that are not valid, their own columns. A missing file gives an empty
// map.
func ReadManual(path string, r *checks.Rubric) (map[string]Manual, error) {
	old, err := readOld(path, r)
	if err != nil {
		return nil, err
	}
	return old.manual, nil
}

// oldBook is what a re-grade keeps of the previous notas.xlsx.
type oldBook struct {
	manual map[string]Manual
	// extra are the headers of the teacher's own columns, in order.
	extra []string
	// notes are the teacher's cell notes, by student key ("" for the
	// header row) and column header.
	notes  map[string]map[string][]excelize.Comment
	exists bool
	mode   os.FileMode
	// rows are the previous sheet's rows, in order, for the students a
	// re-grade of part of the class does not visit.
	rows []oldRow
}

// oldRow is a previous row: its key and raw cells by column header, the
// criteria's by criterion ID.
type oldRow struct {
	key   string
	cells map[string]string
	crit  map[string]string
}

func readOld(path string, r *checks.Rubric) (*oldBook, error) {
	old := &oldBook{manual: map[string]Manual{}, notes: map[string]map[string][]excelize.Comment{}, mode: 0o644}
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return old, nil
	}
	if err == nil {
		old.exists, old.mode = true, st.Mode().Perm()
	}
	if err := checkLock(path); err != nil {
		return nil, err
	}
	x, err := openOld(path)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	rows, err := x.GetRows(SheetNotas, excelize.Options{RawCellValue: true})
	if err != nil {
		return nil, fail.New(fail.Usage, "move the old file away or choose another --out", fmt.Errorf("read the previous %s: %w", path, err))
	}
	if len(rows) == 0 {
		return old, nil
	}
	header := rows[0]
	idx := func(name string) int { return slices.Index(header, name) }
	critCol := map[string]int{}
	ours := map[int]bool{}
	for _, c := range r.Criteria {
		i := idx(CriterionHeader(c))
		if i < 0 {
			// The points may have changed: match the name alone.
			i = slices.IndexFunc(header, func(h string) bool { return strings.HasPrefix(h, c.Name+" (") })
		}
		if i >= 0 {
			critCol[c.ID] = i
			ours[i] = true
		}
	}
	for _, h := range []string{colAlumno, colID, colEmail, colHost, colEstado, colTotal, colRevisar, colComentarios} {
		if i := idx(h); i >= 0 {
			ours[i] = true
		}
	}
	// Columns of the old sheet that are neither fixed nor a criterion of
	// this rubric: the teacher's own (a criterion dropped from the rubric
	// looks the same: it is kept too, as the teacher's).
	extraCol := map[string]int{}
	for i, h := range header {
		if h = strings.TrimSpace(h); h != "" && !ours[i] {
			old.extra = append(old.extra, h)
			extraCol[h] = i
		}
	}
	auto := readAutoScores(x)
	iCom := idx(colComentarios)
	sugg := readSuggestions(x)
	get := func(row []string, i int) string {
		if i < 0 || i >= len(row) {
			return ""
		}
		return strings.TrimSpace(row[i])
	}
	rowKey := map[int]string{}
	for rn, row := range rows[1:] {
		s := Student{Name: get(row, idx(colAlumno)), ID: get(row, idx(colID)), Email: get(row, idx(colEmail)), Host: get(row, idx(colHost))}
		key := s.Key()
		if key == "" {
			continue
		}
		rowKey[rn+2] = key
		orow := oldRow{key: key, cells: map[string]string{}, crit: map[string]string{}}
		for i, h := range header {
			if v := get(row, i); v != "" {
				orow.cells[h] = v
			}
		}
		for id, i := range critCol {
			if v := get(row, i); v != "" {
				orow.crit[id] = v
			}
		}
		old.rows = append(old.rows, orow)
		m := Manual{Marks: map[string]float64{}, Comment: get(row, iCom)}
		for _, c := range r.Criteria {
			i, ok := critCol[c.ID]
			if !ok {
				continue
			}
			raw := get(row, i)
			if !c.Manual {
				a, known := auto[key][c.ID]
				if !known || raw == a || sameNumber(raw, a) {
					continue // what deploylab wrote (or no record of it)
				}
				if raw == "" {
					continue // cleared: the automatic score comes back
				}
			}
			if raw == "" {
				continue
			}
			v, err := strconv.ParseFloat(strings.ReplaceAll(raw, ",", "."), 64)
			if err != nil && !strings.EqualFold(raw, "nan") {
				return nil, fail.Errorf(fail.Usage, "fix the mark in the sheet or clear it",
					"%s: sheet %s, cell %s: %q is not a mark", path, SheetNotas, cell(i+1, rn+2), raw)
			}
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > c.Points+1e-9 {
				if m.Invalid == nil {
					m.Invalid = map[string]string{}
				}
				m.Invalid[c.ID] = raw
				continue
			}
			if c.Manual {
				m.Marks[c.ID] = v
				continue
			}
			if m.Overrides == nil {
				m.Overrides = map[string]Override{}
			}
			o := Override{Mark: v}
			if a, err := strconv.ParseFloat(auto[key][c.ID], 64); err == nil {
				o.Auto, o.HadAuto = a, true
			}
			m.Overrides[c.ID] = o
		}
		for h, i := range extraCol {
			if v := get(row, i); v != "" {
				if m.Extra == nil {
					m.Extra = map[string]string{}
				}
				m.Extra[h] = v
			}
		}
		dropSuggestions(sugg[key], m.Marks)
		if len(m.Marks) > 0 || m.Comment != "" || len(m.Overrides) > 0 || len(m.Invalid) > 0 || len(m.Extra) > 0 {
			old.manual[key] = m
		}
	}
	if comments, err := x.GetComments(SheetNotas); err == nil {
		for _, c := range comments {
			if c.Author == suggestionAuthor {
				continue // deploylab's note on a suggested mark: written anew
			}
			col, rn, err := excelize.CellNameToCoordinates(c.Cell)
			if err != nil || col-1 >= len(header) {
				continue
			}
			key, ok := rowKey[rn]
			if rn == 1 {
				key, ok = "", true
			}
			if !ok {
				continue
			}
			h := header[col-1]
			if old.notes[key] == nil {
				old.notes[key] = map[string][]excelize.Comment{}
			}
			old.notes[key][h] = append(old.notes[key][h], c)
		}
	}
	return old, nil
}

func sameNumber(a, b string) bool {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && math.Abs(x-y) < 0.005
}

// readAutoScores reads SheetDeploylab: student key, criterion ID, score
// written ("" for none). A file without it (an older deploylab's) gives none.
func readAutoScores(x *excelize.File) map[string]map[string]string {
	out := map[string]map[string]string{}
	rows, err := x.GetRows(SheetDeploylab, excelize.Options{RawCellValue: true})
	if err != nil {
		return out
	}
	for _, row := range rows {
		if len(row) < 2 || row[0] == "" {
			continue
		}
		if out[row[0]] == nil {
			out[row[0]] = map[string]string{}
		}
		v := ""
		if len(row) > 2 {
			v = row[2]
		}
		out[row[0]][row[1]] = v
	}
	return out
}

// XLSXOptions tunes WriteXLSX.
type XLSXOptions struct {
	// BenchRoute is the route charted single vs cluster (default: the
	// rubric's first bench check's route, else /api/500000).
	BenchRoute string
	// Similar and Submissions fill the Similitud and Entregas sheets
	// (grade --submissions); none: no such sheets.
	Similar     []SimilarPair
	Submissions []SubmissionLine
}

// WriteXLSX writes notas.xlsx at path atomically. When path exists,
// what the teacher typed there is read first and kept (manual marks,
// comments, automatic scores typed over, their own columns and notes), the
// old file is kept as path.bak and the new one gets its mode; a file that
// cannot be read is an error and stays untouched.
func WriteXLSX(path string, r *checks.Rubric, rows []Row, opts XLSXOptions) error {
	old, err := readOld(path, r)
	if err != nil {
		return err
	}
	x, err := buildXLSX(r, safeRows(rows), old, opts)
	if err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	defer x.Close()
	if old.exists {
		// The previous workbook, as the teacher left it, stays next to it.
		if err := copyFile(path, path+".bak", old.mode); err != nil {
			return fmt.Errorf("keep the previous %s: %w", path, err)
		}
	}
	return writeAtomicMode(path, old.mode, func(f *os.File) error {
		_, err := x.WriteTo(f)
		return err
	})
}

func benchRoute(r *checks.Rubric, opts XLSXOptions) string {
	if opts.BenchRoute != "" {
		return opts.BenchRoute
	}
	if route := r.BenchRoute(); route != "" {
		return route
	}
	return "/api/500000"
}

type styles struct {
	header, wrap, score, manual, total int
	override, invalid                  int
	pass, partial, failS, errS, skip   int
	review                             int
	suggested, suggestedManual         int
}

func newStyles(x *excelize.File) (styles, error) {
	var s styles
	var err error
	mk := func(st *excelize.Style) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = x.NewStyle(st)
		return id
	}
	mkc := func(fill string) int {
		if err != nil {
			return 0
		}
		var id int
		id, err = x.NewConditionalStyle(&excelize.Style{Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{fill}}})
		return id
	}
	two := "0.00"
	s.header = mk(&excelize.Style{Font: &excelize.Font{Bold: true}, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}},
		Alignment: &excelize.Alignment{WrapText: true, Vertical: "center"}})
	s.wrap = mk(&excelize.Style{Alignment: &excelize.Alignment{WrapText: true, Vertical: "top"}})
	s.score = mk(&excelize.Style{CustomNumFmt: &two})
	s.manual = mk(&excelize.Style{CustomNumFmt: &two, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"FFF2CC"}},
		Protection: &excelize.Protection{Locked: false}})
	s.total = mk(&excelize.Style{CustomNumFmt: &two, Font: &excelize.Font{Bold: true}})
	s.override = mk(&excelize.Style{CustomNumFmt: &two, Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"F8CBAD"}}})
	s.invalid = mk(&excelize.Style{Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"FF7C80"}}})
	s.pass = mkc("C6EFCE")
	s.partial = mkc("FFF3B0")
	s.failS = mkc("FFC7CE")
	s.errS = mkc("FFEB9C")
	s.skip = mkc("E7E6E6")
	s.review = mkc("FFEB9C")
	// A suggested mark (from the student's document): blue italics, so the
	// teacher sees what to confirm or overwrite.
	s.suggested = mk(&excelize.Style{CustomNumFmt: &two, Font: &excelize.Font{Italic: true, Color: "1F4E9E"}})
	s.suggestedManual = mk(&excelize.Style{CustomNumFmt: &two, Font: &excelize.Font{Italic: true, Color: "1F4E9E"},
		Fill: excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}}, Protection: &excelize.Protection{Locked: false}})
	return s, err
}

func buildXLSX(r *checks.Rubric, rows []Row, old *oldBook, opts XLSXOptions) (*excelize.File, error) {
	if old == nil {
		old = &oldBook{}
	}
	manual := old.manual
	x := excelize.NewFile()
	if err := x.SetSheetName("Sheet1", SheetNotas); err != nil {
		return nil, err
	}
	for _, s := range []string{SheetDetalle, SheetBench, SheetRubrica, SheetDeploylab} {
		if _, err := x.NewSheet(s); err != nil {
			return nil, err
		}
	}
	st, err := newStyles(x)
	if err != nil {
		return nil, err
	}
	graded := map[string]bool{}
	for _, row := range rows {
		graded[row.Key()] = true
	}
	var kept []oldRow
	for _, o := range old.rows {
		if !graded[o.key] {
			kept = append(kept, o)
			graded[o.key] = true
		}
	}
	if err := writeNotas(x, st, r, rows, manual, old.extra, kept); err != nil {
		return nil, fmt.Errorf("sheet %s: %w", SheetNotas, err)
	}
	if err := writeNotes(x, r, rows, kept, old); err != nil {
		return nil, fmt.Errorf("sheet %s: notes: %w", SheetNotas, err)
	}
	if err := noteSuggestions(x, r, rows, manual, old); err != nil {
		return nil, fmt.Errorf("sheet %s: %w", SheetNotas, err)
	}
	if err := writeAutoScores(x, r, rows); err != nil {
		return nil, fmt.Errorf("sheet %s: %w", SheetDeploylab, err)
	}
	if err := writeDetalle(x, st, r, rows); err != nil {
		return nil, fmt.Errorf("sheet %s: %w", SheetDetalle, err)
	}
	if err := writeBench(x, st, rows, benchRoute(r, opts)); err != nil {
		return nil, fmt.Errorf("sheet %s: %w", SheetBench, err)
	}
	if err := writeRubrica(x, st, r); err != nil {
		return nil, fmt.Errorf("sheet %s: %w", SheetRubrica, err)
	}
	if err := writeDocumentSheets(x, st, r, rows, manual, opts); err != nil {
		return nil, err
	}
	x.SetActiveSheet(0)
	full := true
	if err := x.SetCalcProps(&excelize.CalcPropsOptions{FullCalcOnLoad: &full}); err != nil {
		return nil, err
	}
	return x, nil
}

// writeNotas writes the grade sheet. Sheet-level settings (filter,
// validation, conditional formats) go first; the rows are streamed so that
// the Total cells carry both the formula and its value.
func writeNotas(x *excelize.File, st styles, r *checks.Rubric, rows []Row, manual map[string]Manual, extra []string, kept []oldRow) error {
	header := []string{colAlumno, colID, colEmail, colHost, colEstado}
	firstCrit := len(header) + 1
	for _, c := range r.Criteria {
		header = append(header, CriterionHeader(c))
	}
	lastCrit := len(header)
	header = append(header, colTotal, colRevisar, colComentarios)
	header = append(header, extra...)
	totalCol, reviewCol := lastCrit+1, lastCrit+2
	n := len(rows) + len(kept)
	last := max(n+1, 2)

	if err := x.AutoFilter(SheetNotas, cell(1, 1)+":"+cell(len(header), last), nil); err != nil {
		return err
	}
	for i, c := range r.Criteria {
		if !c.Manual {
			continue
		}
		dv := excelize.NewDataValidation(true)
		dv.SetSqref(cell(firstCrit+i, 2) + ":" + cell(firstCrit+i, last))
		if err := dv.SetRange(0, c.Points, excelize.DataValidationTypeDecimal, excelize.DataValidationOperatorBetween); err != nil {
			return err
		}
		dv.SetError(excelize.DataValidationErrorStyleStop, "Nota no válida", fmt.Sprintf("Escribe una nota entre 0 y %s.", fmtScore(c.Points)))
		dv.SetInput(c.Name, fmt.Sprintf("Nota del profesor, de 0 a %s.", fmtScore(c.Points)))
		if err := x.AddDataValidation(SheetNotas, dv); err != nil {
			return err
		}
	}
	totalRange := cell(totalCol, 2) + ":" + cell(totalCol, last)
	if err := x.SetConditionalFormat(SheetNotas, totalRange, []excelize.ConditionalFormatOptions{{
		Type: "3_color_scale", Criteria: "=",
		MinType: "num", MinValue: "0", MinColor: "F8696B",
		MidType: "num", MidValue: fmtScore(r.Total / 2), MidColor: "FFEB84",
		MaxType: "num", MaxValue: fmtScore(r.Total), MaxColor: "63BE7B",
	}}); err != nil {
		return err
	}
	if err := x.SetConditionalFormat(SheetNotas, cell(reviewCol, 2)+":"+cell(reviewCol, last), []excelize.ConditionalFormatOptions{{
		Type: "text", Criteria: "begins with", Value: "sí", Format: &st.review,
	}}); err != nil {
		return err
	}
	// Unreachable hosts in red in the Estado column.
	if err := x.SetConditionalFormat(SheetNotas, cell(5, 2)+":"+cell(5, last), []excelize.ConditionalFormatOptions{{
		Type: "text", Criteria: "begins with", Value: "inalcanzable", Format: &st.failS,
	}}); err != nil {
		return err
	}

	sw, err := x.NewStreamWriter(SheetNotas)
	if err != nil {
		return err
	}
	widths := map[int]float64{1: 26, 2: 12, 3: 26, 4: 16, 5: 28}
	for c := firstCrit; c <= lastCrit; c++ {
		widths[c] = 14
	}
	widths[totalCol], widths[reviewCol], widths[reviewCol+1] = 10, 9, 40
	for c := reviewCol + 2; c <= len(header); c++ {
		widths[c] = 16
	}
	for c := 1; c <= len(header); c++ {
		if err := sw.SetColWidth(c, c, widths[c]); err != nil {
			return err
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, XSplit: 1, YSplit: 1, TopLeftCell: "B2", ActivePane: "bottomRight"}); err != nil {
		return err
	}
	hrow := make([]any, len(header))
	for i, h := range header {
		hrow[i] = excelize.Cell{StyleID: st.header, Value: h}
	}
	if err := sw.SetRow("A1", hrow, excelize.RowOpts{Height: 32}); err != nil {
		return err
	}
	for i, row := range rows {
		m := manual[row.Key()]
		estado := "alcanzable"
		switch {
		case row.Scorecard.DocumentsOnly:
			estado = "solo documento"
		case !row.Scorecard.Reachable:
			estado = "inalcanzable: " + row.Scorecard.Reason
		}
		vals := []any{row.Name, row.ID, row.Email, row.Host, estado}
		total, anyMark := 0.0, false
		var why []string
		for _, c := range r.Criteria {
			cr := findResult(row.Scorecard, c.ID)
			style := st.score
			if c.Manual {
				style = st.manual
			}
			if raw, bad := m.Invalid[c.ID]; bad {
				// Kept as typed (text: SUM leaves it out) and flagged.
				why = append(why, fmt.Sprintf("nota no válida en %s: %q (de 0 a %s)", c.Name, raw, fmtScore(c.Points)))
				vals = append(vals, excelize.Cell{StyleID: st.invalid, Value: raw})
				continue
			}
			if o, over := m.Overrides[c.ID]; over {
				auto := "sin nota"
				if o.HadAuto {
					auto = fmtScore(o.Auto)
				}
				why = append(why, fmt.Sprintf("nota cambiada a mano en %s (automática: %s)", c.Name, auto))
				style = st.override
			}
			v, ok := criterionScore(c, cr, m)
			if _, over := m.Overrides[c.ID]; !over && isSuggestion(c, cr, m) {
				style = st.suggested
				if c.Manual {
					style = st.suggestedManual
				}
			}
			if !ok {
				vals = append(vals, excelize.Cell{StyleID: style})
				continue
			}
			total += v
			anyMark = true
			vals = append(vals, excelize.Cell{StyleID: style, Value: v})
		}
		rn := i + 2
		// No mark at all (an unreachable host): the total is blank, not 0.
		formula := fmt.Sprintf(`IF(COUNT(%[1]s:%[2]s)=0,"",SUM(%[1]s:%[2]s))`, cell(firstCrit, rn), cell(lastCrit, rn))
		review := ""
		if row.Scorecard.NeedsReview || (!row.Scorecard.Reachable && !row.Scorecard.DocumentsOnly) || len(row.Scorecard.ReviewNotes) > 0 || len(why) > 0 {
			review = "sí"
			if len(row.Scorecard.ReviewNotes) > 0 {
				review += ": " + strings.Join(row.Scorecard.ReviewNotes, "; ")
			}
		}
		if len(why) > 0 {
			review += ": " + strings.Join(why, "; ")
		}
		var totalValue any = round2(total)
		if !anyMark {
			totalValue = "" // no mark at all (an unreachable host): blank, not 0
		}
		vals = append(vals, excelize.Cell{StyleID: st.total, Formula: formula, Value: totalValue}, review, m.Comment)
		for _, h := range extra {
			vals = append(vals, m.Extra[h])
		}
		if err := sw.SetRow(cell(1, rn), vals); err != nil {
			return err
		}
	}
	// Students of the previous sheet not graded in this run (a --limit):
	// their rows as they were, marked for review.
	for i, o := range kept {
		rn := len(rows) + i + 2
		vals := []any{o.cells[colAlumno], o.cells[colID], o.cells[colEmail], o.cells[colHost], o.cells[colEstado]}
		total := 0.0
		for _, c := range r.Criteria {
			style := st.score
			if c.Manual {
				style = st.manual
			}
			raw, ok := o.crit[c.ID]
			if !ok {
				vals = append(vals, excelize.Cell{StyleID: style})
				continue
			}
			if v, err := strconv.ParseFloat(raw, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
				total += v
				vals = append(vals, excelize.Cell{StyleID: style, Value: v})
			} else {
				vals = append(vals, excelize.Cell{StyleID: st.invalid, Value: raw})
			}
		}
		formula := fmt.Sprintf("SUM(%s:%s)", cell(firstCrit, rn), cell(lastCrit, rn))
		vals = append(vals, excelize.Cell{StyleID: st.total, Formula: formula, Value: round2(total)},
			"sí: no calificado en esta ejecución (fila de la hoja anterior)", o.cells[colComentarios])
		for _, h := range extra {
			vals = append(vals, o.cells[h])
		}
		if err := sw.SetRow(cell(1, rn), vals); err != nil {
			return err
		}
	}
	return sw.Flush()
}

func round2(v float64) float64 {
	f, _ := strconv.ParseFloat(fmtScore(v), 64)
	return f
}

func writeDetalle(x *excelize.File, st styles, r *checks.Rubric, rows []Row) error {
	const sh = SheetDetalle
	header := []string{colAlumno, colHost, "Criterio", "Comprobación", "Tipo", "Peso", "Resultado", "Evidencia", "Motivo"}
	if err := x.SetSheetRow(sh, "A1", &header); err != nil {
		return err
	}
	rn := 2
	for _, row := range rows {
		for _, c := range row.Scorecard.Criteria {
			if c.Manual && len(c.Checks) == 0 {
				continue
			}
			for _, ch := range c.Checks {
				name := ch.Name
				if name == "" {
					name = ch.ID
				}
				vals := []any{row.Name, row.Host, c.Name, name, string(ch.Kind), ch.Weight, resultLabel(ch), ch.Evidence, ch.Reason}
				if err := x.SetSheetRow(sh, cell(1, rn), &vals); err != nil {
					return err
				}
				rn++
			}
		}
	}
	last := max(rn-1, 2)
	for c, w := range map[string]float64{"A": 24, "B": 14, "C": 22, "D": 40, "E": 9, "F": 6, "G": 13, "H": 80, "I": 50} {
		if err := x.SetColWidth(sh, c, c, w); err != nil {
			return err
		}
	}
	if err := x.SetCellStyle(sh, "A1", cell(len(header), 1), st.header); err != nil {
		return err
	}
	if err := x.SetCellStyle(sh, "H2", cell(9, last), st.wrap); err != nil {
		return err
	}
	rng := "G2:G" + strconv.Itoa(last)
	var cf []excelize.ConditionalFormatOptions
	for _, o := range []struct {
		label string
		style int
	}{{outcomeLabel[checks.Pass], st.pass}, {labelPartial, st.partial}, {outcomeLabel[checks.Fail], st.failS}, {outcomeLabel[checks.Error], st.errS}, {outcomeLabel[checks.Skip], st.skip}} {
		s := o.style
		cf = append(cf, excelize.ConditionalFormatOptions{Type: "cell", Criteria: "==", Value: `"` + o.label + `"`, Format: &s})
	}
	if err := x.SetConditionalFormat(sh, rng, cf); err != nil {
		return err
	}
	if err := x.SetPanes(sh, &excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	return x.AutoFilter(sh, "A1:"+cell(len(header), last), nil)
}

// latest returns, per server, the latest result for route.
func latest(bench []checks.BenchSummary, route string) map[string]checks.BenchSummary {
	out := map[string]checks.BenchSummary{}
	for _, b := range bench {
		if b.Route != route {
			continue
		}
		if old, ok := out[b.Server]; !ok || !b.At.Before(old.At) {
			out[b.Server] = b
		}
	}
	return out
}

func writeBench(x *excelize.File, st styles, rows []Row, route string) error {
	const sh = SheetBench
	header := []string{colAlumno, colHost, "Ruta", "Servidor", "Herramienta", "RPS", "p50 (ms)", "p99 (ms)", "Errores"}
	if err := x.SetSheetRow(sh, "A1", &header); err != nil {
		return err
	}
	rn := 2
	for _, row := range rows {
		for _, b := range row.Scorecard.Bench {
			vals := []any{row.Name, row.Host, b.Route, b.Server, b.Tool, round2(b.RPS), round2(b.P50us / 1000), round2(b.P99us / 1000), b.Errors}
			if err := x.SetSheetRow(sh, cell(1, rn), &vals); err != nil {
				return err
			}
			rn++
		}
	}
	// Summary for the chart: one line per student with results on route.
	sumHeader := []string{colAlumno, "sin cluster (rps)", "cluster (rps)", "cluster / sin cluster"}
	if err := x.SetSheetRow(sh, "K1", &sumHeader); err != nil {
		return err
	}
	sn := 2
	for _, row := range rows {
		l := latest(row.Scorecard.Bench, route)
		si, okS := l[checks.ServerSingle]
		cl, okC := l[checks.ServerCluster]
		if !okS && !okC {
			continue
		}
		vals := []any{row.Name, nil, nil, nil}
		if okS {
			vals[1] = round2(si.RPS)
		}
		if okC {
			vals[2] = round2(cl.RPS)
		}
		if okS && okC && si.RPS > 0 {
			vals[3] = round2(cl.RPS / si.RPS)
		}
		if err := x.SetSheetRow(sh, cell(11, sn), &vals); err != nil {
			return err
		}
		sn++
	}
	for c, w := range map[string]float64{"A": 24, "B": 14, "C": 16, "D": 10, "E": 18, "K": 24, "L": 16, "M": 14, "N": 20} {
		if err := x.SetColWidth(sh, c, c, w); err != nil {
			return err
		}
	}
	if err := x.SetCellStyle(sh, "A1", "I1", st.header); err != nil {
		return err
	}
	if err := x.SetCellStyle(sh, "K1", "N1", st.header); err != nil {
		return err
	}
	if sn == 2 {
		return x.SetCellStr(sh, "K2", "sin resultados de deploylab bench para "+route)
	}
	zero := 0.0
	ref := func(c string) string { return fmt.Sprintf("'%s'!$%s$2:$%s$%d", sh, c, c, sn-1) }
	return x.AddChart(sh, "K"+strconv.Itoa(sn+2), &excelize.Chart{
		Type: excelize.Col,
		Series: []excelize.ChartSeries{
			{Name: fmt.Sprintf("'%s'!$L$1", sh), Categories: ref("K"), Values: ref("L")},
			{Name: fmt.Sprintf("'%s'!$M$1", sh), Categories: ref("K"), Values: ref("M")},
		},
		Title:  excelize.ChartTitle{Paragraph: []excelize.RichTextRun{{Text: "Peticiones por segundo en " + route}}},
		Legend: excelize.ChartLegend{Position: "bottom"},
		// From 0: a value axis starting near the smallest bar (Excel's
		// automatic minimum) makes a ×1.03 difference look like ×3.
		YAxis:  excelize.ChartAxis{Minimum: &zero, MajorGridLines: true},
		Format: excelize.GraphicOptions{ScaleX: 1.4, ScaleY: 1.2},
	})
}

func writeRubrica(x *excelize.File, st styles, r *checks.Rubric) error {
	const sh = SheetRubrica
	title := r.Title
	if title == "" {
		title = "Rúbrica"
	}
	if err := x.SetCellStr(sh, "A1", title+" — "+r.File); err != nil {
		return err
	}
	header := []string{"Criterio", "Puntos", "Tipo", "Comprobación", "Tipo de comprobación", "Peso", "Descripción / pregunta"}
	if err := x.SetSheetRow(sh, "A3", &header); err != nil {
		return err
	}
	rn := 4
	put := func(vals []any) error {
		err := x.SetSheetRow(sh, cell(1, rn), &vals)
		rn++
		return err
	}
	for _, c := range r.Criteria {
		kind := "automático"
		desc := c.Description
		if c.Manual {
			kind = "manual"
			for _, s := range []string{c.Question, c.Guide} {
				if s != "" {
					if desc != "" {
						desc += "\n"
					}
					desc += s
				}
			}
		}
		if err := put([]any{c.Name, c.Points, kind, nil, nil, nil, desc}); err != nil {
			return err
		}
		for _, ch := range c.Checks {
			if err := put([]any{nil, nil, nil, ch.Name, string(ch.Kind), ch.Weight, checkParams(ch)}); err != nil {
				return err
			}
			for _, alt := range ch.Checks {
				if err := put([]any{nil, nil, nil, "  o bien: " + alt.Name, string(alt.Kind), nil, checkParams(alt)}); err != nil {
					return err
				}
			}
		}
	}
	if err := put([]any{"Total", r.Total}); err != nil {
		return err
	}
	for c, w := range map[string]float64{"A": 28, "B": 8, "C": 12, "D": 56, "E": 20, "F": 6, "G": 90} {
		if err := x.SetColWidth(sh, c, c, w); err != nil {
			return err
		}
	}
	if err := x.SetCellStyle(sh, "A3", "G3", st.header); err != nil {
		return err
	}
	return x.SetCellStyle(sh, "G4", cell(7, rn), st.wrap)
}

// checkParams describes a check's declared parameters in one line.
func checkParams(c checks.Check) string { return c.Describe() }

// writeNotes puts the teacher's cell notes back on the same student's row
// and the same column.
func writeNotes(x *excelize.File, r *checks.Rubric, rows []Row, kept []oldRow, old *oldBook) error {
	if len(old.notes) == 0 {
		return nil
	}
	header, err := x.GetRows(SheetNotas)
	if err != nil || len(header) == 0 {
		return err
	}
	colOf := map[string]int{}
	for i, h := range header[0] {
		colOf[h] = i + 1
	}
	rowOf := map[string]int{"": 1}
	for i, row := range rows {
		rowOf[row.Key()] = i + 2
	}
	for i, o := range kept {
		rowOf[o.key] = len(rows) + i + 2
	}
	for key, byHeader := range old.notes {
		rn, ok := rowOf[key]
		if !ok {
			continue
		}
		for h, notes := range byHeader {
			cn, ok := colOf[h]
			if !ok {
				continue
			}
			for _, n := range notes {
				n.Cell = cell(cn, rn)
				if err := x.AddComment(SheetNotas, n); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// writeAutoScores records, hidden, the automatic scores written in Notas.
func writeAutoScores(x *excelize.File, r *checks.Rubric, rows []Row) error {
	rn := 1
	for _, row := range rows {
		for _, c := range r.Criteria {
			if c.Manual {
				continue
			}
			var v any = ""
			if cr := findResult(row.Scorecard, c.ID); cr != nil && cr.Scored {
				v = cr.Score
			}
			vals := []any{row.Key(), c.ID, v}
			if err := x.SetSheetRow(SheetDeploylab, cell(1, rn), &vals); err != nil {
				return err
			}
			rn++
		}
	}
	return x.SetSheetVisible(SheetDeploylab, false)
}
