package checks

import (
	"strings"
	"testing"
)

// The grading principles of issue 14 (rubric.yaml's header, README's "How
// marks are given"), each as a table test over HostFacts fixtures graded
// with the default rubric.

// stoppedStudent did the work but nothing serves now: the code is there;
// history, dumps and units are added per case.
func stoppedStudent() HostFacts {
	return HostFacts{
		Host: "vm", Reachable: true, User: "root", CPUs: 2,
		Listeners: []Listener{sshListener},
		Processes: procs(),
		Files: []File{
			{Path: "/home/eva/p/app.js", Content: appJS},
			{Path: "/home/eva/p/app_cluster.js", Content: appClusterJS},
		},
		Tools: tools("node", "npm", "loadtest"),
	}
}

func hist(lines ...string) []HistoryLine {
	var out []HistoryLine
	for _, l := range lines {
		out = append(out, HistoryLine{File: "/home/eva/.bash_history", Line: l})
	}
	return out
}

// pm2Running is PM2 (as user, home) with the given apps online.
func pm2Running(user, home string, apps ...PM2App) HostFacts {
	f := stoppedStudent()
	f.Processes = procs(Process{PID: 700, PPID: 1, User: user, Cmdline: "PM2 v7.0.4: God Daemon (" + home + "/.pm2)"})
	f.PM2 = []PM2Daemon{{PID: 700, Home: home + "/.pm2", User: user, Apps: apps}}
	return f
}

func clusterApps(n int, script string) []PM2App {
	var out []PM2App
	for i := range n {
		out = append(out, PM2App{Name: "app", PMID: i, PID: 800 + i, ExecMode: "cluster_mode", Status: "online", Instances: "max", Script: script})
	}
	return out
}

type principleCase struct {
	name   string
	facts  HostFacts
	bench  []BenchSummary
	check  string // criterion.check
	want   Outcome
	credit float64 // expected Credit
	says   string  // in Reason or Evidence
}

func runPrinciples(t *testing.T, tests []principleCase) {
	t.Helper()
	r := loadDefault(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc := Score(r, tc.facts, tc.bench)
			res, ok := resultOf(sc, tc.check)
			if !ok {
				t.Fatalf("no result %s", tc.check)
			}
			if res.Outcome != tc.want || res.Credit != tc.credit {
				t.Errorf("%s: %s credit %v, want %s credit %v\nevidence: %s\nreason: %s", tc.check, res.Outcome, res.Credit, tc.want, tc.credit, res.Evidence, res.Reason)
			}
			text := res.Reason + " | " + res.Evidence
			if !strings.Contains(text, tc.says) {
				t.Errorf("%s says %q, want it to contain %q", tc.check, text, tc.says)
			}
			if res.Partial() {
				// Principle 6: one sentence, what was missing and what was found.
				if strings.Count(res.Reason, ". ") > 0 || !strings.HasSuffix(res.Reason, ".") || !strings.Contains(res.Reason, "falta «") || !strings.Contains(res.Reason, ", pero ") {
					t.Errorf("partial reason is not one sentence with what is missing and what was found: %q", res.Reason)
				}
				if !strings.Contains(res.Evidence, "evidencia de trabajo: ") {
					t.Errorf("partial evidence not quoted: %q", res.Evidence)
				}
			}
		})
	}
}

func resultOf(sc Scorecard, id string) (Result, bool) {
	crit, check, _ := strings.Cut(id, ".")
	for _, c := range sc.Criteria {
		if c.ID != crit {
			continue
		}
		for _, r := range c.Checks {
			if r.ID == check {
				return r, true
			}
		}
	}
	return Result{}, false
}

func with(f HostFacts, fn func(*HostFacts)) HostFacts {
	fn(&f)
	return f
}

