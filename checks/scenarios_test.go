package checks

import (
	"github.com/deploylab/deploylab/observe"

	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
	"github.com/google/go-cmp/cmp"
)

const appJS = `const express = require('express');
const app = express();
const port = 3000;
app.get('/', (req, res) => res.send('Hello World!'));
app.get('/api/:n', (req, res) => {
  let n = parseInt(req.params.n);
  let count = 0;
  if (n > 5000000000) n = 5000000000;
  for (let i = 0; i <= n; i++) count += i;
  res.send(` + "`Final count is ${count}`" + `);
});
app.listen(port, () => console.log(` + "`App listening on port ${port}`" + `));
`

const appClusterJS = `const express = require('express');
const cluster = require('cluster');
const totalCPUs = require('os').cpus().length;
const port = 3000;
if (cluster.isMaster) {
  for (let i = 0; i < totalCPUs; i++) cluster.fork();
  cluster.on('exit', (worker) => { console.log(` + "`worker ${worker.process.pid} died`" + `); cluster.fork(); });
} else {
  const app = express();
  app.get('/', (req, res) => res.send('Hello World!'));
  app.get('/api/:n', (req, res) => { /* … */ });
  app.listen(port);
}
`

const ecosystemCluster = `module.exports = {
  apps: [{
    name: 'app',
    script: 'app.js',
    instances: 'max',
    exec_mode: 'cluster',
  }],
};
`

const loadtestTxt = `Target URL:          http://localhost:3000/api/500000
Max requests:        1000
Concurrent clients:  100
Effective rps:       951
`

func tools(names ...string) []Tool {
	versions := map[string]string{"node": "v18.19.0", "npm": "9.2.0", "pm2": "7.0.4", "loadtest": "8.2.1", "curl": "7.88.1", "loadgen": ""}
	paths := map[string]string{"node": "/usr/bin/node", "npm": "/usr/bin/npm", "pm2": "/usr/local/bin/pm2", "loadtest": "/usr/local/bin/loadtest", "curl": "/usr/bin/curl", "loadgen": "/opt/deploylab/bin/loadgen"}
	var out []Tool
	for _, n := range names {
		out = append(out, Tool{Name: n, Version: versions[n], Path: paths[n]})
	}
	return out
}

func ok(port int, path, body string) HTTPProbe {
	return HTTPProbe{Port: port, Path: path, Status: 200, Body: body, Millis: 2.5, Method: "curl"}
}

func refused(port int, path string) HTTPProbe {
	return HTTPProbe{Port: port, Path: path, Millis: 0.2, Method: "curl", Error: "curl: (7) Failed to connect to 127.0.0.1 port 3000 after 0 ms: Couldn't connect to server"}
}

var baseProcs = []Process{
	{PID: 1, User: "root", Cmdline: "/sbin/init"},
	{PID: 412, PPID: 1, User: "root", Cmdline: "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups"},
}

func procs(extra ...Process) []Process { return append(append([]Process{}, baseProcs...), extra...) }

var sshListener = Listener{Addr: "0.0.0.0", Port: 22, PIDs: []int{412}, Names: []string{"sshd"}}

func twoBench() []BenchSummary {
	return []BenchSummary{
		{Server: "single", Route: "/api/500000", RPS: 951, P50us: 95000, P99us: 180000, Tool: "loadgen 1.0"},
		{Server: "cluster", Route: "/api/500000", RPS: 1474, P50us: 60000, P99us: 120000, Tool: "loadgen 1.0"},
		{Server: "single", Route: "/", RPS: 3039, P50us: 30000, P99us: 60000, Tool: "loadgen 1.0"},
		{Server: "cluster", Route: "/", RPS: 2592, P50us: 35000, P99us: 70000, Tool: "loadgen 1.0"},
	}
}

// scenario is a host as Grade sees it, and what the default rubric must give.
type scenario struct {
	name   string
	facts  HostFacts
	bench  []BenchSummary
	scores map[string]float64 // criterion → score; absent: not scored
	want   map[string]Outcome // criterion.check → outcome (all checks listed)
}

