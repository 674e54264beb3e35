package bench

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiagnose(t *testing.T) {
	// Each case: the single and the cluster runs' figures, the causes
	// expected (nil: the cluster wins, no diagnosis).
	tests := []struct {
		name            string
		single, cluster synth
		want            []string
	}{
		{
			name:    "cluster wins",
			single:  synth{scenario: scAPI10000, rps: 1358, clientS: 2.4, serverS: 7.1, machineS: 14},
			cluster: synth{scenario: scAPI10000, rps: 1474, clientS: 2.5, serverS: 7.4, machineS: 13.3},
			want:    nil,
		},
		{
			name:    "equal rps is no loss",
			single:  synth{scenario: scAPI10000, rps: 1400, clientS: 2, serverS: 7, machineS: 9},
			cluster: synth{scenario: scAPI10000, rps: 1400, clientS: 2, serverS: 7, machineS: 9},
			want:    nil,
		},
		{
			name:    "the practice's / with loadtest: client CPU, saturated, connection cost, light route",
			single:  synth{scenario: scRoot, rps: 3039, clientS: 3.3, serverS: 0.8, machineS: 5.1},
			cluster: synth{scenario: scRoot, rps: 2592, clientS: 3.4, serverS: 3.8, machineS: 7.5},
			want:    []string{"client-cpu", "saturated", "connection-cost", "light-route"},
		},
		{
			name:    "client CPU alone",
			single:  synth{scenario: scAPI10000, rps: 1500, clientS: 6, serverS: 6.6, machineS: 12},
			cluster: synth{scenario: scAPI10000, rps: 1400, clientS: 6, serverS: 6.5, machineS: 12.5},
			want:    []string{"client-cpu"},
		},
		{
			name:    "connection cost alone, with the keep-alive wording absent",
			single:  synth{scenario: scAPI10000, rps: 1500, clientS: 0.5, serverS: 4, machineS: 5},
			cluster: synth{scenario: scAPI10000, rps: 1300, clientS: 0.5, serverS: 6, machineS: 7},
			want:    []string{"connection-cost"},
		},
		{
			name:    "short runs",
			single:  synth{scenario: scAPI1000, rps: 2000, durationS: 0.5, clientS: 0.1, serverS: 0.4, machineS: 0.5},
			cluster: synth{scenario: scAPI1000, rps: 1800, durationS: 0.55, clientS: 0.1, serverS: 0.45, machineS: 0.6},
			want:    []string{"short-run"},
		},
		{
			name:    "errors in the cluster run",
			single:  synth{scenario: scAPI10000, rps: 1500, clientS: 0.5, serverS: 6, machineS: 7},
			cluster: synth{scenario: scAPI10000, rps: 1200, errors: 40, clientS: 0.5, serverS: 6, machineS: 7},
			want:    []string{"errors"},
		},
		{
			name:    "within noise",
			single:  synth{scenario: scAPI10000, rps: 1500, clientS: 0.5, serverS: 6, machineS: 7},
			cluster: synth{scenario: scAPI10000, rps: 1480, clientS: 0.5, serverS: 6, machineS: 7},
			want:    []string{"noise"},
		},
		{
			name:    "server CPU unknown: no CPU-based cause, nothing stands out",
			single:  synth{scenario: scAPI10000, rps: 1500, clientS: 0.5, serverS: -1, machineS: 4},
			cluster: synth{scenario: scAPI10000, rps: 1200, clientS: 0.5, serverS: -1, machineS: 4},
			want:    []string{"unknown"},
		},
		{
			name:    "4 CPUs: the same client CPU is no longer a cause",
			single:  synth{scenario: scAPI10000, rps: 1500, clientS: 6, serverS: 6.6, machineS: 12, cpus: 4},
			cluster: synth{scenario: scAPI10000, rps: 1300, clientS: 6, serverS: 6.6, machineS: 14, cpus: 4},
			want:    []string{"unknown"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.single.mode, tt.cluster.mode = ModeSingle, ModeCluster
			causes := Diagnose(tt.single.record(), tt.cluster.record())
			var got []string
			for _, c := range causes {
				got = append(got, c.Code)
				if c.Text == "" || strings.Contains(c.Text, "%!") || strings.Contains(c.Text, "\n") {
					t.Errorf("cause %s: bad text %q", c.Code, c.Text)
				}
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("causes (-want +got):\n%s\n%v", d, causes)
			}
		})
	}
}

func TestDiagnoseFigures(t *testing.T) {
	causes := Diagnose(
		synth{mode: ModeSingle, scenario: scRoot, rps: 3039, clientS: 3.3, serverS: 0.8, machineS: 5.1}.record(),
		synth{mode: ModeCluster, scenario: scRoot, rps: 2592, clientS: 3.4, serverS: 3.8, machineS: 7.5}.record())
	i := slices.IndexFunc(causes, func(c Cause) bool { return c.Code == "connection-cost" })
	if i < 0 {
		t.Fatalf("no connection-cost cause in %v", causes)
	}
	for _, want := range []string{"380 µs", "80 µs", "without keep-alive (-k)"} {
		if !strings.Contains(causes[i].Text, want) {
			t.Errorf("connection cost text %q lacks %q", causes[i].Text, want)
		}
	}
	if Diagnose(nil, nil) != nil {
		t.Error("Diagnose(nil, nil) is not nil")
	}
}
