package grade_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab/documents"
	"github.com/deploylab/deploylab/documents/documentstest"
	"github.com/deploylab/deploylab/grade"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/remote"
)

var (
	classOnce sync.Once
	classFx   *documentstest.Fixture
	classErr  error
)

// syntheticClass builds the class once per test binary (LibreOffice
// converts two of its documents to PDF).
func syntheticClass(t *testing.T) *documentstest.Fixture {
	t.Helper()
	for _, tool := range []string{"soffice", "pdftotext", "pdfimages", "tesseract"} {
		if !documents.HaveTool(tool) {
			t.Fatalf("%s is not installed: run scripts/install-deps.sh", tool)
		}
	}
	classOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploylab-class-*")
		if err != nil {
			classErr = err
			return
		}
		classFx, classErr = documentstest.Build(context.Background(), dir)
	})
	if classErr != nil {
		t.Fatal(classErr)
	}
	return classFx
}

// sheet reads a sheet as rows of cells keyed by header.
func sheet(t *testing.T, x *excelize.File, name string) []map[string]string {
	t.Helper()
	rows, err := x.GetRows(name)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			if i < len(r) {
				m[h] = r[i]
			}
		}
		out = append(out, m)
	}
	return out
}

func byName(t *testing.T, rows []map[string]string, name string) map[string]string {
	t.Helper()
	for _, r := range rows {
		if r["Alumno"] == name {
			return r
		}
	}
	t.Fatalf("no row for %s", name)
	return nil
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return v
}

const (
	colE = "Respuestas a las preguntas (1)"
	colF = "Formato del documento (1)"
	colA = "Despliegue sin cluster (2)"
	colC = "Pruebas de carga (2)"
	colD = "Gestor de procesos (PM2) (2)"
)

// TestDocumentsOnly: --submissions without hosts grades a row per
// submission: suggested marks with their evidence (a quoted passage with its
// page, the OCR'd text of a screenshot), a copied pair found by text and by
// a resized screenshot, a wrong extension and an unreadable format each one
// line, and the sheet re-opened.
func TestDocumentsOnly(t *testing.T) {
	fx := syntheticClass(t)
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	var warn strings.Builder
	sum, err := grade.Run(context.Background(), grade.Options{
		Rubric: defaultRubric(t), Out: out, Warn: &warn,
		Documents: &grade.DocumentOptions{Submissions: fx.Zip, Template: fx.Template},
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, warn.String())
	}
	t.Logf("terminal:\n%s", warn.String())
	if sum.Documents == nil || sum.Documents.Submissions != 6 {
		t.Fatalf("documents report = %+v", sum.Documents)
	}
	x, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	notas := sheet(t, x, gradebook.SheetNotas)
	if len(notas) != 6 {
		t.Errorf("%d rows, want one per submission (6)", len(notas))
	}
	// Entregas: every folder, each the row of its own student.
	ent := sheet(t, x, gradebook.SheetEntregas)
	if len(ent) != 6 {
		t.Errorf("Entregas has %d rows, want 6", len(ent))
	}
	for _, r := range ent {
		if r["Alumno"] == "" || r["Alumno"] == "SIN EMPAREJAR" || r["Emparejado por"] != "carpeta" {
			t.Errorf("Entregas row %v", r)
		}
	}
	ana := byName(t, notas, documentstest.Ana)
	if ana["Estado"] != "solo documento" {
		t.Errorf("Ana's Estado = %q", ana["Estado"])
	}
	// Documents only: A-D are their document half (1 of 2 each).
	for col, want := range map[string]float64{colA: 1, colC: 1, colD: 1, colE: 1, colF: 1} {
		if got := num(t, ana[col]); got != want {
			t.Errorf("Ana %s = %v, want %v", col, got, want)
		}
	}
	luis := byName(t, notas, documentstest.Luis)
	if e := num(t, luis[colE]); e < 0.5 || e > 0.6 {
		t.Errorf("Luis E = %v, want 4/7 (the copied answer, no PM2 answers)", e)
	}
	for _, who := range []string{documentstest.Ana, documentstest.Luis} {
		if r := byName(t, notas, who)["Revisar"]; !strings.Contains(r, "similitud (texto)") || !strings.Contains(r, "similitud (captura)") {
			t.Errorf("%s Revisar = %q", who, r)
		}
	}
	if r := byName(t, notas, documentstest.Sofia)["Revisar"]; !strings.Contains(r, "entrega ilegible") || !strings.Contains(r, ".doc antiguo") {
		t.Errorf("Sofía Revisar = %q", r)
	}
	if r := byName(t, notas, documentstest.Pedro)["Revisar"]; !strings.Contains(r, "la extensión .pdf no corresponde al contenido (es DOCX)") {
		t.Errorf("Pedro Revisar = %q", r)
	}
	// The suggested cells carry a note.
	comments, err := x.GetComments(gradebook.SheetNotas)
	if err != nil {
		t.Fatal(err)
	}
	if len(comments) < 6 || !strings.Contains(comments[0].Paragraph[0].Text, "sugerida") {
		t.Errorf("%d notes in Notas; first: %+v", len(comments), comments)
	}

	// Evidence in Detalle: a passage with its page, a screenshot's OCR.
	det := sheet(t, x, gradebook.SheetDetalle)
	found := map[string]string{}
	for _, r := range det {
		if r["Alumno"] == documentstest.Ana {
			found[r["Criterio"]+"/"+r["Comprobación"]] = r["Evidencia"]
		}
	}
	ev := found["Despliegue sin cluster/Captura del navegador o curl con la respuesta de la app"]
	if !strings.Contains(ev, "practica_ana.pdf p. ") || !strings.Contains(ev, "captura") || !strings.Contains(strings.ToLower(ev), "final count is 1275") {
		t.Errorf("OCR evidence = %q", ev)
	}
	ev = found["Respuestas a las preguntas/Las peticiones ligeras necesitan poca CPU: el cluster (proceso maestro, IPC, reparto round-robin) cuesta más de lo que aporta"]
	if !strings.Contains(ev, "practica_ana.pdf p. ") || !strings.Contains(ev, "muy ligeras y necesitan poca CPU") {
		t.Errorf("answer evidence = %q", ev)
	}

	// Similitud: Ana and Luis, by text and by the resized screenshot.
	sim := sheet(t, x, gradebook.SheetSimilitud)
	var kinds []string
	for _, r := range sim {
		if strings.Contains(r["Alumno A"]+r["Alumno B"], documentstest.Ana) && strings.Contains(r["Alumno A"]+r["Alumno B"], documentstest.Luis) {
			kinds = append(kinds, r["Tipo"])
		} else {
			t.Errorf("unexpected pair %v", r)
		}
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"captura", "texto"}) {
		t.Errorf("Ana-Luis pairs = %v, want captura and texto", kinds)
	}
	for _, r := range sim {
		if r["Tipo"] == "texto" && !strings.Contains(r["Evidencia"], "muy ligeras y necesitan poca cpu") {
			t.Errorf("text evidence = %q", r["Evidencia"])
		}
	}
}

