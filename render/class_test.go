package render

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/golden"
)

// classRows grades the hosts of checks' scenario facts with the shipped
// rubric, as deploylab grade does; one host's evidence carries markup a
// hostile VM could print.
func classRows(t *testing.T) (*checks.Rubric, []gradebook.Row, map[string]gradebook.Manual) {
	t.Helper()
	r, err := checks.LoadRubric("../rubric.yaml")
	if err != nil {
		t.Fatal(err)
	}
	students := []struct {
		gradebook.Student
		scenario string
	}{
		{gradebook.Student{Name: "Ana García", ID: "1001", Email: "ana@iesdaw.es", Host: "vm01"}, "complete"},
		{gradebook.Student{Name: "Bea López", ID: "1002", Email: "bea@iesdaw.es", Host: "vm02"}, "no-cluster"},
		{gradebook.Student{Name: "Carlos Ruiz", ID: "1003", Email: "carlos@iesdaw.es", Host: "vm03"}, "pm2-fork"},
		{gradebook.Student{Name: "Dani Sanz", ID: "1004", Email: "dani@iesdaw.es", Host: "vm04"}, "app-stopped"},
		{gradebook.Student{Name: "Eva Martín", ID: "1005", Email: "eva@iesdaw.es", Host: "vm05"}, "unreachable"},
	}
	var rows []gradebook.Row
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
		rows = append(rows, gradebook.Row{Student: s.Student, Scorecard: checks.Score(r, in.Facts, in.Bench)})
	}
	// What a hostile VM could answer ends up in the evidence.
	sc := &rows[1].Scorecard
	for i := range sc.Criteria {
		for j := range sc.Criteria[i].Checks {
			if sc.Criteria[i].Checks[j].Outcome == checks.Fail {
				sc.Criteria[i].Checks[j].Evidence = `<img src=x onerror="document.title='pwned'"><script>document.title='pwned'</script>`
			}
		}
	}
	manual := map[string]gradebook.Manual{}
	for _, c := range r.Criteria {
		if c.Manual {
			manual[rows[0].Key()] = gradebook.Manual{Marks: map[string]float64{c.ID: c.Points}, Comment: "Bien explicado <b>sin</b> HTML"}
			break
		}
	}
	return r, rows, manual
}

func TestClassReportGolden(t *testing.T) {
	r, rows, manual := classRows(t)
	rep := BuildClass(r, rows, manual, ClassOptions{Version: "deploylab test"})
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "class-report.golden.html"), b.Bytes())
	for _, c := range rep.Charts {
		golden.Check(t, filepath.Join("testdata", "svg", c.Name+".golden.svg"), []byte(c.SVG))
	}
	page := b.String()
	if strings.Contains(page, "<img src=x") || strings.Contains(page, "<script>document") || strings.Contains(page, "<b>sin</b>") {
		t.Errorf("text from a VM or the sheet is not escaped")
	}
	// Every state shows up in this class.
	for _, st := range []string{CellPass, CellPartial, CellFail, CellError, CellManual, CellPending} {
		if !strings.Contains(page, `data-state="`+st+`"`) {
			t.Errorf("no %s cell", st)
		}
	}
	var one bytes.Buffer
	if err := rep.WriteStudentHTML(&one, 1); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(one.String(), "Bea López") || strings.Contains(one.String(), "Ana García") || !strings.Contains(one.String(), "cómo arreglarlo") {
		t.Errorf("student page:\n%s", one.String())
	}
}
