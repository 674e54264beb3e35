package checks

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/payload/loadgen"
)

// TestSessionsEval: the sessions kind over the probe's output (pure; the
// output is the host's, so garbage too).
func TestSessionsEval(t *testing.T) {
	r := commandRubric(t, "      - id: s\n        kind: sessions\n        port: 3001\n        gets: 4\n")
	lenient := commandRubric(t, "      - id: s\n        kind: sessions\n        port: 3001\n        gets: 4\n        revocation: false\n")
	script := (&sessionsCheck{Port: 3001, Gets: 4, Revocation: true}).script()
	facts := func(out string) HostFacts {
		return HostFacts{Host: "h", Reachable: true, Commands: []CommandResult{{Name: CommandKey(script), Output: out}}}
	}
	for _, tc := range []struct {
		name, out     string
		want, wantLen Outcome
		reason        string
	}{
		{"master: shared and revoked", "me=200,200,200,200,\nlogout=204\nafter=401,401,401,401,\n", Pass, Pass, ""},
		{"memory: lost on other workers", "me=200,401,200,401,\nlogout=204\nafter=401,200,401,200,\n", Fail, Fail, "2 de 4 GET /me con un token válido fallaron"},
		{"stateless: not revoked", "me=200,200,200,200,\nlogout=204\nafter=200,200,200,200,\n", Fail, Pass, "4 de 4 GET /me tras el logout"},
		{"logout refused", "me=200,200,200,200,\nlogout=404\nafter=401,401,401,401,\n", Fail, Pass, "POST /logout respondió 404"},
		{"no app", "login=fail\n", Fail, Fail, "no hay una app de sesiones"},
		{"no curl", "nocurl\n", Error, Error, "no tiene curl"},
		{"garbage", "\x00\xff" + strings.Repeat("me=,", 5000), Error, Error, "no hizo las peticiones"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, x := range []struct {
				r    *Rubric
				want Outcome
			}{{r, tc.want}, {lenient, tc.wantLen}} {
				reason := tc.reason
				if x.want == Pass {
					reason = ""
				}
				res := Evaluate(x.r, &x.r.Criteria[0].Checks[0], facts(tc.out), nil)
				if res.Outcome != x.want || !strings.Contains(res.Reason, reason) {
					t.Errorf("got %s (%s | %s), want %s with %q", res.Outcome, res.Evidence, res.Reason, x.want, reason)
				}
			}
		})
	}
	if res := Evaluate(r, &r.Criteria[0].Checks[0], HostFacts{Host: "h", Reachable: true}, nil); res.Outcome != Error {
		t.Errorf("without the probe's output: %s", res.Outcome)
	}
	for _, bad := range []string{"port: 0", "port: 70000", "port: 3001\n        gets: 0", "port: 3001\n        gets: 51", "gets: 3"} {
		y := "version: 1\ntotal: 1\ncriteria:\n  - id: c\n    name: C\n    points: 1\n    checks:\n      - id: s\n        kind: sessions\n        " + bad + "\n"
		if _, err := ParseRubric("r.yaml", []byte(y)); err == nil {
			t.Errorf("rubric with %q accepted", bad)
		}
	}
}

// TestSessionsProbe grades two real student apps on this machine with the
// real probe: sumcluster's master mode (a correct answer) passes, its memory
// mode (the naive stateful server) fails.
func TestSessionsProbe(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl not found: apt-get install curl")
		}
		t.Skip("curl not found (apt-get install curl)")
	}
	bin := filepath.Join(t.TempDir(), "sumcluster")
	if out, err := exec.Command("go", "build", "-o", bin, "../payload/cluster/cmd/sumcluster").CombinedOutput(); err != nil {
		t.Fatalf("build sumcluster: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		mode string
		want Outcome
	}{{"master", Pass}, {"memory", Fail}} {
		t.Run(tc.mode, func(t *testing.T) {
			port := freePort(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sock := filepath.Join(t.TempDir(), "s.sock")
			cmd := exec.CommandContext(ctx, bin, "--addr", "127.0.0.1", "--port", fmt.Sprint(port), "--instances", "2",
				"--sessions", tc.mode, "--stats-socket", sock)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); _ = cmd.Wait() }()
			waitHTTP(t, port, func() string { return "" })
			// Both workers up: polled on the cluster's stats socket.
			wctx, wcancel := context.WithTimeout(ctx, time.Minute)
			if err := loadgen.WaitClusterReady(wctx, sock, 2, nil); err != nil {
				t.Fatal(err)
			}
			wcancel()
			r := commandRubric(t, fmt.Sprintf("      - id: s\n        kind: sessions\n        port: %d\n        gets: 8\n", port))
			o := r.ProbeOptions()
			o.OnlyPorts, o.Ports, o.Paths, o.Search = true, nil, nil, []string{t.TempDir()}
			f, _ := runProbe(t, o)
			res := Evaluate(r, &r.Criteria[0].Checks[0], f, nil)
			t.Logf("%s: %s %s | %s", tc.mode, res.Outcome, res.Evidence, res.Reason)
			if res.Outcome != tc.want {
				t.Errorf("%s graded %s, want %s", tc.mode, res.Outcome, tc.want)
			}
		})
	}
}

// rubric.yaml's optional sessions criterion (commented out: off by
// default) parses once a teacher uncomments it and raises total.
func TestDefaultRubricSessionsOptIn(t *testing.T) {
	b, err := os.ReadFile("../rubric.yaml")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if r, err := ParseRubric("rubric.yaml", b); err != nil || strings.Contains(fmt.Sprint(r.Criteria), "sesiones") {
		t.Fatalf("default rubric: %v (the sessions criterion must be off)", err)
	}
	i := strings.Index(text, "#  - id: sesiones\n")
	if i < 0 {
		t.Fatal("rubric.yaml has no commented sessions criterion")
	}
	var on []string
	for _, l := range strings.Split(text[i:], "\n") {
		on = append(on, strings.TrimPrefix(l, "#"))
	}
	y := strings.Replace(text[:i], "total: 10", "total: 11", 1) + strings.Join(on, "\n")
	r, err := ParseRubric("rubric.yaml", []byte(y))
	if err != nil {
		t.Fatalf("rubric with the sessions criterion on: %v", err)
	}
	last := r.Criteria[len(r.Criteria)-1]
	if last.ID != "sesiones" || len(last.Checks) != 1 || last.Checks[0].Kind != KindSessions {
		t.Errorf("last criterion %+v, want sesiones with a sessions check", last)
	}
}
