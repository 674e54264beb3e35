package bench

import (
	"strings"
	"testing"
)

func TestReadBlocking(t *testing.T) {
	tests := []struct {
		name        string
		rec         *Record
		waited      int
		verdict     string
		why         string // substring; "" means none
		startsAfter float64
	}{
		{"single: all wait", blockingEach(ModeSingle, 5210, 500, 4650, 4648, 4647, 4645), 4,
			"blocked: all 4 light requests waited for the heavy one", "one request at a time", 500_000},
		{"round-robin: one of four", blockingEach(ModeCluster, 5170, 500, 3200, 4.2, 3.9, 4.0), 1,
			"1 of 4 waited", "round-robin", 500_000},
		{"round-robin: two of four", blockingEach(ModeCluster, 5170, 500, 3200, 4.2, 3190, 4.0), 2,
			"2 of 4 waited", "so the 2 ones sent", 500_000},
		{"least busy: none", blockingEach(ModeCluster, 2380, 500, 1.1, 0.9, 1.0, 1.0), 0,
			"not blocked: all 4 light requests answered while the heavy one ran", "another worker was free", 500_000},
		{"single probe", blockingEach(ModeSingle, 2000, 300, 1700), 1,
			"blocked: the light request waited for the heavy one", "one request at a time", 300_000},
		{"older record, blocked", blockingRecord(ModeSingle, 5210, 4650), -1,
			"blocked: a light request waited for the heavy one", "not stored", -1},
		{"older record, not blocked", blockingRecord(ModeCluster, 5170, 4.2), 0,
			"not blocked: all 4 light requests answered while the heavy one ran", "another worker", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bl := ReadBlocking(tt.rec)
			if bl.WaitedN != tt.waited || bl.Verdict != tt.verdict {
				t.Errorf("waited %d, verdict %q; want %d, %q", bl.WaitedN, bl.Verdict, tt.waited, tt.verdict)
			}
			if !strings.Contains(bl.Why, tt.why) || (tt.why == "") != (bl.Why == "") {
				t.Errorf("why = %q, want it to mention %q", bl.Why, tt.why)
			}
			if tt.startsAfter >= 0 {
				if len(bl.Lights) != int(tt.rec.Result.Completed) {
					t.Fatalf("%d light requests, want %d", len(bl.Lights), tt.rec.Result.Completed)
				}
				n := 0
				for i, l := range bl.Lights {
					if l.StartUS < tt.startsAfter {
						t.Errorf("light %d starts at %v µs, before the delay", i, l.StartUS)
					}
					if l.Waited {
						n++
					}
				}
				if n != tt.waited {
					t.Errorf("%d lights marked waited, want %d", n, tt.waited)
				}
			} else if bl.Lights != nil {
				t.Errorf("lights from an older record: %+v", bl.Lights)
			}
		})
	}
}
