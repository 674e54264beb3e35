package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploylab/deploylab/internal/fail"
)

func TestDefaultPlan(t *testing.T) {
	p := DefaultPlan()
	var got []string
	for _, s := range p.Scenarios {
		got = append(got, s.Name+": "+s.Describe())
	}
	want := []string{
		"api-n1000: /api/500000 -n 1000 -c 100",
		"api-n10000: /api/500000 -n 10000 -c 100",
		"root-n10000: / -n 10000 -c 100",
		"blocking: /api/5000000000 with 4× GET /",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("default scenarios (-want +got):\n%s", d)
	}
	if len(p.Servers) != 2 || p.Servers[0] != (Server{Name: "single", Port: 3000, Unit: "deploylab-sumserver.service"}) ||
		p.Servers[1] != (Server{Name: "cluster", Port: 3001, Unit: "deploylab-sumcluster.service"}) {
		t.Errorf("servers = %+v", p.Servers)
	}
	if p.Scenarios[3].Delay != Duration(500*time.Millisecond) || p.Scenarios[3].Probes != 4 {
		t.Errorf("blocking scenario = %+v", p.Scenarios[3])
	}
	if p.Warmup.Requests != 500 || p.Warmup.Concurrency != 50 {
		t.Errorf("warmup = %+v", p.Warmup)
	}
}

func TestParsePlanErrors(t *testing.T) {
	const head = "servers:\n  - name: single\n    port: 3000\nscenarios:\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown top key", "servers:\n  - {name: single, port: 3000}\nscenarioz: []\n", `plan.yaml:3: unknown key "scenarioz"`},
		{"unknown scenario key", head + "  - route: /\n    requests: 10\n    concurency: 5\n", `plan.yaml:7: unknown key "concurency"`},
		{"unknown server key", "servers:\n  - name: single\n    prot: 3000\n", `plan.yaml:3: unknown key "prot"`},
		{"wrong type", head + "  - route: /\n    requests: many\n", "plan.yaml:6: cannot unmarshal !!str `many` into int"},
		{"bad duration", head + "  - route: /api/5000000000\n    kind: blocking\n    delay: soon\n", `plan.yaml:7: "soon" is not a duration like 500ms or 30s`},
		{"syntax", "servers: [\n", "plan.yaml:1: did not find expected node content"},
		{"empty", "", "plan.yaml: empty plan"},
		{"no servers", "scenarios:\n  - {route: /, requests: 1, concurrency: 1}\n", "plan.yaml: no servers"},
		{"bad server name", "servers:\n  - name: double\n    port: 3000\n", `plan.yaml:2: server name "double": want single or cluster`},
		{"bad stack", "servers:\n  - name: single\n    port: 3000\n    stack: rust\n", `plan.yaml:2: server single: stack "rust": want go or node`},
		{"bad port", "servers:\n  - name: single\n    port: 70000\n", "plan.yaml:2: server single: port 70000 is not from 1 to 65535"},
		{"no scenarios", "servers:\n  - {name: single, port: 3000}\n", "plan.yaml: no scenarios"},
		{"c 0", head + "  - route: /\n    requests: 10\n    concurrency: 0\n", "plan.yaml:5: scenario root-n10-c0: concurrency (-c) must be at least 1, got 0"},
		{"n < c", head + "  - route: /\n    requests: 10\n    concurrency: 50\n", "plan.yaml:5: scenario root-n10-c50: requests (-n 10) must be at least the concurrency (-c 50)"},
		{"bad route", head + "  - route: api/5\n    requests: 10\n    concurrency: 5\n", `route "api/5": want a path`},
		{"bad kind", head + "  - route: /\n    kind: soak\n", `kind "soak": want load, blocking or sessions`},
		{"blocking with -n", head + "  - route: /api/9\n    kind: blocking\n    requests: 5\n", "requests, concurrency and keepalive are for load scenarios"},
		{"duplicate", head + "  - {name: a, route: /, requests: 1, concurrency: 1}\n  - {name: a, route: /, requests: 1, concurrency: 1}\n", `plan.yaml:6: scenario "a" listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePlan("plan.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
			if fail.KindOf(err) != fail.Usage || fail.HintOf(err) == "" {
				t.Errorf("error kind %v hint %q, want Usage with a hint", fail.KindOf(err), fail.HintOf(err))
			}
		})
	}
}

func TestParsePlanDefaults(t *testing.T) {
	p, err := ParsePlan("p.yaml", []byte(`servers:
  - {name: cluster, port: 4001, unit: my-cluster}
warmup: {requests: 5, concurrency: 10}
scenarios:
  - {route: /api/50, requests: 20, concurrency: 4, keepalive: true, timeout: 2s}
  - {route: /api/100, kind: blocking}
  - {route: "http://localhost:8080/x", requests: 3, concurrency: 3}
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Servers[0].Unit != "my-cluster.service" {
		t.Errorf("unit = %q", p.Servers[0].Unit)
	}
	if p.Warmup.Concurrency != 5 {
		t.Errorf("warm-up concurrency = %d, want it cut to the 5 requests", p.Warmup.Concurrency)
	}
	want := []Scenario{
		{Name: "api-50-n20-c4-k", Kind: KindLoad, Route: "/api/50", Requests: 20, Concurrency: 4, KeepAlive: true, Timeout: Duration(2 * time.Second)},
		{Name: "api-100-blocking", Kind: KindBlocking, Route: "/api/100", Probe: "/", Probes: 4, Delay: Duration(500 * time.Millisecond)},
		{Name: "8080-x-n3-c3", Kind: KindLoad, Route: "http://localhost:8080/x", Requests: 3, Concurrency: 3},
	}
	if d := cmp.Diff(want, p.Scenarios); d != "" {
		t.Errorf("scenarios (-want +got):\n%s", d)
	}
}