func scenarios() []scenario {
	complete := HostFacts{
		Host: "vm01", Reachable: true, ProbeVersion: "1", Hostname: "daw-ana", User: "root", Kernel: "6.1.0-27-amd64", OS: "Debian GNU/Linux 12 (bookworm)", CPUs: 2,
		Listeners: []Listener{sshListener, {Addr: "*", Port: 3000, PIDs: []int{700}, Names: []string{"PM2 v7.0.4: God"}}},
		Processes: procs(
			Process{PID: 700, PPID: 1, User: "ana", Cmdline: "PM2 v7.0.4: God Daemon (/home/ana/.pm2)"},
			Process{PID: 712, PPID: 700, User: "ana", Cmdline: "node /home/ana/practica/app.js"},
			Process{PID: 713, PPID: 700, User: "ana", Cmdline: "node /home/ana/practica/app.js"},
		),
		HTTP: []HTTPProbe{ok(3000, "/", "Hello World!"), ok(3000, "/api/50", "Final count is 1275")},
		Files: []File{
			{Path: "/home/ana/practica/app.js", Size: int64(len(appJS)), Content: appJS},
			{Path: "/home/ana/practica/app_cluster.js", Size: int64(len(appClusterJS)), Content: appClusterJS},
			{Path: "/home/ana/practica/ecosystem.config.js", Size: int64(len(ecosystemCluster)), Content: ecosystemCluster},
			{Path: "/home/ana/practica/resultados.txt", Size: int64(len(loadtestTxt)), Content: loadtestTxt},
		},
		PM2: []PM2Daemon{{PID: 700, Home: "/home/ana/.pm2", User: "ana", Apps: []PM2App{
			{Name: "app", PMID: 0, PID: 712, ExecMode: "cluster_mode", Status: "online", Instances: "2", Script: "/home/ana/practica/app.js", Cwd: "/home/ana/practica"},
			{Name: "app", PMID: 1, PID: 713, ExecMode: "cluster_mode", Status: "online", Instances: "2", Script: "/home/ana/practica/app.js", Cwd: "/home/ana/practica"},
		}}},
		PM2Dumps: []PM2Dump{{Path: "/home/ana/.pm2/dump.pm2", Apps: []PM2App{{Name: "app", ExecMode: "cluster_mode", Status: "online", Instances: "max", Script: "/home/ana/practica/app.js"}}}},
		Units:    []Unit{{Name: "pm2-ana.service", Load: "loaded", Active: "inactive", Sub: "dead", Enabled: "enabled", ExecStart: "/usr/lib/node_modules/pm2/bin/pm2 resurrect", User: "ana"}},
		Tools:    tools("node", "npm", "pm2", "loadtest", "curl"),
		History: []HistoryLine{
			{File: "/home/ana/.bash_history", Line: "node app.js"},
			{File: "/home/ana/.bash_history", Line: "loadtest -n 1000 -c 100 http://localhost:3000/api/500000"},
			{File: "/home/ana/.bash_history", Line: "pm2 start ecosystem.config.js"},
			{File: "/home/ana/.bash_history", Line: "pm2 save"},
		},
		Blocking: []BlockingProbe{{Port: 3000, HeavyPath: "/api/5000000000", ShortPath: "/", HeavyStatus: 200, HeavyMillis: 5210, ShortStatus: 200, ShortMillis: 4.2, OffsetMillis: 502}},
	}

	noCluster := HostFacts{
		Host: "vm02", Reachable: true, ProbeVersion: "1", Hostname: "daw-bea", User: "root", CPUs: 2,
		Listeners: []Listener{sshListener, {Addr: "*", Port: 8080, PIDs: []int{900}, Names: []string{"node"}}},
		Processes: procs(Process{PID: 900, PPID: 880, User: "bea", Cmdline: "node index.js"}),
		HTTP:      []HTTPProbe{ok(8080, "/", "Hola Mundo"), ok(8080, "/api/50", "La suma es 1275")},
		Files: []File{{Path: "/home/bea/servidor/index.js", Content: `const express = require("express")
const app = express()
app.get("/", (req, res) => res.send("Hola Mundo"))
app.get("/api/:n", (req, res) => { let s = 0; for (let i = 0; i <= req.params.n; i++) s += i; res.send("La suma es " + s) })
app.listen(8080)
`}},
		Tools:    tools("node", "npm", "loadtest"),
		History:  []HistoryLine{{File: "/home/bea/.bash_history", Line: "npx loadtest -n 1000 -c 100 http://localhost:8080/api/500000"}},
		Blocking: []BlockingProbe{{Port: 8080, HeavyPath: "/api/5000000000", ShortPath: "/", HeavyStatus: 200, HeavyMillis: 5200, ShortStatus: 200, ShortMillis: 4690, OffsetMillis: 501}},
	}

	fork := HostFacts{
		Host: "vm03", Reachable: true, ProbeVersion: "1", Hostname: "daw-carlos", User: "root", CPUs: 2,
		Listeners: []Listener{sshListener, {Addr: "*", Port: 3000, PIDs: []int{1210}, Names: []string{"node"}}},
		Processes: procs(
			Process{PID: 1200, PPID: 1, User: "root", Cmdline: "PM2 v5.3.1: God Daemon (/root/.pm2)"},
			Process{PID: 1210, PPID: 1200, User: "root", Cmdline: "node /root/app/server.js"},
		),
		HTTP: []HTTPProbe{ok(3000, "/", "Hello World!"), ok(3000, "/api/50", "Final count is 1275")},
		Files: []File{
			{Path: "/root/app/server.js", Content: appJS},
			{Path: "/root/app/app_cluster.js", Content: appClusterJS},
			{Path: "/root/app/ecosystem.config.js", Content: "module.exports = { apps: [{ name: 'server', script: 'server.js', instances: 0 }] }\n"},
		},
		PM2:      []PM2Daemon{{PID: 1200, Home: "/root/.pm2", User: "root", Apps: []PM2App{{Name: "server", PID: 1210, ExecMode: "fork_mode", Status: "online", Instances: "1", Restarts: 3, Script: "/root/app/server.js"}}}},
		PM2Dumps: []PM2Dump{{Path: "/root/.pm2/dump.pm2", Apps: []PM2App{{Name: "server", ExecMode: "fork_mode", Status: "online", Script: "/root/app/server.js"}}}},
		Units:    []Unit{{Name: "pm2-root.service", Load: "loaded", Active: "active", Sub: "running", Enabled: "enabled"}},
		Tools:    tools("node", "npm", "pm2"),
		Blocking: []BlockingProbe{{Port: 3000, HeavyPath: "/api/5000000000", ShortPath: "/", HeavyStatus: 200, HeavyMillis: 5300, ShortStatus: 200, ShortMillis: 4750, OffsetMillis: 500}},
	}

	stopped := HostFacts{
		Host: "vm04", Reachable: true, ProbeVersion: "1", Hostname: "daw-dani", User: "root", CPUs: 2,
		Listeners: []Listener{sshListener},
		Processes: procs(Process{PID: 640, PPID: 1, User: "dani", Cmdline: "PM2 v7.0.4: God Daemon (/home/dani/.pm2)"}),
		Files: []File{
			{Path: "/home/dani/p4/app.js", Content: appJS},
			{Path: "/home/dani/p4/ecosystem.config.js", Content: ecosystemCluster},
		},
		PM2: []PM2Daemon{{PID: 640, Home: "/home/dani/.pm2", User: "dani", Apps: []PM2App{
			{Name: "app", PMID: 0, ExecMode: "cluster_mode", Status: "stopped", Instances: "2", Script: "/home/dani/p4/app.js"},
			{Name: "app", PMID: 1, ExecMode: "cluster_mode", Status: "stopped", Instances: "2", Script: "/home/dani/p4/app.js"},
		}}},
		Tools: tools("node", "npm", "pm2"),
	}

	unreachable := HostFacts{Host: "vm05", Reachable: false, Error: "dial tcp 192.0.2.5:22: i/o timeout"}

	deploylab := HostFacts{
		Host: "lab1", Reachable: true, ProbeVersion: "1", Hostname: "deploylab-lab1", User: "root", CPUs: 2,
		Listeners: []Listener{sshListener,
			{Addr: "*", Port: 3000, PIDs: []int{501}, Names: []string{"sumserver"}},
			{Addr: "*", Port: 3001, PIDs: []int{520}, Names: []string{"sumcluster"}},
		},
		Processes: procs(
			Process{PID: 501, PPID: 1, User: "deploylab", Cmdline: "/opt/deploylab/bin/sumserver --port 3000"},
			Process{PID: 520, PPID: 1, User: "deploylab", Cmdline: "/opt/deploylab/bin/sumcluster --port 3001 --instances 0"},
			Process{PID: 531, PPID: 520, User: "deploylab", Cmdline: "/opt/deploylab/bin/sumcluster --port 3001 --instances 0 --worker 1"},
			Process{PID: 532, PPID: 520, User: "deploylab", Cmdline: "/opt/deploylab/bin/sumcluster --port 3001 --instances 0 --worker 2"},
		),
		HTTP: []HTTPProbe{ok(3000, "/", "Hello World!"), ok(3000, "/api/50", "Final count is 1275"), ok(3001, "/", "Hello World!"), ok(3001, "/api/50", "Final count is 1275")},
		Files: []File{
			{Path: "/etc/systemd/system/deploylab-sumserver.service", Content: "[Service]\nExecStart=/opt/deploylab/bin/sumserver --port 3000\n"},
			{Path: "/etc/systemd/system/deploylab-sumcluster.service", Content: "[Service]\nExecStart=/opt/deploylab/bin/sumcluster --port 3001 --instances 0\nExecReload=/bin/kill -HUP $MAINPID\n"},
		},
		Units: []Unit{
			{Name: "deploylab-sumcluster.service", Load: "loaded", Active: "active", Sub: "running", Enabled: "enabled", ExecStart: "/opt/deploylab/bin/sumcluster --port 3001 --instances 0", User: "deploylab"},
			{Name: "deploylab-sumserver.service", Load: "loaded", Active: "active", Sub: "running", Enabled: "enabled", ExecStart: "/opt/deploylab/bin/sumserver --port 3000", User: "deploylab"},
		},
		Tools: tools("loadgen", "curl"),
		Blocking: []BlockingProbe{
			{Port: 3000, HeavyPath: "/api/5000000000", ShortPath: "/", HeavyStatus: 200, HeavyMillis: 5100, ShortStatus: 200, ShortMillis: 4600, OffsetMillis: 500},
			{Port: 3001, HeavyPath: "/api/5000000000", ShortPath: "/", HeavyStatus: 200, HeavyMillis: 5150, ShortStatus: 200, ShortMillis: 3.1, OffsetMillis: 500},
		},
	}

	// Probed without root: the sockets' processes are not visible.
	noRoot := complete
	noRoot.Host = "vm07"
	noRoot.User = "ana"
	noRoot.Listeners = []Listener{{Addr: "0.0.0.0", Port: 22}, {Addr: "*", Port: 3000}}
	noRoot.PM2 = []PM2Daemon{{PID: 700, Home: "/home/ana/.pm2", User: "ana", Error: "the daemon belongs to ana; the probe runs as pepe (use sudo)"}}

	return []scenario{
		{name: "complete", facts: complete, bench: twoBench(),
			scores: map[string]float64{"sin_cluster": 2, "con_cluster": 2, "carga": 2, "pm2": 2},
			want: map[string]Outcome{
				"sin_cluster.codigo": Pass, "sin_cluster.raiz": Pass, "sin_cluster.suma": Pass,
				"con_cluster.codigo": Pass, "con_cluster.workers": Pass, "con_cluster.suma": Pass, "con_cluster.no_bloquea": Pass,
				"carga.herramienta": Pass, "carga.ejecutada": Pass, "carga.comparativa": Pass,
				"pm2.cluster": Pass, "pm2.ecosystem": Pass, "pm2.guardada": Pass, "pm2.arranque": Pass, "pm2.respawn": Skip, "pm2.reload": Skip,
			}},
		{name: "no-cluster", facts: noCluster, bench: twoBench()[:1],
			scores: map[string]float64{"sin_cluster": 2, "con_cluster": 0, "carga": 0.75, "pm2": 0},
			want: map[string]Outcome{
				"sin_cluster.codigo": Pass, "sin_cluster.raiz": Pass, "sin_cluster.suma": Pass,
				"con_cluster.codigo": Fail, "con_cluster.workers": Fail, "con_cluster.suma": Fail, "con_cluster.no_bloquea": Fail,
				"carga.herramienta": Pass, "carga.ejecutada": Fail, "carga.comparativa": Fail,
				"pm2.cluster": Fail, "pm2.ecosystem": Fail, "pm2.guardada": Fail, "pm2.arranque": Fail, "pm2.respawn": Skip, "pm2.reload": Skip,
			}},
		{name: "pm2-fork", facts: fork,
			scores: map[string]float64{"sin_cluster": 2, "con_cluster": 0.4, "carga": 0, "pm2": 1.2},
			want: map[string]Outcome{
				"sin_cluster.codigo": Pass, "sin_cluster.raiz": Pass, "sin_cluster.suma": Pass,
				"con_cluster.codigo": Pass, "con_cluster.workers": Fail, "con_cluster.suma": Fail, "con_cluster.no_bloquea": Fail,
				"carga.herramienta": Fail, "carga.ejecutada": Fail, "carga.comparativa": Skip,
				"pm2.cluster": Fail, "pm2.ecosystem": Fail, "pm2.guardada": Pass, "pm2.arranque": Pass, "pm2.respawn": Skip, "pm2.reload": Skip,
			}},
		{name: "app-stopped", facts: stopped,
			scores: map[string]float64{"sin_cluster": 0.5, "con_cluster": 0.4, "carga": 0, "pm2": 0.6},
			want: map[string]Outcome{
				"sin_cluster.codigo": Pass, "sin_cluster.raiz": Fail, "sin_cluster.suma": Fail,
				"con_cluster.codigo": Pass, "con_cluster.workers": Fail, "con_cluster.suma": Fail, "con_cluster.no_bloquea": Fail,
				"carga.herramienta": Fail, "carga.ejecutada": Fail, "carga.comparativa": Skip,
				"pm2.cluster": Fail, "pm2.ecosystem": Pass, "pm2.guardada": Fail, "pm2.arranque": Fail, "pm2.respawn": Skip, "pm2.reload": Skip,
			}},
		{name: "unreachable", facts: unreachable, bench: twoBench(),
			scores: map[string]float64{},
			want: map[string]Outcome{
				"sin_cluster.codigo": Error, "sin_cluster.raiz": Error, "sin_cluster.suma": Error,
				"con_cluster.codigo": Error, "con_cluster.workers": Error, "con_cluster.suma": Error, "con_cluster.no_bloquea": Error,
				"carga.herramienta": Error, "carga.ejecutada": Error, "carga.comparativa": Error,
				"pm2.cluster": Error, "pm2.ecosystem": Error, "pm2.guardada": Error, "pm2.arranque": Error, "pm2.respawn": Error, "pm2.reload": Error,
			}},
		{name: "deploylab", facts: deploylab, bench: twoBench(),
			scores: map[string]float64{"sin_cluster": 2, "con_cluster": 2, "carga": 2, "pm2": 2},
			want: map[string]Outcome{
				"sin_cluster.codigo": Pass, "sin_cluster.raiz": Pass, "sin_cluster.suma": Pass,
				"con_cluster.codigo": Pass, "con_cluster.workers": Pass, "con_cluster.suma": Pass, "con_cluster.no_bloquea": Pass,
				"carga.herramienta": Pass, "carga.ejecutada": Pass, "carga.comparativa": Pass,
				"pm2.cluster": Pass, "pm2.ecosystem": Pass, "pm2.guardada": Pass, "pm2.arranque": Pass, "pm2.respawn": Skip, "pm2.reload": Skip,
			}},
		{name: "no-root", facts: noRoot, bench: twoBench(),
			scores: map[string]float64{"sin_cluster": 2, "con_cluster": 2, "carga": 2, "pm2": 2},
			want: map[string]Outcome{
				"sin_cluster.codigo": Pass, "sin_cluster.raiz": Pass, "sin_cluster.suma": Pass,
				"con_cluster.codigo": Pass, "con_cluster.workers": Error, "con_cluster.suma": Error, "con_cluster.no_bloquea": Error,
				"carga.herramienta": Pass, "carga.ejecutada": Pass, "carga.comparativa": Pass,
				"pm2.cluster": Error, "pm2.ecosystem": Pass, "pm2.guardada": Pass, "pm2.arranque": Pass, "pm2.respawn": Skip, "pm2.reload": Skip,
			}},
	}
}

