package bench

import (
	"errors"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/syncbuf"
)

// TestPassesCountOnce: bench --compare's two passes count one total per
// host ("[16/16]", never "[16/8]") and say "16 runs to make" once.
func TestPassesCountOnce(t *testing.T) {
	plan := ShortPlan()
	perPass := PlanRuns(plan) // one server in the short plan
	if perPass != 4 {
		t.Fatalf("PlanRuns(short plan) = %d, want 4 (warm-up, 3 scenarios)", perPass)
	}
	two := *plan
	two.Servers = []Server{{Name: ModeSingle, Port: 3100}, {Name: ModeCluster, Port: 3101}}
	per := PlanRuns(&two)
	if per != 8 {
		t.Fatalf("PlanRuns(2 servers) = %d, want 8", per)
	}
	tests := []struct {
		name     string
		failPass int // -1: none
		want     []string
		notWant  []string
	}{
		{"both passes", -1, []string{"alu01: 16 runs to make", "alu01: [16/16] s8: done", "alu01: done"}, []string{"/8]", "failed"}},
		{"first pass fails", 0, []string{"alu01: [3/16] s3: failed", "alu01: failed"}, []string{"[4/16]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf syncbuf.Buffer
			p := newPasses(NewProgress(&buf, false), 2*per)
			n := 0
			for pass := 0; pass < 2; pass++ {
				p.pass(pass == 1)
				p.HostStart("alu01", per)
				var err error
				for i := 0; i < per; i++ {
					n++
					label := "s" + string(rune('0'+(n-1)%8+1))
					p.StepStart("alu01", label)
					if pass == tt.failPass && i == 2 {
						err = errors.New("boom")
						p.StepDone("alu01", label, nil, err)
						break
					}
					p.StepDone("alu01", label, nil, nil)
				}
				p.HostDone("alu01", err)
				p.Wait()
				if err != nil {
					p.finish(err)
					break
				}
				if pass == 1 {
					p.finish(nil)
				}
			}
			out := buf.String()
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
			if c := strings.Count(out, "runs to make"); c != 1 {
				t.Errorf("%q printed %d times:\n%s", "runs to make", c, out)
			}
		})
	}
}
