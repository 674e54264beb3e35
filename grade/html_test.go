package grade_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/grade"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/remote"
)

// TestClassReportWritten: --html writes the class report and --feedback a
// page per student beside the text; an unreachable host's cells say "could
// not check" (sin comprobar), never a fail.
func TestClassReportWritten(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	out, html, fb := filepath.Join(dir, "notas.xlsx"), filepath.Join(dir, "clase.html"), filepath.Join(dir, "informes")
	sum, _ := grade.Run(context.Background(), grade.Options{
		Rubric: defaultRubric(t), Out: out, HTML: html, FeedbackDir: fb, Version: "deploylab test",
		Targets: []grade.Target{{Host: remote.Host{Name: "alu01", Address: "127.0.0.1", Port: port, User: "nobody", KnownHostsFile: filepath.Join(dir, "kh")},
			Student: gradebook.Student{Name: "Ana <b>", Email: "ana@example.org", Host: "alu01"}}},
		Dial: func(ctx context.Context, h remote.Host) (grade.Runner, error) {
			return remote.Dial(ctx, h, remote.WithSSHConfig(""), remote.WithAgent(""))
		},
	})
	if sum == nil {
		t.Fatal("no summary")
	}
	page, err := os.ReadFile(html)
	if err != nil {
		t.Fatalf("no class report: %v (written: %q)", err, sum.Written)
	}
	for _, want := range []string{"Ana &lt;b&gt;", `data-state="error"`, "No se pudo acceder a la máquina", "deploylab test"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("class report lacks %q", want)
		}
	}
	if strings.Contains(string(page), `data-state="fail"`) {
		t.Errorf("an unreachable host's criteria are shown as failed")
	}
	one, err := os.ReadFile(filepath.Join(fb, "alu01.html"))
	if err != nil || !strings.Contains(string(one), "Ana &lt;b&gt;") {
		t.Errorf("student page: %v", err)
	}
	if _, err := os.Stat(filepath.Join(fb, "alu01.txt")); err != nil {
		t.Errorf("the feedback text is gone: %v", err)
	}
	found := false
	for _, w := range sum.Written {
		found = found || w == html
	}
	if !found {
		t.Errorf("written = %q, want the class report listed", sum.Written)
	}
}
