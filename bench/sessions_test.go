package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/need"
)

func TestSessionsPlanParse(t *testing.T) {
	p := SessionsPlan()
	if len(p.Servers) != 0 || len(p.Scenarios) != 1 {
		t.Fatalf("sessions plan: %d servers, %d scenarios; want 0 and 1", len(p.Servers), len(p.Scenarios))
	}
	s := p.Scenarios[0]
	if s.Kind != KindSessions || strings.Join(s.Modes, ",") != "memory,master,stateless" || s.Users != 200 || s.Gets != 4 ||
		s.Workers != 2 || s.Port != DefaultSessionsPort || time.Duration(s.Rate) != 3*time.Second || s.Churn != 10 {
		t.Errorf("sessions scenario = %+v", s)
	}
	if n := PlanRuns(p); n != 3 {
		t.Errorf("PlanRuns(sessions) = %d, want 3 (one per mode, no warm-up)", n)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad mode", "scenarios: [{kind: sessions, modes: [redis]}]", `mode "redis": want memory, master or stateless`},
		{"twice", "scenarios: [{kind: sessions, modes: [master, master]}]", `mode "master" listed twice`},
		{"route", "scenarios: [{kind: sessions, route: /me}]", "no route"},
		{"workers", "scenarios: [{kind: sessions, workers: 100}]", "workers 100: want 1 to 64"},
		{"load with users", "servers: [{name: single, port: 3000}]\nscenarios: [{route: /, requests: 1, concurrency: 1, users: 3}]", "are for kind: sessions"},
		{"no servers for load", "servers: []\nscenarios: [{route: /, requests: 1, concurrency: 1}]", "no servers"},
	} {
		_, err := ParsePlan("p.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

// TestSessionsLocal runs the sessions plan on this machine through
// remote.Local (the script that runs on a host): one stored run per mode,
// with the lesson's shape: memory loses sessions with 2 workers, master and
// stateless lose none after propagation, across a kill -9 and a recycle.
func TestSessionsLocal(t *testing.T) {
	need.Slow(t, "the local sessions bench")
	dir := binaries(t)
	t.Setenv("HOME", t.TempDir())
	plan := SessionsPlan()
	plan.Scenarios[0].Users, plan.Scenarios[0].Gets = 90, 3
	plan.Scenarios[0].Port = freePort(t)
	plan.Scenarios[0].Rate = Duration(time.Second)
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := Run(ctx, []Target{{Name: "local", Address: "127.0.0.1"}}, Options{
		Plan: plan, Loadgen: buildFor(t), Dial: localDial, Store: store,
		Sumcluster: func(context.Context, string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, "sumcluster")) },
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkSessionsRuns(t, out.Records())
	stored, err := store.List("local")
	if err != nil || len(stored) != 3 {
		t.Fatalf("store holds %d runs (%v), want 3", len(stored), err)
	}
	if sums, _ := store.Summaries("local"); len(sums) != 0 {
		t.Errorf("the grader's summaries hold sessions runs: %+v", sums)
	}
	var tbl bytes.Buffer
	if err := WriteTable(&tbl, stored); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SESSIONS: 90 users × 3 GET /me on 2 workers", "memory: ", "master: ", "stateless: ", "GET /me RPS"} {
		if !strings.Contains(tbl.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tbl.String())
		}
	}
	t.Logf("\n%s", tbl.String())
}

// checkSessionsRuns asserts the structure of one run per mode (no timing).
func checkSessionsRuns(t *testing.T, recs []*Record) {
	t.Helper()
	byMode := map[string]*Record{}
	for _, r := range recs {
		if r.Scenario.Kind != KindSessions || r.Sessions == nil {
			t.Errorf("%s: not a sessions run", r.ID)
			continue
		}
		byMode[r.Sessions.Mode] = r
	}
	for _, m := range []string{"memory", "master", "stateless"} {
		r := byMode[m]
		if r == nil {
			t.Errorf("no run of mode %s (have %d runs)", m, len(recs))
			continue
		}
		s := r.Sessions
		t.Logf("%s: %s; disruptions %v; notes %v", m, s.Explanation, s.Disruptions, r.Notes)
		if s.Logins == 0 || s.FollowUps == 0 || s.WorkersSeen == 0 || s.Rate == nil || s.Rate.OK+s.Rate.Lost == 0 {
			t.Errorf("%s: nothing measured: %+v", m, *s)
		}
		if len(s.Disruptions) != 2 {
			t.Errorf("%s: disruptions %v, want the kill -9 and the recycle", m, s.Disruptions)
		}
		for _, d := range s.Disruptions {
			if strings.Contains(d, ": ") {
				t.Errorf("%s: disruption failed: %s", m, d)
			}
		}
		if !strings.HasPrefix(s.Explanation, m+": ") {
			t.Errorf("%s: explanation %q", m, s.Explanation)
		}
		switch m {
		case "memory":
			if s.Lost == 0 {
				t.Errorf("memory: no session lost with 2 workers: %+v", *s)
			}
		case "master":
			if s.Lost != 0 || s.LogoutLeaks != 0 || s.PropagateTimeouts != 0 {
				t.Errorf("master: %d lost, %d logout leaks, %d propagation waits timed out; want none after propagation", s.Lost, s.LogoutLeaks, s.PropagateTimeouts)
			}
			if s.Propagation.N == 0 || s.Revocation.N == 0 {
				t.Errorf("master: no propagation measured: %+v %+v", s.Propagation, s.Revocation)
			}
		case "stateless":
			if s.Lost != 0 {
				t.Errorf("stateless: %d lost, want none", s.Lost)
			}
		}
	}
}