// Principle 1: evidence of work earns a stated share, quoted.
func TestPrincipleEvidenceEarnsPartialCredit(t *testing.T) {
	runAndTested := hist("cd p", "node app.js", "loadtest -n 1000 -c 100 http://localhost:3000/api/500000")
	runOnly := hist("node app.js &")
	clusterRunAndTested := hist("node app_cluster.js", "npx loadtest -n 1000 http://localhost:3000/api/500000")
	runPrinciples(t, []principleCase{
		{"run and load-tested: half", with(stoppedStudent(), func(f *HostFacts) { f.History = runAndTested }), nil,
			"sin_cluster.suma", Fail, 0.5, "Parcial (50 % de esta comprobación): falta «GET /api/50 devuelve la suma 1275»"},
		{"run only: a quarter", with(stoppedStudent(), func(f *HostFacts) { f.History = runOnly }), nil,
			"sin_cluster.raiz", Fail, 0.25, "pero el historial muestra que la arrancaste."},
		{"code only: nothing here (the código check counts it)", stoppedStudent(), nil,
			"sin_cluster.suma", Fail, 0, "ningún servidor de la aplicación a la escucha"},
		{"code only: código passes", stoppedStudent(), nil,
			"sin_cluster.codigo", Pass, 1, "/home/eva/p/app.js"},
		{"cluster run and load-tested", with(stoppedStudent(), func(f *HostFacts) { f.History = clusterRunAndTested }), nil,
			"con_cluster.workers", Fail, 0.5, "arrancaste el cluster y lo probaste"},
		{"cluster saved in PM2's dump", with(stoppedStudent(), func(f *HostFacts) {
			f.PM2Dumps = []PM2Dump{{Path: "/root/.pm2/dump.pm2", Apps: clusterApps(2, "/root/p/app.js")}}
		}), nil, "con_cluster.suma", Fail, 0.5, "PM2 tiene guardada (dump.pm2) la aplicación en modo cluster"},
		{"the best share wins", with(stoppedStudent(), func(f *HostFacts) { f.History = append(runOnly, runAndTested...) }), nil,
			"sin_cluster.suma", Fail, 0.5, "50 %"},
		{"serving now: full", with(pm2Running("root", "/root", clusterApps(2, "/root/p/app.js")...), func(f *HostFacts) {
			f.Listeners = append(f.Listeners, Listener{Addr: "*", Port: 3000, PIDs: []int{700}, Names: []string{"PM2 v7.0.4: God"}})
			f.Processes = append(f.Processes, Process{PID: 800, PPID: 700, User: "root", Cmdline: "node /root/p/app.js"}, Process{PID: 801, PPID: 700, User: "root", Cmdline: "node /root/p/app.js"})
			f.HTTP = []HTTPProbe{ok(3000, "/", "Hello World!"), ok(3000, "/api/50", "Final count is 1275")}
			f.History = runOnly
		}), nil, "sin_cluster.suma", Pass, 1, "Final count is 1275"},
	})
}

// Principle 2: every accepted alternative is accepted.
func TestPrincipleEveryAlternative(t *testing.T) {
	ecosystem := func(content string) HostFacts {
		return with(stoppedStudent(), func(f *HostFacts) {
			f.Files = append(f.Files, File{Path: "/root/p/ecosystem.config.js", Content: content})
		})
	}
	jsonEco := with(stoppedStudent(), func(f *HostFacts) {
		f.Files = append(f.Files, File{Path: "/root/p/ecosystem.config.json", Content: `{"apps": [{"name": "app", "script": "app.js", "exec_mode": "cluster", "instances": "max"}]}`})
	})
	port8080 := with(stoppedStudent(), func(f *HostFacts) {
		f.Listeners = append(f.Listeners, Listener{Addr: "*", Port: 8080, PIDs: []int{900}, Names: []string{"node"}})
		f.Processes = append(f.Processes, Process{PID: 900, PPID: 1, User: "eva", Cmdline: "node app.js"})
		f.HTTP = []HTTPProbe{ok(8080, "/", "Hola"), ok(8080, "/api/50", "1275")}
	})
	var cases []principleCase
	for _, inst := range []string{"0", `"max"`, "'max'", "-1", "4"} {
		cases = append(cases, principleCase{"ecosystem instances " + inst,
			ecosystem("module.exports = { apps: [{ name: 'app', script: 'app.js', exec_mode: 'cluster', instances: " + inst + " }] }"), nil,
			"pm2.ecosystem", Pass, 1, "ecosystem.config.js"})
	}
	for _, i := range []string{"0", "max", "-1", "3"} {
		cases = append(cases, principleCase{"pm2 start -i " + i + " without an ecosystem",
			with(stoppedStudent(), func(f *HostFacts) { f.History = hist("pm2 start app.js -i " + i) }), nil,
			"pm2.ecosystem", Pass, 1, "pm2 start app.js -i " + i})
	}
	cases = append(cases,
		principleCase{"ecosystem as JSON with quoted keys", jsonEco, nil, "pm2.ecosystem", Pass, 1, "ecosystem.config.json"},
		principleCase{"-i -1 on 2 CPUs: one cluster instance", pm2Running("root", "/root", clusterApps(1, "/root/p/app.js")...), nil,
			"pm2.cluster", Pass, 1, "cluster_mode ×1, online 1/1"},
		principleCase{"-i max on 2 CPUs", pm2Running("eva", "/home/eva", clusterApps(2, "/home/eva/p/app.js")...), nil,
			"pm2.cluster", Pass, 1, "cluster_mode ×2"},
		principleCase{"root's startup unit pm2-root", with(stoppedStudent(), func(f *HostFacts) {
			f.Units = []Unit{{Name: "pm2-root.service", Load: "loaded", Active: "active", Enabled: "enabled"}}
		}), nil, "pm2.arranque", Pass, 1, "pm2-root.service: enabled"},
		principleCase{"any port the app listens on", port8080, nil, "sin_cluster.suma", Pass, 1, "GET :8080/api/50"},
		principleCase{"cluster.js from the statement, run with node", with(stoppedStudent(), func(f *HostFacts) {
			f.Files = []File{{Path: "/home/eva/p/cluster.js", Content: appClusterJS}}
		}), nil, "con_cluster.codigo", Pass, 1, "/home/eva/p/cluster.js"},
	)
	runPrinciples(t, cases)
}

