package checks

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/deploylab/deploylab/internal/fail"
)

func loadDefault(t *testing.T) *Rubric {
	t.Helper()
	r, err := LoadRubric("../rubric.yaml")
	if err != nil {
		t.Fatalf("default rubric: %v", err)
	}
	return r
}

func TestDefaultRubric(t *testing.T) {
	r := loadDefault(t)
	type crit struct {
		Name   string
		Points float64
		Manual bool
	}
	var got []crit
	for _, c := range r.Criteria {
		got = append(got, crit{c.Name, c.Points, c.Manual})
	}
	want := []crit{
		{"Despliegue sin cluster", 2, false},
		{"Despliegue con cluster", 2, false},
		{"Pruebas de carga", 2, false},
		{"Gestor de procesos (PM2)", 2, false},
		{"Respuestas a las preguntas", 1, true},
		{"Formato del documento", 1, true},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("criteria (-want +got):\n%s", d)
	}
	if r.Total != 10 {
		t.Errorf("total = %v, want 10", r.Total)
	}
	q := r.Criteria[4].Question
	if !strings.Contains(q, "sin cluster") || !strings.Contains(q, "¿Por qué?") {
		t.Errorf("the manual criterion lacks the practice's question: %q", q)
	}
	// Every kind the issue names is used by the default rubric.
	used := map[Kind]bool{}
	r.walk(func(c *Check) { used[c.Kind] = true })
	for _, k := range []Kind{KindHTTP, KindPort, KindProcess, KindFile, KindSystemd, KindPM2, KindTool, KindHistory, KindBench, KindBlocking, KindRespawn, KindReload, KindAnyOf} {
		if !used[k] {
			t.Errorf("default rubric does not use kind %s", k)
		}
	}
	o := r.ProbeOptions()
	if o.BlockHeavy != "/api/5000000000" || !strings.Contains(strings.Join(o.Paths, " "), "/api/50") {
		t.Errorf("probe options = %+v", o)
	}
}

const goodRubric = `version: 1
total: 3
criteria:
  - id: a
    name: A
    points: 2
    checks:
      - id: x
        kind: http
        path: /
        weight: 1
  - id: m
    name: M
    points: 1
    manual: true
`

func TestParseRubricErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top key", strings.Replace(goodRubric, "total: 3", "total: 3\ntotl: 3", 1), `r.yaml:3: unknown key "totl" in rubric`},
		{"unknown kind", strings.Replace(goodRubric, "kind: http", "kind: htp", 1), `r.yaml:9: unknown check kind "htp"`},
		{"key of another kind", strings.Replace(goodRubric, "path: /", "path: /\n        min_workers: 2", 1), `r.yaml:11: unknown key "min_workers" in check of kind http`},
		{"negative weight", strings.Replace(goodRubric, "weight: 1", "weight: -1", 1), `r.yaml:11: "weight" must be greater than 0, not -1`},
		{"text weight", strings.Replace(goodRubric, "weight: 1", "weight: heavy", 1), `r.yaml:11: "weight" must be a number, not "heavy"`},
		{"points do not add up", strings.Replace(goodRubric, "points: 2", "points: 3", 1), `r.yaml:2: criteria points add up to 4, not to the total 3`},
		{"missing total", strings.Replace(goodRubric, "total: 3\n", "", 1), `r.yaml:1: missing key "total"`},
		{"bad regexp", strings.Replace(goodRubric, "path: /", "path: /\n        body: '(hola'", 1), `r.yaml:11: "body" is not a valid regular expression`},
		{"manual with checks", goodRubric + "    checks: []\n", `r.yaml:16: criterion "m" is manual: it cannot have checks`},
		{"no checks", strings.Replace(goodRubric, "    checks:\n      - id: x\n        kind: http\n        path: /\n        weight: 1\n", "", 1), `r.yaml:4: criterion "a": missing key "checks"`},
		{"duplicate criterion", goodRubric + "  - id: a\n    name: B\n    points: 1\n    manual: true\n", `r.yaml:16: duplicate criterion id "a"`},
		{"bad port", strings.Replace(goodRubric, "path: /", "path: /\n        port: 70000", 1), `r.yaml:11: check "x": port 70000 out of range`},
		{"bad server", strings.Replace(goodRubric, "path: /", "path: /\n        server: both", 1), `r.yaml:11: check "x": server must be single, cluster or any`},
		{"path with space", strings.Replace(goodRubric, "path: /", "path: '/a b'", 1), `r.yaml:10: "/a b" is not a request path`},
		{"missing path", strings.Replace(goodRubric, "        path: /\n", "", 1), `r.yaml:8: check "x" of kind http: missing key "path"`},
		{"weight in alternative", strings.Replace(goodRubric, "kind: http\n        path: /", "kind: any_of\n        checks:\n          - {id: p, kind: process, cmdline: node, weight: 2}\n          - {id: q, kind: process, cmdline: pm2}", 1), `r.yaml:11: check "p": an alternative inside any_of or all_of has no weight`},
		{"not yaml", "criteria: [", `r.yaml: yaml: line 1`},
		{"two documents", goodRubric + "---\ntotal: 1\n", `r.yaml:16: more than one YAML document`},
		{"cpus typo", strings.Replace(goodRubric, "kind: http\n        path: /", "kind: port\n        min_workers: cpu", 1), `r.yaml:10: "min_workers" must be a whole number, "cpus" or "cpus-K"`},
		{"version", "version: 2\n" + goodRubric[len("version: 1\n"):], `r.yaml:1: unsupported rubric version 2`},
		{"systemd without state", strings.Replace(goodRubric, "kind: http\n        path: /", "kind: systemd\n        unit: pm2-*.service", 1), `r.yaml:8: check "x": say active: and/or enabled:`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRubric("r.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error for:\n%s", tc.yaml)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to contain %q", err, tc.want)
			}
			if fail.KindOf(err) != fail.Usage {
				t.Errorf("kind = %v, want Usage", fail.KindOf(err))
			}
			if fail.HintOf(err) == "" {
				t.Errorf("no hint")
			}
		})
	}
}

func TestParseRubricGood(t *testing.T) {
	r, err := ParseRubric("r.yaml", []byte(goodRubric))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Criteria[0].Checks[0]
	if c.Server != ServerAny || c.Params.(*httpCheck).Status != 200 || c.Line != 8 || c.Weight != 1 {
		t.Errorf("defaults: %+v", c)
	}
	if _, err := LoadRubric("testdata/nope.yaml"); fail.KindOf(err) != fail.Usage || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestGlobRegexp(t *testing.T) {
	tests := []struct {
		glob, path string
		want       bool
	}{
		{"*.{js,cjs}", "/root/app/app.js", true},
		{"*.{js,cjs}", "/root/app/app.cjs", true},
		{"*.{js,cjs}", "/root/app/app.json", false},
		{"ecosystem.config.{js,cjs,json}", "/home/ana/p/ecosystem.config.js", true},
		{"ecosystem.config.{js,cjs,json}", "/home/ana/p/myecosystem.config.js", false},
		{"/etc/systemd/system/*.service", "/etc/systemd/system/pm2-root.service", true},
		{"/etc/systemd/system/*.service", "/etc/systemd/system/x/pm2-root.service", false},
		{"/home/**/app.js", "/home/ana/a/b/app.js", true},
		{"re:app(_cluster)?\\.js$", "/x/app_cluster.js", true},
		{"pm2-*.service", "pm2-root.service", true},
	}
	for _, tc := range tests {
		re, err := globRegexp(tc.glob)
		if err != nil {
			t.Fatalf("%s: %v", tc.glob, err)
		}
		if got := re.MatchString(tc.path); got != tc.want {
			t.Errorf("%s ~ %s = %v, want %v", tc.glob, tc.path, got, tc.want)
		}
	}
}