func TestGrade(t *testing.T) {
	r := loadDefault(t)
	for _, sc := range scenarios() {
		t.Run(sc.name, func(t *testing.T) {
			rep := Score(r, sc.facts, sc.bench)
			got := map[string]Outcome{}
			scores := map[string]float64{}
			for _, c := range rep.Criteria {
				if c.Manual {
					if c.Scored || len(c.Checks) > 0 {
						t.Errorf("manual criterion %s scored", c.ID)
					}
					continue
				}
				if c.Scored {
					scores[c.ID] = c.Score
				}
				for _, ch := range c.Checks {
					got[c.ID+"."+ch.ID] = ch.Outcome
					if ch.Outcome != Pass && ch.Reason == "" {
						t.Errorf("%s.%s: %s without a reason", c.ID, ch.ID, ch.Outcome)
					}
					if ch.Outcome == Pass && ch.Evidence == "" {
						t.Errorf("%s.%s: pass without evidence", c.ID, ch.ID)
					}
				}
			}
			text := reportText(rep)
			if d := cmp.Diff(sc.want, got); d != "" {
				t.Errorf("outcomes (-want +got):\n%s\n%s", d, text)
			}
			if d := cmp.Diff(sc.scores, scores); d != "" {
				t.Errorf("scores (-want +got):\n%s\n%s", d, text)
			}
			sum := 0.0
			for _, v := range scores {
				sum += v
			}
			if round2(sum) != rep.Score {
				t.Errorf("report score %v != sum of criteria %v", rep.Score, sum)
			}
			golden.Check(t, filepath.Join("testdata", "grade", sc.name+".golden"), []byte(text))
			// The facts are shared with package gradebook's tests.
			data, err := json.MarshalIndent(struct {
				Facts HostFacts
				Bench []BenchSummary
			}{sc.facts, sc.bench}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "facts", sc.name+".json"), []byte(string(data)+"\n"))
		})
	}
}