// Principle 3: PM2 used in a weaker way earns part of the PM2 criterion.
func TestPrincipleWeakerUseOfPM2(t *testing.T) {
	fork := pm2Running("root", "/root", PM2App{Name: "app", PID: 800, ExecMode: "fork_mode", Status: "online", Script: "/root/p/app.js"})
	noApps := pm2Running("root", "/root")
	usedNotRunning := with(stoppedStudent(), func(f *HostFacts) {
		f.Tools = tools("node", "npm", "loadtest", "pm2")
		f.History = hist("npm install -g pm2", "pm2 ls")
	})
	runPrinciples(t, []principleCase{
		{"fork mode: half", fork, nil, "pm2.cluster", Fail, 0.5, "pero PM2 ejecuta la aplicación en modo fork (un solo proceso)."},
		{"started with no apps: a quarter", noApps, nil, "pm2.cluster", Fail, 0.25, "pero PM2 está arrancado, aunque sin la aplicación en marcha."},
		{"installed and typed, not running (rebooted): a quarter", usedNotRunning, nil, "pm2.cluster", Fail, 0.25, "pero PM2 está instalado y el historial muestra que lo usaste, aunque no está en marcha."},
		{"typed but not installed: nothing", with(usedNotRunning, func(f *HostFacts) { f.Tools = tools("node", "npm", "loadtest") }), nil, "pm2.cluster", Fail, 0, "PM2 no está en ejecución"},
		{"installed, never typed: nothing", with(usedNotRunning, func(f *HostFacts) { f.History = hist("npm install -g pm2 loadtest", "node app.js &") }), nil, "pm2.cluster", Fail, 0, "PM2 no está en ejecución"},
		{"not installed: nothing", stoppedStudent(), nil, "pm2.cluster", Fail, 0, "PM2 no está en ejecución"},
	})
	// And the criterion's mark orders them: cluster > fork > no apps > none.
	r := loadDefault(t)
	mark := func(f HostFacts) float64 {
		for _, c := range Score(r, f, nil).Criteria {
			if c.ID == "pm2" {
				return c.Score
			}
		}
		return -1
	}
	cluster := pm2Running("root", "/root", clusterApps(2, "/root/p/app.js")...)
	if !(mark(cluster) > mark(fork) && mark(fork) > mark(noApps) && mark(noApps) == mark(usedNotRunning) && mark(usedNotRunning) > mark(stoppedStudent())) {
		t.Errorf("pm2 marks: cluster %v, fork %v, no apps %v, used but not running %v, none %v", mark(cluster), mark(fork), mark(noApps), mark(usedNotRunning), mark(stoppedStudent()))
	}
}

