package checks

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
)

const (
	kindsBegin = "<!-- check kinds: begin"
	kindsEnd   = "<!-- check kinds: end -->"
)

// TestReadmeKindsTable: README's table of check kinds is the registry's
// (-update rewrites it).
func TestReadmeKindsTable(t *testing.T) {
	const path = "../README.md"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	b := strings.Index(s, kindsBegin)
	e := strings.Index(s, kindsEnd)
	if b < 0 || e < b {
		t.Fatalf("README.md lacks the %q … %q markers", kindsBegin, kindsEnd)
	}
	b += strings.IndexByte(s[b:], '\n') + 1
	want := KindsTable()
	if got := s[b:e]; got != want {
		if golden.Update() {
			if err := os.WriteFile(path, []byte(s[:b]+want+s[e:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's table of check kinds is stale (go test ./checks -run TestReadmeKindsTable -update):\ngot:\n%s\nwant:\n%s", got, want)
	}
}

// TestRegistry: every kind has a doc line that fits one table cell, asks
// for its own keys only, and decodes from an empty mapping without panicking
// (that is how its keys are learnt).
func TestRegistry(t *testing.T) {
	if len(Kinds()) < 14 {
		t.Errorf("only %d kinds registered: %v", len(Kinds()), Kinds())
	}
	for _, k := range Kinds() {
		def := registry[k]
		if def.kind != k || def.doc == "" || strings.ContainsAny(def.doc, "|\n") {
			t.Errorf("kind %s: doc line %q (must be one table cell)", k, def.doc)
		}
		for _, key := range def.keys {
			if slices.Contains(commonCheckKeys, key.name) {
				t.Errorf("kind %s asks for the common key %q", k, key.name)
			}
		}
	}
}

// TestKindKeysStrict: for every kind, a key of the wrong type is an error at
// its line, and an unknown key is refused.
func TestKindKeysStrict(t *testing.T) {
	tests := []struct {
		name, check, want string
	}{
		{"http status text", "kind: http\n        path: /\n        status: ok", `r.yaml:11: "status" must be a whole number, not "ok"`},
		{"http max_ms zero", "kind: http\n        path: /\n        max_ms: 0", `r.yaml:11: "max_ms" must be greater than 0`},
		{"port max_workers", "kind: port\n        max_workers: many", `r.yaml:10: "max_workers" must be a whole number, "cpus" or "cpus-K"`},
		{"process user regexp", "kind: process\n        cmdline: node\n        user: '('", `r.yaml:11: "user" is not a valid regular expression`},
		{"process min negative", "kind: process\n        cmdline: node\n        min: -1", `r.yaml:11: "min" must not be negative`},
		{"file contains number", "kind: file\n        path: a.js\n        contains: [1]", `r.yaml:11: "contains" must be text, not "1"`},
		{"file bad glob", "kind: file\n        path: 'a{.js'", `r.yaml:10: check "x": bad path pattern "a{.js": unclosed {`},
		{"command missing run", "kind: command\n        exit: 0", `r.yaml:8: check "x" of kind command: missing key "run"`},
		{"command exit text", "kind: command\n        run: 'true'\n        exit: zero", `r.yaml:11: "exit" must be a whole number, not "zero"`},
		{"command output regexp", "kind: command\n        run: 'true'\n        output: '['", `r.yaml:11: "output" is not a valid regular expression`},
		{"command run list", "kind: command\n        run: [a, b]", `r.yaml:10: "run" must be a single value`},
		{"systemd bad unit", "kind: systemd\n        unit: 'a b'\n        active: true", `r.yaml:10: check "x": "a b" is not a unit name or glob`},
		{"systemd active text", "kind: systemd\n        unit: a.service\n        active: yes please", `r.yaml:11: "active" must be true or false`},
		{"pm2 exec_mode", "kind: pm2\n        exec_mode: both", `r.yaml:10: check "x": exec_mode must be cluster or fork`},
		{"pm2 online text", "kind: pm2\n        online: 'true'", `r.yaml:10: "online" must be true or false`},
		{"tool empty list", "kind: tool\n        any: []", `r.yaml:10: "any" must be a text or a non-empty list of texts`},
		{"history missing pattern", "kind: history\n        min: 2", `r.yaml:8: check "x" of kind history: missing key "pattern"`},
		{"bench speedup", "kind: bench\n        route: /api/1\n        min_speedup: fast", `r.yaml:11: "min_speedup" must be a number`},
		{"bench route", "kind: bench\n        route: api", `r.yaml:10: "api" is not a request path`},
		{"blocking heavy", "kind: blocking\n        heavy: 'x y'", `r.yaml:10: "x y" is not a request path`},
		{"respawn unknown key", "kind: respawn\n        max_failed: 1", `r.yaml:10: unknown key "max_failed" in check of kind respawn`},
		{"reload max_failed negative", "kind: reload\n        max_failed: -2", `r.yaml:10: "max_failed" must not be negative`},
		{"any_of one alternative", "kind: any_of\n        checks:\n          - {id: p, kind: process, cmdline: node}", `r.yaml:11: check "x": any_of needs a list of at least two alternatives`},
		{"any_of nested", "kind: any_of\n        checks:\n          - {id: p, kind: process, cmdline: node}\n          - {id: q, kind: any_of, checks: [{id: a, kind: tool, any: x}, {id: b, kind: tool, any: y}]}", `r.yaml:12: check "q": any_of cannot nest another any_of`},
		{"any_of duplicate", "kind: any_of\n        checks:\n          - {id: p, kind: process, cmdline: node}\n          - {id: p, kind: tool, any: x}", `r.yaml:12: check "x": duplicate alternative id "p"`},
		{"duplicate key", "kind: tool\n        any: a\n        any: b", `r.yaml:11: duplicate key "any"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(goodRubric, "kind: http\n        path: /", tc.check, 1)
			_, err := ParseRubric("r.yaml", []byte(y))
			if err == nil {
				t.Fatalf("no error for:\n%s", y)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to contain %q\n%s", err, tc.want, y)
			}
		})
	}
}

// TestDuplicateCriterionName: two criteria with one name (they would share
// a column of notas.xlsx) are a usage error naming both lines.
func TestDuplicateCriterionName(t *testing.T) {
	y := goodRubric + "  - id: b\n    name: ' a '\n    points: 1\n    manual: true\n"
	y = strings.Replace(y, "total: 3", "total: 4", 1)
	_, err := ParseRubric("r.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), `r.yaml:16: duplicate criterion name " a " (also at line 4)`) {
		t.Errorf("err = %v", err)
	}
}

// TestDescribe: the Rúbrica sheet's one-line parameters.
func TestDescribe(t *testing.T) {
	r := loadDefault(t)
	got := map[string]string{}
	for _, c := range r.Criteria {
		for _, ch := range c.Checks {
			got[c.ID+"."+ch.ID] = ch.Describe()
			for _, alt := range ch.Checks {
				got[c.ID+"."+ch.ID+"."+alt.ID] = alt.Describe()
			}
		}
	}
	for k, want := range map[string]string{
		"sin_cluster.raiz":           "server=any  path=/  status=200  body=(?i)hello|hola",
		"con_cluster.no_bloquea":     "server=cluster  max_ms=1000  heavy=/api/5000000000  short=/",
		"con_cluster.workers":        "server=cluster  min_workers=cpus-1",
		"carga.herramienta":          "any=loadtest,loadgen,autocannon,ab,wrk,hey",
		"carga.comparativa":          "route=/api/500000  cluster_beats_single=true",
		"pm2.cluster.pm2":            "exec_mode=cluster  instances=cpus-1  online=true",
		"pm2.arranque.pm2":           "unit=pm2-*.service  enabled=true",
		"pm2.reload":                 "server=cluster",
		"con_cluster.codigo.fichero": `path=*.{js,cjs,mjs}  contains=\bcluster\b  contains=\.fork\s*\(`,
	} {
		if got[k] != want {
			t.Errorf("%s: Describe() = %q, want %q", k, got[k], want)
		}
	}
	if r.BenchRoute() != "/api/500000" {
		t.Errorf("BenchRoute = %q", r.BenchRoute())
	}
}

// TestPartialKeys: a check's partial-credit list is decoded strictly.
func TestPartialKeys(t *testing.T) {
	tests := []struct {
		name, partial, want string
	}{
		{"no share", "        partial:\n          - {id: h, kind: history, pattern: node}\n", `r.yaml:13: check "x": evidence "h" needs a share`},
		{"share 1", "        partial:\n          - {id: h, kind: history, pattern: node, share: 1}\n", `r.yaml:13: check "x": share 1 must be below 1`},
		{"share text", "        partial:\n          - {id: h, kind: history, pattern: node, share: half}\n", `r.yaml:13: "share" must be a number, not "half"`},
		{"weight in evidence", "        partial:\n          - {id: h, kind: history, pattern: node, share: 0.5, weight: 2}\n", `r.yaml:13: check "h": evidence inside partial has a share, not a weight`},
		{"partial in evidence", "        partial:\n          - {id: h, kind: history, pattern: node, share: 0.5, partial: []}\n", `r.yaml:13: unknown key "partial" in check of kind history`},
		{"empty", "        partial: []\n", `r.yaml:12: check "x": "partial" must be a non-empty list`},
		{"duplicate", "        partial:\n          - {id: h, kind: history, pattern: node, share: 0.5}\n          - {id: h, kind: history, pattern: npm, share: 0.2}\n", `r.yaml:14: check "x": duplicate evidence id "h"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			y := strings.Replace(goodRubric, "        weight: 1\n", "        weight: 1\n"+tc.partial, 1)
			_, err := ParseRubric("r.yaml", []byte(y))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %q\n%s", err, tc.want, y)
			}
		})
	}
	y := strings.Replace(goodRubric, "        weight: 1\n", "        weight: 1\n        partial:\n          - {id: h, kind: history, pattern: node, share: 0.5}\n", 1)
	r, err := ParseRubric("r.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	if p := r.Criteria[0].Checks[0].Partial; len(p) != 1 || p[0].Share != 0.5 || p[0].Check.Kind != KindHistory {
		t.Errorf("partial = %+v", p)
	}
}

// TestAllOf: all_of passes only when every part passes.
func TestAllOf(t *testing.T) {
	r := commandRubric(t, `      - id: k
        kind: all_of
        checks:
          - {id: a, kind: history, pattern: 'node app'}
          - {id: b, kind: tool, any: loadtest}
`)
	c := &r.Criteria[0].Checks[0]
	base := HostFacts{Host: "h", Reachable: true}
	tests := []struct {
		name  string
		facts HostFacts
		want  Outcome
	}{
		{"both", with(base, func(f *HostFacts) { f.History = hist("node app.js"); f.Tools = tools("loadtest") }), Pass},
		{"one", with(base, func(f *HostFacts) { f.History = hist("node app.js") }), Fail},
		{"none", base, Fail},
	}
	for _, tc := range tests {
		if got := Evaluate(r, c, tc.facts, nil); got.Outcome != tc.want {
			t.Errorf("%s: %s (%s; %s)", tc.name, got.Outcome, got.Evidence, got.Reason)
		}
	}
}
