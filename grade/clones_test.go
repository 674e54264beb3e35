package grade

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/hostile"
)

// TestClonedVMs: two students' VMs that are one machine (two in-process
// hosts running their commands on this machine: the same /etc/machine-id,
// the same SSH host keys) are a "VM" pair in the Similitud sheet with that
// evidence, and both rows say so in Revisar; their documents share nothing.
func TestClonedVMs(t *testing.T) {
	if _, err := os.Stat("/etc/machine-id"); err != nil {
		t.Fatalf("this machine has no /etc/machine-id: %v", err)
	}
	keys, _ := filepath.Glob("/etc/ssh/ssh_host_*_key.pub")
	a, b := hostileTarget(t, hostile.Normal), hostileTarget(t, hostile.Normal)
	a.Student.Name, a.Student.Email, a.Student.Host = "Ana García", "ana@example.org", "vm-ana"
	b.Student.Name, b.Student.Email, b.Student.Host = "Luis Pérez", "luis@example.org", "vm-luis"
	subs := t.TempDir()
	for name, text := range map[string]string{
		"Ana García_101_assignsubmission_file_": "Informe de Ana. El clúster reparte las peticiones entre los workers de PM2 con round-robin.",
		"Luis Pérez_102_assignsubmission_file_": "Memoria de Luis: la prueba de carga con loadtest midió las peticiones por segundo de cada versión.",
	} {
		os.MkdirAll(filepath.Join(subs, name), 0o755)
		if err := os.WriteFile(filepath.Join(subs, name, "informe.txt"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	sum, err := Run(context.Background(), Options{Rubric: rubricForTest(t), Out: out, Targets: []Target{a, b}, Dial: hostileDial,
		HostTimeout: 90 * time.Second, Documents: &DocumentOptions{Submissions: subs, NoOCR: true}})
	if err != nil {
		t.Fatal(err)
	}
	var vm []gradebook.SimilarPair
	for _, p := range sum.Documents.Similar {
		if p.Kind == "VM" {
			vm = append(vm, p)
		}
	}
	if len(vm) != 1 || len(sum.Documents.Similar) != 1 {
		t.Fatalf("pairs = %+v, want one VM pair", sum.Documents.Similar)
	}
	want := []string{"VM clonada", "el mismo machine-id ("}
	if len(keys) > 0 {
		want = append(want, "la misma clave de host SSH ")
	} else if os.Getenv("CI") == "true" {
		t.Errorf("no SSH host keys in /etc/ssh on the CI machine (openssh-server is installed by scripts/install-deps.sh)")
	}
	for _, w := range want {
		if !strings.Contains(vm[0].Evidence, w) {
			t.Errorf("evidence %q lacks %q", vm[0].Evidence, w)
		}
	}
	mid, _ := os.ReadFile("/etc/machine-id")
	if id := strings.TrimSpace(string(mid)); id != "" && strings.Contains(vm[0].Evidence, id) {
		t.Errorf("the machine-id itself is in the evidence: %q", vm[0].Evidence)
	}

	x, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(gradebook.SheetSimilitud)
	if err != nil || len(rows) != 2 || rows[1][2] != "VM" || !strings.Contains(rows[1][4], "machine-id") {
		t.Fatalf("Similitud = %q (%v)", rows, err)
	}
	notas, _ := x.GetRows(gradebook.SheetNotas)
	rev := -1
	for i, h := range notas[0] {
		if h == "Revisar" {
			rev = i
		}
	}
	flagged := 0
	for _, r := range notas[1:] {
		if rev >= 0 && rev < len(r) && strings.Contains(r[rev], "similitud (VM)") {
			flagged++
		}
	}
	if flagged != 2 {
		t.Errorf("%d rows flagged for the cloned VMs, want 2 (column %d of %q)", flagged, rev, notas)
	}
}

// TestDocumentsOnlyCSV: --csv with --submissions and no inventory is refused
// before anything is read (Moodle's import needs emails or idnumbers, which
// the folders do not have), and nothing is written.
func TestDocumentsOnlyCSV(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "entregas", "Ana García_101_assignsubmission_file_"), 0o755)
	os.WriteFile(filepath.Join(dir, "entregas", "Ana García_101_assignsubmission_file_", "informe.md"), []byte("# Informe"), 0o644)
	out, csv := filepath.Join(dir, "notas.xlsx"), filepath.Join(dir, "notas.csv")
	_, err := Run(context.Background(), Options{Rubric: rubricForTest(t), Out: out, CSV: csv,
		Documents: &DocumentOptions{Submissions: filepath.Join(dir, "entregas"), NoOCR: true}})
	if err == nil || !strings.Contains(err.Error(), "--csv needs every student's email or idnumber") {
		t.Fatalf("err = %v", err)
	}
	for _, p := range []string{out, csv} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s written", p)
		}
	}
}
