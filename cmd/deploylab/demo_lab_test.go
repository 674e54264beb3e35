package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
)

// TestDemoLab runs `deploylab demo` end to end on a lab host of its own (the
// short plan) and checks what it promises: both stacks deployed, the 4-way
// table complete, the spreadsheet written, the lab host stopped and nothing
// left behind; then `demo --help` names the short plan.
func TestDemoLab(t *testing.T) {
	t.Parallel() // its own lab host; no throughput assertion
	labtest.Skip(t)
	dir := t.TempDir()
	labDir := filepath.Join(dir, "lab")
	out := filepath.Join(dir, "notas.xlsx")
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := run([]string{"demo", "--lab-dir", labDir, "--results-dir", filepath.Join(dir, "results"), "--out", out}, strings.NewReader(""), &stdout, &stderr)
	t.Logf("demo took %s", time.Since(start).Round(time.Second))
	t.Log("stdout:\n" + stdout.String())
	if code != 0 {
		t.Fatalf("demo exit code %d; stderr:\n%s", code, stderr.String())
	}
	o := stdout.String()
	for _, want := range []string{
		"== 2/5", "== 3/5", "4/5 the 4-way comparison, SHORT plan", "== 5/5",
		"deploylab-node-cluster :3101 ok", "sumcluster :3001 ok",
		"speedup of Go over Node", "speedup of the cluster over the single server",
		"BLOCKING EXPERIMENT", "spreadsheet:    " + out, "lab host stopped",
	} {
		if !strings.Contains(o, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Every server measured in every load scenario and the blocking one.
	for _, label := range []string{"Node single", "Node cluster (PM2)", "Go single", "Go cluster"} {
		rows := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(label)+`\s+(\S+)`).FindAllStringSubmatch(o, -1)
		if len(rows) != 3 {
			t.Errorf("%s: %d table rows, want 3 (2 load scenarios and the blocking experiment)", label, len(rows))
		}
		for _, r := range rows {
			if r[1] == "-" {
				t.Errorf("%s: not measured in a scenario", label)
			}
		}
	}
	if m := regexp.MustCompile(`(?m)^lab1\s+(\S+)/(\S+)`).FindStringSubmatch(o); m == nil {
		t.Errorf("no grade line for lab1")
	} else {
		t.Logf("FIGURE demo grade (Go and Node on one host): %s of %s", m[1], m[2])
	}
	f, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatalf("notas.xlsx: %v", err)
	}
	f.Close()
	// The two HTML reports, next to the spreadsheet.
	for name, wants := range map[string][]string{
		"informe.html": {`data-chart="blocking"`, `data-chart="rps"`, "all 4 light requests waited for the heavy one"},
		"clase.html":   {`data-chart="criteria"`, "lab1"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
	// The lab is stopped and left nothing.
	id := regexp.MustCompile(`lab id ([0-9a-f]+)`).FindStringSubmatch(stderr.String())
	if id == nil {
		t.Fatalf("no lab id in stderr:\n%s", stderr.String())
	}
	if left := lab.Leftovers(id[1], labDir); len(left) > 0 {
		t.Errorf("demo left behind:\n%s", strings.Join(left, "\n"))
	}
	if _, err := os.Stat(filepath.Join(labDir, "lab.json")); err == nil {
		t.Errorf("lab.json still there after the demo")
	}
}
