package gradebook

import (
	"errors"
	"fmt"
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

// ReadManual reads the manual marks and comments of a previous notas.xlsx,
// by student key. A missing file gives an empty map.
func ReadManual(path string, r *checks.Rubric) (map[string]Manual, error) {
	out := map[string]Manual{}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err := checkLock(path); err != nil {
		return nil, err
	}
	x, err := openOld(path)
	if err != nil {
		return nil, err
	}
	defer x.Close()
	rows, err := x.GetRows(SheetNotas)
	if err != nil {
		return nil, fail.New(fail.Usage, "move the old file away or choose another --out", fmt.Errorf("read the previous %s: %w", path, err))
	}
	if len(rows) == 0 {
		return out, nil
	}
	header := rows[0]
	idx := func(name string) int { return slices.Index(header, name) }
	manualCol := map[string]int{}
	for _, c := range r.Criteria {
		if !c.Manual {
			continue
		}
		i := idx(CriterionHeader(c))
		if i < 0 {
			// The points may have changed: match the name alone.
			i = slices.IndexFunc(header, func(h string) bool { return strings.HasPrefix(h, c.Name+" (") })
		}
		if i >= 0 {
			manualCol[c.ID] = i
		}
	}
	iCom := idx(colComentarios)
	get := func(row []string, i int) string {
		if i < 0 || i >= len(row) {
			return ""
		}
		return strings.TrimSpace(row[i])
	}
	for rn, row := range rows[1:] {
		s := Student{Name: get(row, idx(colAlumno)), ID: get(row, idx(colID)), Email: get(row, idx(colEmail)), Host: get(row, idx(colHost))}
		if s.Key() == "" {
			continue
		}
		m := Manual{Marks: map[string]float64{}, Comment: get(row, iCom)}
		for id, i := range manualCol {
			v := strings.ReplaceAll(get(row, i), ",", ".")
			if v == "" {
				continue
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, fail.Errorf(fail.Usage, "fix the mark in the sheet or clear it",
					"%s: sheet %s, cell %s: %q is not a mark", path, SheetNotas, cell(i+1, rn+2), v)
			}
			m.Marks[id] = f
		}
		if len(m.Marks) > 0 || m.Comment != "" {
			out[s.Key()] = m
		}
	}
	return out, nil
}

// XLSXOptions tunes WriteXLSX.
type XLSXOptions struct {
	// BenchRoute is the route charted single vs cluster (default: the
	// rubric's first bench check's route, else /api/500000).
	BenchRoute string
}

// WriteXLSX writes notas.xlsx at path atomically. When path exists, the
// manual marks and comments typed there are read first and kept; a file that
// cannot be read is an error and stays untouched.
func WriteXLSX(path string, r *checks.Rubric, rows []Row, opts XLSXOptions) error {
	manual, err := ReadManual(path, r)
	if err != nil {
		return err
	}
	x, err := buildXLSX(r, safeRows(rows), manual, opts)
	if err != nil {
		return fmt.Errorf("build %s: %w", path, err)
	}
	defer x.Close()
	return writeAtomic(path, func(f *os.File) error {
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
	pass, failS, errS, skip, review    int
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
	s.pass = mkc("C6EFCE")
	s.failS = mkc("FFC7CE")
	s.errS = mkc("FFEB9C")
	s.skip = mkc("E7E6E6")
	s.review = mkc("FFEB9C")
	return s, err
}

func buildXLSX(r *checks.Rubric, rows []Row, manual map[string]Manual, opts XLSXOptions) (*excelize.File, error) {
	x := excelize.NewFile()
	if err := x.SetSheetName("Sheet1", SheetNotas); err != nil {
		return nil, err
	}
	for _, s := range []string{SheetDetalle, SheetBench, SheetRubrica} {
		if _, err := x.NewSheet(s); err != nil {
			return nil, err
		}
	}
	st, err := newStyles(x)
	if err != nil {
		return nil, err
	}
	if err := writeNotas(x, st, r, rows, manual); err != nil {
		return nil, fmt.Errorf("sheet %s: %w", SheetNotas, err)
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
func writeNotas(x *excelize.File, st styles, r *checks.Rubric, rows []Row, manual map[string]Manual) error {
	header := []string{colAlumno, colID, colEmail, colHost, colEstado}
	firstCrit := len(header) + 1
	for _, c := range r.Criteria {
		header = append(header, CriterionHeader(c))
	}
	lastCrit := len(header)
	header = append(header, colTotal, colRevisar, colComentarios)
	totalCol, reviewCol := lastCrit+1, lastCrit+2
	n := len(rows)
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
		Type: "cell", Criteria: "==", Value: `"sí"`, Format: &st.review,
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
		if !row.Scorecard.Reachable {
			estado = "inalcanzable: " + row.Scorecard.Reason
		}
		vals := []any{row.Name, row.ID, row.Email, row.Host, estado}
		total := 0.0
		for _, c := range r.Criteria {
			v, ok := criterionScore(c, findResult(row.Scorecard, c.ID), m)
			style := st.score
			if c.Manual {
				style = st.manual
			}
			if !ok {
				vals = append(vals, excelize.Cell{StyleID: style})
				continue
			}
			total += v
			vals = append(vals, excelize.Cell{StyleID: style, Value: v})
		}
		rn := i + 2
		formula := fmt.Sprintf("SUM(%s:%s)", cell(firstCrit, rn), cell(lastCrit, rn))
		review := ""
		if row.Scorecard.NeedsReview || !row.Scorecard.Reachable {
			review = "sí"
		}
		vals = append(vals, excelize.Cell{StyleID: st.total, Formula: formula, Value: round2(total)}, review, m.Comment)
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
			if c.Manual {
				continue
			}
			for _, ch := range c.Checks {
				name := ch.Name
				if name == "" {
					name = ch.ID
				}
				vals := []any{row.Name, row.Host, c.Name, name, string(ch.Kind), ch.Weight, outcomeLabel[ch.Outcome], ch.Evidence, ch.Reason}
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
	}{{outcomeLabel[checks.Pass], st.pass}, {outcomeLabel[checks.Fail], st.failS}, {outcomeLabel[checks.Error], st.errS}, {outcomeLabel[checks.Skip], st.skip}} {
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