// TestDocumentsWithInventory: submissions matched to the inventory's
// students (accents, case and word order folded), a student without a
// submission ("sin entrega"), an unmatched folder listed; a mark the teacher
// types replaces the suggestion and survives a re-grade.
func TestDocumentsWithInventory(t *testing.T) {
	fx := syntheticClass(t)
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	var targets []grade.Target
	for i, s := range fx.Students {
		targets = append(targets, grade.Target{Host: remote.Host{Address: "192.0.2.1"},
			Student: gradebook.Student{Name: s.Name, Email: s.Email, Host: fmt.Sprintf("alu%02d", i+1)}})
	}
	opts := grade.Options{
		Rubric: defaultRubric(t), Targets: targets, Out: out,
		Dial: func(ctx context.Context, h remote.Host) (grade.Runner, error) {
			return nil, fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
		},
		Documents: &grade.DocumentOptions{Submissions: fx.Zip, Template: fx.Template},
	}
	run := func() []map[string]string {
		var warn strings.Builder
		opts.Warn = &warn
		sum, err := grade.Run(context.Background(), opts)
		if err == nil || !strings.Contains(err.Error(), "could not be graded") {
			t.Fatalf("err = %v (the hosts are unreachable)", err)
		}
		if d := sum.Documents; d == nil || d.Matched != 5 || !slices.Equal(d.Unmatched, []string{"Alumno Desconocido_199_assignsubmission_file_"}) ||
			!slices.Equal(d.Missing, []string{documentstest.Javier}) {
			t.Errorf("documents = %+v", d)
		}
		for _, w := range []string{"unmatched submission \"Alumno Desconocido", "Javier Sanz: sin entrega"} {
			if !strings.Contains(warn.String(), w) {
				t.Errorf("terminal lacks %q:\n%s", w, warn.String())
			}
		}
		x, err := excelize.OpenFile(out)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		ent := sheet(t, x, gradebook.SheetEntregas)
		matched := map[string]string{}
		for _, r := range ent {
			matched[r["Carpeta o fichero"]] = r["Alumno"] + " / " + r["Emparejado por"]
		}
		if matched["LÓPEZ marta_103_assignsubmission_file_"] != documentstest.Marta+" / nombre" ||
			matched["Alumno Desconocido_199_assignsubmission_file_"] != "SIN EMPAREJAR / " {
			t.Errorf("Entregas = %v", matched)
		}
		return sheet(t, x, gradebook.SheetNotas)
	}
	notas := run()
	if r := byName(t, notas, documentstest.Javier); !strings.Contains(r["Revisar"], "sin entrega") || num(t, r[colE]) != 0 {
		t.Errorf("Javier = %v", r)
	}
	if e := num(t, byName(t, notas, documentstest.Ana)[colE]); e != 1 {
		t.Errorf("Ana E = %v, want the suggestion 1", e)
	}

	// The teacher types 0.25 for Luis's answers; a re-grade keeps it, and
	// keeps suggesting for the others.
	x, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := x.GetRows(gradebook.SheetNotas)
	ce := slices.Index(rows[0], colE) + 1
	for i, r := range rows {
		if r[0] == documentstest.Luis {
			cell, _ := excelize.CoordinatesToCellName(ce, i+1)
			x.SetCellValue(gradebook.SheetNotas, cell, 0.25)
		}
	}
	if err := x.Save(); err != nil {
		t.Fatal(err)
	}
	x.Close()
	notas = run()
	if e := num(t, byName(t, notas, documentstest.Luis)[colE]); e != 0.25 {
		t.Errorf("Luis E after re-grade = %v, want the teacher's 0.25", e)
	}
	if e := num(t, byName(t, notas, documentstest.Ana)[colE]); e != 1 {
		t.Errorf("Ana E after re-grade = %v, want the suggestion 1", e)
	}
}