// Principle 4: state now and what survives a reboot are separate checks.
func TestPrincipleStateNowVersusReboot(t *testing.T) {
	upNotSaved := pm2Running("root", "/root", clusterApps(2, "/root/p/app.js")...)
	savedNotUp := with(stoppedStudent(), func(f *HostFacts) {
		f.PM2Dumps = []PM2Dump{{Path: "/root/.pm2/dump.pm2", Apps: clusterApps(2, "/root/p/app.js")}}
		f.Units = []Unit{{Name: "pm2-root.service", Load: "loaded", Active: "inactive", Enabled: "enabled"}}
	})
	runPrinciples(t, []principleCase{
		{"up now: the state check passes", upNotSaved, nil, "pm2.cluster", Pass, 1, "online 2/2"},
		{"up now, never saved: guardada fails", upNotSaved, nil, "pm2.guardada", Fail, 0, "nunca se hizo pm2 save"},
		{"up now, no startup: arranque fails", upNotSaved, nil, "pm2.arranque", Fail, 0, "no existe la unidad pm2-*.service"},
		{"not up now, saved: guardada passes from dump.pm2", savedNotUp, nil, "pm2.guardada", Pass, 1, "guardada en /root/.pm2/dump.pm2"},
		{"not up now, startup enabled: arranque passes", savedNotUp, nil, "pm2.arranque", Pass, 1, "pm2-root.service: enabled"},
	})
	// Up now without persistence loses exactly the persistence share
	// (guardada + arranque: 2 of the 5 weights without --active).
	r := loadDefault(t)
	up := with(upNotSaved, func(f *HostFacts) {
		f.Files = append(f.Files, File{Path: "/root/p/ecosystem.config.js", Content: ecosystemCluster})
	})
	for _, c := range Score(r, up, nil).Criteria {
		if c.ID == "pm2" && c.Score != round2(2*3.0/5) {
			t.Errorf("pm2 up now, not persistent = %v, want %v", c.Score, round2(2*3.0/5))
		}
	}
}

// Principle 5: never a silent 0, never a number for what was not checked.
func TestPrincipleNoSilentZero(t *testing.T) {
	r := loadDefault(t)
	sc := Score(r, HostFacts{Host: "down", Error: "dial tcp: connection refused"}, twoBench())
	for _, c := range sc.Criteria {
		if c.Scored {
			t.Errorf("unreachable host: criterion %s scored %v", c.ID, c.Score)
		}
		for _, ch := range c.Checks {
			if ch.Outcome != Error || ch.Credit != 0 {
				t.Errorf("unreachable host: %s.%s %s", c.ID, ch.ID, ch.Outcome)
			}
		}
	}
	if !sc.NeedsReview || sc.Reachable {
		t.Errorf("unreachable host not flagged: %+v", sc)
	}
	// A skipped check is left out of the weights and says so.
	f := with(stoppedStudent(), func(f *HostFacts) {
		f.History = hist("loadtest -n 100 http://localhost:3000/", "loadtest -n 100 http://localhost:3000/")
	})
	sc = Score(r, f, nil)
	res, _ := resultOf(sc, "carga.comparativa")
	if res.Outcome != Skip || !strings.Contains(res.Reason, "no cuenta para la nota") {
		t.Errorf("skipped bench: %s %q", res.Outcome, res.Reason)
	}
	for _, c := range sc.Criteria {
		if c.ID == "carga" && (!c.Scored || c.Score != 2) {
			t.Errorf("carga with the bench skipped = %v (scored %v), want 2 of 2 (tool and history pass)", c.Score, c.Scored)
		}
	}
	// One load test is one version measured: half of "ejecutada".
	f = with(stoppedStudent(), func(f *HostFacts) { f.History = hist("loadtest -n 100 http://localhost:3000/") })
	sc = Score(r, f, nil)
	res, _ = resultOf(sc, "carga.ejecutada")
	if res.Outcome != Fail || res.Credit != 0.5 || !strings.Contains(res.Reason, "una sola prueba de carga") {
		t.Errorf("one load test: %s credit %v %q", res.Outcome, res.Credit, res.Reason)
	}
	for _, c := range sc.Criteria {
		if c.ID == "carga" && (!c.Scored || c.Score != 1.5) {
			t.Errorf("carga with one load test = %v (scored %v), want 1.5 of 2", c.Score, c.Scored)
		}
	}
}
