package gradebook

import (
	"archive/zip"
	"encoding/xml"
	"io"
	"path/filepath"
	"strings"
	"testing"
)

// chartAxes is the part of a DrawingML chart the test reads back: each
// value axis's scaling.
type chartAxes struct {
	ValAx []struct {
		Scaling struct {
			Min *struct {
				Val string `xml:"val,attr"`
			} `xml:"min"`
		} `xml:"scaling"`
	} `xml:"chart>plotArea>valAx"`
}

// TestBenchChartFromZero: the Bench sheet's chart has its value axis from 0
// (read back from the chart's XML in the saved workbook), so a ×1.03
// difference does not look like a ×3 one.
func TestBenchChartFromZero(t *testing.T) {
	r := rubric(t)
	rows := gradeRows(t, r)
	path := filepath.Join(t.TempDir(), "notas.xlsx")
	if err := WriteXLSX(path, r, rows, XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var charts int
	for _, f := range zr.File {
		if !strings.HasPrefix(f.Name, "xl/charts/chart") || !strings.HasSuffix(f.Name, ".xml") {
			continue
		}
		charts++
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var c chartAxes
		if err := xml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if len(c.ValAx) == 0 {
			t.Fatalf("%s has no value axis:\n%s", f.Name, b)
		}
		for i, ax := range c.ValAx {
			if ax.Scaling.Min == nil || ax.Scaling.Min.Val != "0" {
				t.Errorf("%s: value axis %d: minimum = %+v, want 0", f.Name, i, ax.Scaling.Min)
			}
		}
	}
	if charts != 1 {
		t.Errorf("%d charts in the workbook, want 1", charts)
	}
}