func TestLoadPlan(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "mine.yaml")
	if err := os.WriteFile(f, []byte("servers:\n  - {name: single, port: 3000}\nscenarios:\n  - {route: /, requests: 1, concurrency: 1, rps: 5}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadPlan(f)
	if err == nil || err.Error() != f+`:4: unknown key "rps"` {
		t.Errorf("err = %v", err)
	}
	_, err = LoadPlan(filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "missing.yaml: no such file or directory") || fail.KindOf(err) != fail.Usage {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestOneOff(t *testing.T) {
	base := DefaultPlan()
	tests := []struct {
		route string
		n, c  int
		want  string // error, "" for none
	}{
		{"/api/500000", 5000, 50, ""},
		{"http://127.0.0.1:3000/", 10, 10, ""},
		{"/", 10, 0, "concurrency (-c) must be at least 1, got 0"},
		{"/", 10, 50, "requests (-n 10) must be at least the concurrency (-c 50)"},
		{"/", 0, 1, "requests (-n) must be at least 1, got 0"},
		{"localhost:3000/", 10, 1, `route "localhost:3000/": want a path (/api/500000) or a URL (http://localhost:3000/)`},
		{"ftp://x/", 10, 1, "want a path"},
	}
	for _, tt := range tests {
		p, err := OneOff(base, tt.route, tt.n, tt.c, false)
		if tt.want == "" {
			if err != nil {
				t.Errorf("OneOff(%s -n %d -c %d): %v", tt.route, tt.n, tt.c, err)
				continue
			}
			if len(p.Scenarios) != 1 || p.Scenarios[0].Route != tt.route || len(p.Servers) != 2 {
				t.Errorf("OneOff(%s) = %+v", tt.route, p)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) || fail.KindOf(err) != fail.Usage {
			t.Errorf("OneOff(%s -n %d -c %d) = %v, want usage error %q", tt.route, tt.n, tt.c, err, tt.want)
		}
	}
	if len(base.Scenarios) != 4 {
		t.Error("OneOff changed its base plan")
	}
}

func TestWithServers(t *testing.T) {
	p, err := DefaultPlan().WithServers([]string{"cluster"})
	if err != nil || len(p.Servers) != 1 || p.Servers[0].Name != "cluster" {
		t.Errorf("WithServers(cluster) = %+v, %v", p, err)
	}
	if _, err := DefaultPlan().WithServers([]string{"pm2"}); err == nil || fail.KindOf(err) != fail.Usage {
		t.Errorf("WithServers(pm2) err = %v", err)
	}
}
