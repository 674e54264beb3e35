package checks

import (
	"github.com/deploylab/deploylab/observe"

	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// commandRubric is a rubric whose one criterion holds the given command
// checks (YAML list items, indented for the checks list).
func commandRubric(t *testing.T, checksYAML string) *Rubric {
	t.Helper()
	y := "version: 1\ntotal: 1\ncriteria:\n  - id: c\n    name: C\n    points: 1\n    checks:\n" + checksYAML
	r, err := ParseRubric("r.yaml", []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return r
}

// TestCommandEval: the command kind over facts (pure).
func TestCommandEval(t *testing.T) {
	const run = "systemctl is-enabled pm2-root"
	facts := func(exit int, out string) HostFacts {
		return HostFacts{Host: "h", Reachable: true, Commands: []CommandResult{{Name: CommandKey(run), Exit: exit, Output: out}}}
	}
	tests := []struct {
		name     string
		params   string // keys besides id/kind/run
		facts    HostFacts
		want     Outcome
		evidence string
		reason   string
	}{
		{"exit 0 by default", "", facts(0, "enabled"), Pass, "$ systemctl is-enabled pm2-root → salida 0 «enabled»", ""},
		{"non-zero by default fails", "", facts(1, "disabled"), Fail, "salida 1 «disabled»", "se esperaba la salida 0"},
		{"exit given", "exit: 3", facts(3, ""), Pass, "salida 3", ""},
		{"exit given, other seen", "exit: 3", facts(0, ""), Fail, "salida 0", "se esperaba la salida 3"},
		{"negative exit", "exit: -1", facts(-1, ""), Pass, "salida -1", ""},
		{"output only: any exit", "output: '^enabled'", facts(1, "enabled\n"), Pass, "«enabled»", ""},
		{"output only, no match", "output: '^enabled'", facts(0, "disabled"), Fail, "«disabled»", "la salida no casa con /^enabled/"},
		{"exit and output", "exit: 0\n        output: enabled", facts(0, "static"), Fail, "«static»", "la salida no casa con /enabled/"},
		{"exit and output, wrong exit", "exit: 0\n        output: enabled", facts(4, "enabled"), Fail, "salida 4", "se esperaba la salida 0"},
		{"not run by the probe", "", HostFacts{Host: "h", Reachable: true}, Error, "", "el sondeo no ejecutó «systemctl is-enabled pm2-root»"},
		{"another command's result", "", HostFacts{Host: "h", Reachable: true, Commands: []CommandResult{{Name: CommandKey("true"), Exit: 0}}}, Error, "", "el sondeo no ejecutó"},
		{"long output clipped", "", facts(0, strings.Repeat("x", 500)), Pass, "«" + strings.Repeat("x", 99) + "…»", ""},
		{"unreachable host", "", HostFacts{Host: "h", Error: "dial tcp: timeout"}, Error, "", "host inalcanzable: dial tcp: timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.params != "" {
				extra = "        " + tc.params + "\n"
			}
			r := commandRubric(t, "      - id: k\n        kind: command\n        run: "+run+"\n"+extra)
			res := Evaluate(r, &r.Criteria[0].Checks[0], tc.facts, nil)
			if res.Outcome != tc.want || !strings.Contains(res.Evidence, tc.evidence) || !strings.Contains(res.Reason, tc.reason) {
				t.Errorf("got %s evidence=%q reason=%q\nwant %s evidence ⊇ %q reason ⊇ %q", res.Outcome, res.Evidence, res.Reason, tc.want, tc.evidence, tc.reason)
			}
			sc := Score(r, tc.facts, nil)
			if got := sc.Criteria[0].Checks[0].Outcome; got != tc.want {
				t.Errorf("Score gives %s, Evaluate %s", got, tc.want)
			}
		})
	}
}

// TestCommandProbe runs the real probe on this machine with a rubric's
// command checks: the rubric asks the probe to run them, the probe reports
// their exit status and output, and the checks read them back.
func TestCommandProbe(t *testing.T) {
	r := commandRubric(t, `      - id: ok
        kind: command
        run: 'echo hola'
        output: '^hola$'
      - id: exit3
        kind: command
        run: 'echo "sale con 3" >&2; exit 3'
        exit: 3
        output: 'sale con 3'
      - id: falla
        kind: command
        run: 'false'
      - id: quotes
        kind: command
        run: 'printf "%s\n" "it''s" "$((6*7))" | tr -d "\n"'
        output: '^it''s42$'
      - id: big
        kind: command
        run: 'yes hola | head -c 100000'
        output: '^(hola\n)+hol'
      - id: stdin
        kind: command
        run: 'cat; echo fin'
        output: '^fin$'
`)
	o := r.ProbeOptions()
	if len(o.Commands) != 6 {
		t.Fatalf("probe options: %d commands, want 6: %q", len(o.Commands), o.Commands)
	}
	// Keep the run short: no ports, no project search.
	o.OnlyPorts, o.Ports, o.Paths, o.Search = true, nil, nil, []string{t.TempDir()}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-s")
	cmd.Stdin = bytes.NewReader(observe.Script(o))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, stderr.String())
	}
	f, err := ParseProbe(out)
	if err != nil {
		t.Fatal(err)
	}
	f.Host, f.Reachable = "local", true
	for _, c := range f.Commands {
		if len(c.Output) > 4100 {
			t.Errorf("command %s: %d bytes of output kept, the probe caps it at 4096", c.Name, len(c.Output))
		}
	}
	sc := Score(r, f, nil)
	want := map[string]Outcome{"ok": Pass, "exit3": Pass, "falla": Fail, "quotes": Pass, "big": Pass, "stdin": Pass}
	for _, res := range sc.Criteria[0].Checks {
		if res.Outcome != want[res.ID] {
			t.Errorf("%s: %s (%s; %s)", res.ID, res.Outcome, res.Evidence, res.Reason)
		}
	}
	if got := sc.Criteria[0].Score; got != round2(5.0/6) {
		t.Errorf("score = %v, want 5/6 of a point", got)
	}
}
