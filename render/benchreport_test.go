package render

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
)

// TestBenchReportGolden: the report page and each chart's SVG match their
// golden files.
func TestBenchReportGolden(t *testing.T) {
	rep := BuildBench(compareRuns(), BenchOptions{Version: "deploylab test"})
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "bench-report.golden.html"), b.Bytes())
	names := map[string]bool{}
	for _, c := range rep.Charts {
		if names[c.Name] {
			t.Errorf("two charts named %s", c.Name)
		}
		names[c.Name] = true
		golden.Check(t, filepath.Join("testdata", "svg", c.Name+".golden.svg"), []byte(c.SVG))
	}
	want := []string{"alu01-api-n1000-rps", "alu01-api-n1000-latency", "alu01-api-n1000-timeline", "alu01-api-n1000-workers", "alu01-api-n1000-cpu",
		"alu01-root-n2000-rps", "alu01-blocking-blocking"}
	for _, n := range want {
		if !names[n] {
			t.Errorf("no chart %s (have %v)", n, names)
		}
	}
}

// TestChartsAreXML: every chart is well-formed XML (it is saved as an .svg
// file), with the host's text escaped.
func TestChartsAreXML(t *testing.T) {
	rep := BuildBench(compareRuns(), BenchOptions{})
	dir := t.TempDir()
	paths, err := WriteCharts(dir, rep.Charts)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(rep.Charts) {
		t.Fatalf("%d files for %d charts", len(paths), len(rep.Charts))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(bytes.NewReader(b))
		for {
			_, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
	}
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page.String(), "<script>alert") || !strings.Contains(page.String(), "&lt;script&gt;alert") {
		t.Errorf("the student's name is not escaped")
	}
	if strings.Contains(page.String(), "<script") {
		t.Errorf("a report that is not live has a script")
	}
	for _, bad := range []string{"http://", "https://", "@import", "url("} {
		if i := strings.Index(strings.ReplaceAll(page.String(), `xmlns="http://www.w3.org/2000/svg"`, ""), bad); i >= 0 {
			t.Errorf("the page refers to the network (%q)", bad)
		}
	}
}
