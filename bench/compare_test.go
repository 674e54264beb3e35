package bench

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
)

// compareRecords are four servers' runs on one host: Node's from FACTS.md,
// Go's faster, Node single blocked, the clusters not.
func compareRecords() []*Record {
	var out []*Record
	add := func(lang string, s synth) {
		r := s.record()
		port := map[string]int{"node single": 3100, "node cluster": 3101, "go single": 3000, "go cluster": 3001}[lang+" "+s.mode]
		r.Server.Port, r.Server.Stack = port, lang
		out = append(out, r)
	}
	add("node", synth{mode: ModeSingle, scenario: scAPI1000, rps: 951, meanMS: 98, clientS: 0.3, serverS: 0.95, machineS: 1.5})
	add("node", synth{mode: ModeCluster, scenario: scAPI1000, rps: 1001, meanMS: 92, clientS: 0.3, serverS: 1.0, machineS: 1.6, errors: 3})
	add("go", synth{mode: ModeSingle, scenario: scAPI1000, rps: 2990, meanMS: 31, clientS: 0.2, serverS: 0.31, machineS: 0.6})
	add("go", synth{mode: ModeCluster, scenario: scAPI1000, rps: 5200, meanMS: 18, clientS: 0.2, serverS: 0.33, machineS: 0.6})
	add("node", synth{mode: ModeSingle, scenario: scRoot, rps: 3039, meanMS: 32.9, clientS: 3.3, serverS: 0.8, machineS: 5.1})
	add("node", synth{mode: ModeCluster, scenario: scRoot, rps: 2575, meanMS: 38.8, clientS: 3.4, serverS: 3.8, machineS: 7.5})
	add("go", synth{mode: ModeSingle, scenario: scRoot, rps: 6100, meanMS: 16, clientS: 2.9, serverS: 0.4, machineS: 3.5})
	// Go cluster missing for / (e.g. interrupted): shown as not measured.
	for _, m := range []struct {
		lang, mode      string
		heavyMS, waitMS float64
		waits           []float64
	}{
		{"node", ModeSingle, 5210, 4650, []float64{4650, 4648, 4647, 4645}},
		// PM2's round-robin sent one light request to the busy worker.
		{"node", ModeCluster, 5170, 3200, []float64{3200, 4.2, 3.9, 4.0}},
		{"go", ModeSingle, 2400, 2150, nil},
		{"go", ModeCluster, 2380, 1.1, []float64{1.1, 0.9, 1.0, 1.0}},
	} {
		r := blockingRecord(m.mode, m.heavyMS, m.waitMS)
		if m.waits != nil {
			r = blockingEach(m.mode, m.heavyMS, 500, m.waits...)
		}
		r.Server.Port = map[string]int{"node single": 3100, "node cluster": 3101, "go single": 3000, "go cluster": 3001}[m.lang+" "+m.mode]
		r.Server.Stack = m.lang
		out = append(out, r)
	}
	return out
}

func TestComparisonGolden(t *testing.T) {
	tests := []struct {
		name   string
		stacks []Stack
		runs   []*Record
	}{
		{"compare.golden.txt", DefaultStacks(), compareRecords()},
		{"compare-node-only.golden.txt", DefaultStacks()[:2], compareRecords()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteComparison(&b, &Comparison{Stacks: tt.stacks, Records: tt.runs}); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.name), b.Bytes())
		})
	}
}

// TestComparisonOldRecords: records of a comparison stored before the
// stack field are matched to the stacks by port, as they were.
func TestComparisonOldRecords(t *testing.T) {
	runs := compareRecords()
	for _, r := range runs {
		r.Server.Stack = ""
	}
	var b bytes.Buffer
	if err := WriteComparison(&b, &Comparison{Stacks: DefaultStacks(), Records: runs}); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "compare.golden.txt"), b.Bytes())
}

// TestReportStacks: bench show of a comparison's batch names each server's
// stack, and compares each cluster with the single server of its stack.
func TestReportStacks(t *testing.T) {
	var b bytes.Buffer
	if err := WriteTable(&b, compareRecords()); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "report-stacks.golden.txt"), b.Bytes())
}

func TestShortPlan(t *testing.T) {
	p := ShortPlan()
	if len(p.Scenarios) != 3 || p.Scenarios[2].Kind != KindBlocking {
		t.Errorf("short plan scenarios: %+v", p.Scenarios)
	}
	total := 0
	for _, s := range p.Scenarios {
		total += s.Requests
	}
	if total > 5000 {
		t.Errorf("short plan sends %d requests per server: not short", total)
	}
}
