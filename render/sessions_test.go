package render

import (
	"strings"
	"testing"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/payload/loadgen"
)

// The sessions runs (bench --plan sessions) get their section in the HTML
// report: a row per mode and each mode's sentence, escaped.
func TestBenchReportSessions(t *testing.T) {
	sc := bench.SessionsScenario()
	var runs []*bench.Record
	for i, m := range []string{"memory", "master", "stateless"} {
		s := &loadgen.SessionsResult{Mode: m, FollowUps: 800, Lost: []int{300, 0, 0}[i], LostFraction: []float64{0.375, 0, 0}[i], Early: 200, LogoutChecks: 200,
			Propagation: loadgen.Dist{N: 400, P50US: 600, P99US: 4000}, Rate: &loadgen.SessionsRate{RPS: 2000}}
		s.Explanation = m + ": <b>explained</b>"
		one := sc
		one.Name, one.Modes = "sessions-"+m, []string{m}
		runs = append(runs, &bench.Record{Schema: bench.Schema, ID: "x-" + m, Host: host(), Scenario: one,
			Server: bench.ServerInfo{Mode: bench.ModeCluster, Port: 3290, Stack: bench.LangGo}, Result: &loadgen.Result{}, Sessions: s})
	}
	var b strings.Builder
	if err := BuildBench(runs, BenchOptions{}).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, want := range []string{`<section class="scenario sessions">`, "<td>memory</td><td>300 of 800 (38%)</td>", "<td>master</td><td>0 of 800 (0%)</td>",
		"<td>0.60 ms</td><td>4.00 ms</td>", "stateless: &lt;b&gt;explained&lt;/b&gt;", "<td>2000</td>"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
