package gradebook

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"github.com/deploylab/deploylab/internal/need"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/golden"
	"github.com/google/go-cmp/cmp"
	"github.com/xuri/excelize/v2"
)

var students = []struct {
	Student
	scenario string
}{
	{Student{Name: "Ana García", ID: "1001", Email: "ana@iesdaw.es", Host: "vm01"}, "complete"},
	{Student{Name: "Bea López", ID: "1002", Email: "bea@iesdaw.es", Host: "vm02"}, "no-cluster"},
	{Student{Name: "Carlos Ruiz", ID: "1003", Email: "carlos@iesdaw.es", Host: "vm03"}, "pm2-fork"},
	{Student{Name: "Dani Sanz", ID: "1004", Email: "dani@iesdaw.es", Host: "vm04"}, "app-stopped"},
	{Student{Name: "Eva Martín", ID: "1005", Email: "eva@iesdaw.es", Host: "vm05"}, "unreachable"},
	{Student{Name: "deploylab", ID: "1006", Email: "lab@iesdaw.es", Host: "lab1"}, "deploylab"},
}

func rubric(t *testing.T) *checks.Rubric {
	t.Helper()
	r, err := checks.LoadRubric("../rubric.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// gradeRows grades the scenario facts shared with package checks' tests.
func gradeRows(t *testing.T, r *checks.Rubric) []Row {
	t.Helper()
	var rows []Row
	for _, s := range students {
		data, err := os.ReadFile(filepath.Join("..", "checks", "testdata", "facts", s.scenario+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var in struct {
			Facts checks.HostFacts
			Bench []checks.BenchSummary
		}
		if err := json.Unmarshal(data, &in); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, Row{Student: s.Student, Scorecard: checks.Score(r, in.Facts, in.Bench)})
	}
	return rows
}

// sheetText reads a sheet back as text, the way a person sees it.
func sheetText(t *testing.T, path, sheet string) [][]string {
	t.Helper()
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(sheet)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestWriteXLSX(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	path := filepath.Join(t.TempDir(), "notas.xlsx")
	if err := CheckWritable(path); err != nil {
		t.Fatal(err)
	}
	if err := WriteXLSX(path, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if got, want := x.GetSheetList(), []string{SheetNotas, SheetDetalle, SheetBench, SheetRubrica, SheetDeploylab}; !cmp.Equal(got, want) {
		t.Errorf("sheets = %v, want %v", got, want)
	}
	if v, _ := x.GetSheetVisible(SheetDeploylab); v {
		t.Errorf("sheet %s is visible", SheetDeploylab)
	}
	notas := sheetText(t, path, SheetNotas)
	var b strings.Builder
	for _, row := range notas {
		b.WriteString(strings.Join(row, " | ") + "\n")
	}
	golden.Check(t, "testdata/notas.golden", []byte(b.String()))
	// The totals are formulas with their cached value.
	for i := range rows {
		c := fmt.Sprintf("L%d", i+2)
		f, _ := x.GetCellFormula(SheetNotas, c)
		if f != fmt.Sprintf(`IF(COUNT(F%[1]d:K%[1]d)=0,"",SUM(F%[1]d:K%[1]d))`, i+2) {
			t.Errorf("%s formula = %q", c, f)
		}
	}
	if v, _ := x.GetCellValue(SheetNotas, "L2"); v != "8.00" {
		t.Errorf("Ana's total = %q, want 8.00", v)
	}
	// Manual criteria: validation 0..points.
	dvs, err := x.GetDataValidations(SheetNotas)
	if err != nil || len(dvs) != 2 {
		t.Fatalf("data validations = %v, %v", dvs, err)
	}
	if dvs[0].Sqref != "J2:J7" || dvs[0].Formula1 != "0" || dvs[0].Formula2 != "1" {
		t.Errorf("validation = %+v", dvs[0])
	}
	panes, _ := x.GetPanes(SheetNotas)
	if !panes.Freeze || panes.YSplit != 1 {
		t.Errorf("header not frozen: %+v", panes)
	}
	cf, _ := x.GetConditionalFormats(SheetNotas)
	if len(cf) < 2 {
		t.Errorf("conditional formats = %v", cf)
	}
	calc, _ := x.GetCalcProps()
	if calc.FullCalcOnLoad == nil || !*calc.FullCalcOnLoad {
		t.Errorf("full calculation on load not set")
	}
	// Detalle: one line per check per student, with evidence.
	det := sheetText(t, path, SheetDetalle)
	if len(det) != 1+6*16 {
		t.Errorf("Detalle has %d rows, want %d", len(det), 1+6*16)
	}
	if got := det[2]; got[0] != "Ana García" || got[6] != "superada" || !strings.Contains(got[7], "Hello World!") {
		t.Errorf("Detalle row = %q", got)
	}
	// Bench: figures and a chart.
	bench := sheetText(t, path, SheetBench)
	if bench[1][10] != "Ana García" || bench[1][11] != "951" || bench[1][12] != "1474" || bench[1][13] != "1.55" {
		t.Errorf("bench summary = %q", bench[1])
	}
	zipHasChart(t, path)
	rub := sheetText(t, path, SheetRubrica)
	if !strings.Contains(fmt.Sprint(rub), "¿Por qué?") {
		t.Errorf("Rúbrica sheet lacks the question")
	}
}

func zipHasChart(t *testing.T, path string) {
	t.Helper()
	out, err := exec.Command("unzip", "-l", path).Output()
	if err != nil {
		t.Fatalf("unzip -l: %v (apt-get install unzip)", err)
	}
	if !bytes.Contains(out, []byte("xl/charts/chart1.xml")) {
		t.Errorf("no chart in the workbook:\n%s", out)
	}
}

// TestRegradeKeepsManual: marks and comments typed by the teacher survive a
// re-grade, even when the rows come in another order.
func TestRegradeKeepsManual(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	path := filepath.Join(t.TempDir(), "notas.xlsx")
	if err := WriteXLSX(path, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	// The teacher types marks (row 3 is Bea, row 2 Ana).
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
	must(x.SetCellValue(SheetNotas, "J2", 0.75))
	must(x.SetCellValue(SheetNotas, "K2", 1))
	must(x.SetCellStr(SheetNotas, "N2", "Buena explicación del cluster"))
	must(x.SetCellStr(SheetNotas, "J3", "0,5")) // typed as text with a decimal comma
	must(x.Save())
	x.Close()

	reversed := []Row{rows[1], rows[0]}
	if err := WriteXLSX(path, r, reversed, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	notas := sheetText(t, path, SheetNotas)
	if got := notas[2]; got[0] != "Ana García" || got[9] != "0.75" || got[10] != "1.00" || got[11] != "9.75" || got[13] != "Buena explicación del cluster" {
		t.Errorf("Ana after re-grade = %q", got)
	}
	if got := notas[1]; got[0] != "Bea López" || got[9] != "0.50" || got[11] != "3.25" {
		t.Errorf("Bea after re-grade = %q", got)
	}
	m, err := ReadManual(path, r)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Manual{Marks: map[string]float64{"preguntas": 0.75, "formato": 1}, Comment: "Buena explicación del cluster"}, m["ana@iesdaw.es"]); d != "" {
		t.Error(d)
	}
}

func TestOldFileProblems(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	dir := t.TempDir()

	corrupt := filepath.Join(dir, "corrupt.xlsx")
	junk := []byte("this is not a spreadsheet")
	if err := os.WriteFile(corrupt, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, fn := range map[string]func() error{
		"CheckWritable": func() error { return CheckWritable(corrupt) },
		"WriteXLSX":     func() error { return WriteXLSX(corrupt, r, rows, XLSXOptions{}) },
	} {
		err := fn()
		if err == nil || fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "read the previous") {
			t.Errorf("%s on a corrupt file: %v", name, err)
		}
	}
	if got, _ := os.ReadFile(corrupt); !bytes.Equal(got, junk) {
		t.Errorf("corrupt old file was modified")
	}

	locked := filepath.Join(dir, "locked.xlsx")
	if err := WriteXLSX(locked, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(locked)
	if err := os.WriteFile(filepath.Join(dir, ".~lock.locked.xlsx#"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, err := range []error{CheckWritable(locked), WriteXLSX(locked, r, rows, XLSXOptions{})} {
		if err == nil || fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "open in a spreadsheet application") || fail.HintOf(err) == "" {
			t.Errorf("locked file: %v", err)
		}
	}
	if after, _ := os.ReadFile(locked); !bytes.Equal(before, after) {
		t.Errorf("locked file was modified")
	}

	other := filepath.Join(dir, "other.xlsx")
	f := excelize.NewFile()
	if err := f.SaveAs(other); err != nil {
		t.Fatal(err)
	}
	if err := CheckWritable(other); err == nil || !strings.Contains(err.Error(), "not a deploylab grade sheet") {
		t.Errorf("foreign workbook: %v", err)
	}

	for _, p := range []string{filepath.Join(dir, "nope", "notas.xlsx"), filepath.Join("/proc", "notas.xlsx")} {
		if err := CheckWritable(p); err == nil || fail.KindOf(err) != fail.Usage {
			t.Errorf("CheckWritable(%s) = %v", p, err)
		}
	}
	// No temp files left behind.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") || strings.HasPrefix(e.Name(), ".deploylab-write-test") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestWriteCSV(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	manual := map[string]Manual{"ana@iesdaw.es": {Marks: map[string]float64{"preguntas": 1, "formato": 0.5}}}
	tests := []struct {
		name string
		o    CSVOptions
	}{
		{"email-criteria", CSVOptions{}},
		{"idnumber-total", CSVOptions{ID: ByIDNumber, TotalOnly: true, TotalName: "Práctica Node"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteCSV(&b, r, rows, manual, tc.o); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "moodle-"+tc.name+".csv"), []byte(b.String()))
			recs, err := csv.NewReader(&b).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range recs {
				if len(rec) != len(recs[0]) {
					t.Errorf("ragged record %q", rec)
				}
			}
		})
	}
	noEmail := []Row{{Student: Student{Name: "Sin Correo", Host: "vm9"}}}
	if err := WriteCSV(&bytes.Buffer{}, r, noEmail, nil, CSVOptions{}); err == nil || fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "Sin Correo") {
		t.Errorf("missing email: %v", err)
	}
}

func TestFeedback(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	manual := map[string]Manual{"ana@iesdaw.es": {Marks: map[string]float64{"preguntas": 1, "formato": 0.5}, Comment: "Muy bien."}}
	for i, row := range rows {
		golden.Check(t, filepath.Join("testdata", "feedback", students[i].scenario+".txt"), []byte(Feedback(r, row, manual[row.Key()])))
	}
}

// TestLibreOfficeSeesTotals converts notas.xlsx to CSV with a real
// spreadsheet application. With LibreOffice's defaults it shows the cached
// totals deploylab wrote; told to recalculate on load, it computes the same
// totals from the formulas, including a manual mark typed after the file was
// written.
func TestLibreOfficeSeesTotals(t *testing.T) {
	soffice := need.Tool(t, "soffice", "apt-get install -y libreoffice-calc-nogui")
	r := rubric(t)
	rows := gradeRows(t, r)
	dir := t.TempDir()
	path := filepath.Join(dir, "notas.xlsx")
	if err := WriteXLSX(path, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	cached := map[string]string{"Ana García": "8", "Bea López": "2.75", "Carlos Ruiz": "3.6", "Dani Sanz": "1.5", "Eva Martín": "", "deploylab": "8"}
	if d := cmp.Diff(cached, libreOfficeTotals(t, soffice, path, false)); d != "" {
		t.Errorf("cached totals LibreOffice shows (-want +got):\n%s", d)
	}

	// A manual mark typed afterwards, without touching the cached total.
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := x.SetCellValue(SheetNotas, "J3", 1); err != nil {
		t.Fatal(err)
	}
	if err := x.Save(); err != nil {
		t.Fatal(err)
	}
	x.Close()
	recalculated := map[string]string{"Ana García": "8", "Bea López": "3.75", "Carlos Ruiz": "3.6", "Dani Sanz": "1.5", "Eva Martín": "", "deploylab": "8"}
	if d := cmp.Diff(recalculated, libreOfficeTotals(t, soffice, path, true)); d != "" {
		t.Errorf("recalculated totals (-want +got):\n%s", d)
	}
}

// libreOfficeTotals converts the Notas sheet to CSV with soffice and returns
// each student's Total as LibreOffice shows it. A private profile keeps
// parallel runs apart; recalc sets "recalculate OOXML files on load: always".
func libreOfficeTotals(t *testing.T, soffice, path string, recalc bool) map[string]string {
	t.Helper()
	dir := t.TempDir()
	profile := filepath.Join(dir, "profile")
	if recalc {
		xcu := `<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
`
		if err := os.MkdirAll(filepath.Join(profile, "user"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(profile, "user", "registrymodifications.xcu"), []byte(xcu), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out := filepath.Join(dir, "out")
	cmd := exec.CommandContext(ctx, soffice, "--headless", "--norestore", "--nologo",
		"-env:UserInstallation=file://"+profile, "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1", "--outdir", out, path)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	start := time.Now()
	msg, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("soffice: %v\n%s", err, msg)
	}
	t.Logf("soffice converted in %v", time.Since(start).Round(time.Millisecond))
	f, err := os.Open(filepath.Join(out, strings.TrimSuffix(filepath.Base(path), ".xlsx")+".csv"))
	if err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || recs[0][11] != "Total" {
		t.Fatalf("unexpected sheet: %q", recs)
	}
	got := map[string]string{}
	for _, rec := range recs[1:] {
		v := strings.ReplaceAll(rec[11], ",", ".")
		if strings.Contains(v, ".") {
			v = strings.TrimRight(strings.TrimRight(v, "0"), ".")
		}
		got[rec[0]] = v
	}
	return got
}