// TestGradeIsPure: the same inputs give the same report, and the inputs are
// not modified.
func TestGradeIsPure(t *testing.T) {
	r := loadDefault(t)
	for _, sc := range scenarios() {
		before, _ := json.Marshal(sc.facts)
		a := reportText(Score(r, sc.facts, sc.bench))
		b := reportText(Score(r, sc.facts, sc.bench))
		after, _ := json.Marshal(sc.facts)
		if a != b || string(before) != string(after) {
			t.Errorf("%s: Grade is not pure", sc.name)
		}
	}
}

// TestParseProbeTestdata parses captured and edge-case probe outputs.
func TestParseProbeTestdata(t *testing.T) {
	for _, name := range []string{"student-pm2", "proc-fallback"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "probe", name+".out"))
			if err != nil {
				t.Fatal(err)
			}
			f, err := ParseProbe(data)
			if err != nil {
				t.Fatal(err)
			}
			js, err := json.MarshalIndent(f, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "probe", name+".golden.json"), []byte(string(js)+"\n"))
			if strings.Contains(string(js), "not-kept") {
				t.Errorf("PM2's environment leaked into the facts")
			}
			var servers []string
			for _, s := range f.Servers(defaultAppRe()) {
				servers = append(servers, s.Describe())
			}
			golden.Check(t, filepath.Join("testdata", "probe", name+".servers"), []byte(strings.Join(servers, "\n")+"\n"))
		})
	}
	if _, err := ParseProbe([]byte("this is not it\n")); !errors.Is(err, observe.ErrNotProbe) {
		t.Errorf("not a probe: %v", err)
	}
	// Output cut short: parsed as far as it goes, and noted.
	data, _ := os.ReadFile(filepath.Join("testdata", "probe", "proc-fallback.out"))
	f, err := ParseProbe(data)
	if err != nil || len(f.Notes) == 0 || !strings.Contains(f.Notes[len(f.Notes)-1], "cut short") || f.CPUs != 1 {
		t.Errorf("truncated output: %v %+v", err, f.Notes)
	}
}
