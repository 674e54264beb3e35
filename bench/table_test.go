package bench

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
)

func TestReportGolden(t *testing.T) {
	two := practiceRecords()
	// A second host with the cluster winning everywhere and an
	// unbalanced cluster, and a host measured with loadtest on one server.
	bob := []*Record{
		synth{mode: ModeSingle, scenario: scAPI1000, rps: 951, meanMS: 98.1, clientS: 0.2, serverS: 0.9, machineS: 1.2, cpus: 4}.record(),
		synth{mode: ModeCluster, scenario: scAPI1000, rps: 2850, meanMS: 33, clientS: 0.2, serverS: 1.0, machineS: 1.4, cpus: 4, workers: []uint64{700, 100, 100, 100}}.record(),
	}
	for _, r := range bob {
		r.Host.Name, r.Host.Student, r.Host.Address = "alu02", "", "alu02"
	}
	lt := synth{mode: ModeSingle, scenario: scRoot, rps: 2575, meanMS: 38.8, clientS: 3.9, serverS: -1, machineS: 7, tool: "loadtest", errors: 12}.record()
	lt.Host.Name, lt.Host.Student = "alu03", "Chen Li"
	lt.Tool = ToolInfo{Name: "loadtest", Version: "8.2.1", Cores: 1}
	lt.CPU.ServerS = nil

	tests := []struct {
		name string
		runs []*Record
	}{
		{"report-practice.golden.txt", two},
		{"report-hosts.golden.txt", append(append(append([]*Record(nil), two[:2]...), bob...), lt)},
		{"report-blocking-only.golden.txt", two[4:]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteTable(&b, tt.runs); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tt.name), b.Bytes())
		})
	}
}

func TestBlocked(t *testing.T) {
	tests := []struct {
		heavy, wait float64
		want        bool
	}{
		{5210, 4650, true},
		{5170, 4.2, false},
		{5000, 150, false},   // under 200 ms: not blocked
		{600, 250, true},     // over a quarter of a short heavy request
		{20000, 1000, false}, // a second out of twenty: the probes were not queued behind it
	}
	for _, tt := range tests {
		if got := Blocked(blockingRecord(ModeSingle, tt.heavy, tt.wait)); got != tt.want {
			t.Errorf("Blocked(heavy %v ms, wait %v ms) = %v, want %v", tt.heavy, tt.wait, got, tt.want)
		}
	}
}
