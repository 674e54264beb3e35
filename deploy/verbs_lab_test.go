package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/syncbuf"
	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
)

func verbCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func upWith(t *testing.T, b *testBuilder, h lab.Host, sup string) *Recap {
	t.Helper()
	d, err := NewDeployment(DeploymentOptions{Supervisor: sup})
	if err != nil {
		t.Fatal(err)
	}
	obs := &lines{}
	rc, err := Up(verbCtx(t), labTargets(h), UpOptions{App: d, Build: b.build, Dial: labDial, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range obs.m[h.Name] {
		t.Log(l)
	}
	if err := rc.Err(); err != nil {
		t.Fatalf("up --supervisor %s: %v", sup, err)
	}
	return rc
}

func lsOne(t *testing.T, h lab.Host) map[string]ProcStatus {
	t.Helper()
	return lsWith(t, h, nil)
}

// lsWith lists h's services (node: the Node apps) by name.
func lsWith(t *testing.T, h lab.Host, app App) map[string]ProcStatus {
	t.Helper()
	hosts, rc := Ls(verbCtx(t), labTargets(h), LsOptions{Dial: labDial, App: app})
	if err := rc.Err(); err != nil {
		t.Fatalf("ls (%v): %v", app, err)
	}
	var buf bytes.Buffer
	if err := WriteLs(&buf, hosts); err != nil {
		t.Fatal(err)
	}
	t.Logf("ls:\n%s", buf.String())
	m := map[string]ProcStatus{}
	for _, s := range hosts[0].Services {
		m[s.Name] = s
	}
	return m
}

func control(t *testing.T, h lab.Host, verb Verb, svc string) *HostReport {
	t.Helper()
	d, _ := NewDeployment(DeploymentOptions{})
	svcs, err := d.SelectServices(svc)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := Control(verbCtx(t), labTargets(h), verb, ControlOptions{Services: svcs, Dial: labDial})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rc.Hosts[0].Tasks {
		t.Logf("%s %s: %s %s%s", verb, r.Task, r.Status, r.Msg, r.Error)
	}
	if err := rc.Err(); err != nil {
		t.Fatalf("%s %s: %v", verb, svc, err)
	}
	return rc.Hosts[0]
}

// followLogs runs logs -f (o, with Follow) on h, does act a second after
// it started, waits up to 20s until shown(output before act, output now)
// holds, then cancels it and checks it returns without an error. It returns
// the output and whether shown held.
func followLogs(t *testing.T, h lab.Host, o LogsOptions, act func(), shown func(before, now string) bool) (string, bool) {
	t.Helper()
	o.Lines, o.Follow, o.Poll, o.Dial = 1, true, 200*time.Millisecond, labDial
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan error, 1)
	go func() { done <- Logs(ctx, labTargets(h), &out, o) }()
	time.Sleep(time.Second)
	before := out.String()
	act()
	deadline := time.Now().Add(20 * time.Second)
	for !shown(before, out.String()) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("logs -f did not return after cancel")
	}
	return out.String(), shown(before, out.String())
}

// waitLs polls ls until ok accepts a service's row.
func waitLs(t *testing.T, h lab.Host, svc string, what string, ok func(ProcStatus) bool) ProcStatus {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := lsOne(t, h)[svc]
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s not seen in 30s; last: %+v", svc, what, st)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func downAndCheck(t *testing.T, h lab.Host) {
	t.Helper()
	for i, wantChanged := range []bool{true, false} {
		rc, err := Down(verbCtx(t), labTargets(h), DownOptions{Dial: labDial})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rc.Hosts[0].Tasks {
			t.Logf("down #%d %s: %s %s%s", i+1, r.Task, r.Status, r.Msg, r.Error)
		}
		if err := rc.Err(); err != nil {
			t.Fatalf("down #%d: %v", i+1, err)
		}
		if got := rc.Hosts[0].Changed > 0; got != wantChanged {
			t.Errorf("down #%d changed=%d, want changed: %v", i+1, rc.Hosts[0].Changed, wantChanged)
		}
	}
	// Independently of down's own verify task: nothing left.
	d, _ := NewDeployment(DeploymentOptions{})
	if out := remoteRun(t, h, LeftoversScript(d)+"; find /etc/systemd /opt /run -name '*deploylab*' 2>/dev/null; getent passwd deploylab; true"); strings.TrimSpace(out) != "" {
		t.Errorf("down left on the host:\n%s", out)
	}
	if out := remoteRun(t, h, "systemctl list-unit-files 'deploylab-*' 'pm2-*' --no-legend; systemctl --failed --no-legend; true"); strings.TrimSpace(out) != "" {
		t.Errorf("units left after down:\n%s", out)
	}
}

// TestVerbsLab runs the verbs on lab hosts: under systemd on one host and
// under PM2 on the other, at the same time.
func TestVerbsLab(t *testing.T) {
	t.Parallel() // its own lab; no throughput assertion (TestUpNodeLab, which has one, runs before the parallel tests)
	l := labtest.Start(t, labtest.Options{Hosts: 2, Variant: lab.VariantNode})
	hosts := l.Hosts()
	b := &testBuilder{cache: t.TempDir()}
	// Build once before the parallel subtests.
	if _, err := b.build(context.Background(), "amd64"); err != nil {
		t.Fatalf("build: %v", err)
	}

	t.Run("systemd", func(t *testing.T) {
		t.Parallel()
		h := hosts[0]
		upWith(t, b, h, SupervisorSystemd)
		cpus, _ := strconv.Atoi(strings.TrimSpace(remoteRun(t, h, "nproc")))
		remoteRun(t, h, "for i in 1 2 3 4 5 6; do curl -sS -m 5 -o /dev/null http://127.0.0.1:3001/api/50; curl -sS -m 5 -o /dev/null http://127.0.0.1:3000/; done")
		st := lsOne(t, h)
		single, cl := st["sumserver"], st["sumcluster"]
		if single.Status != "online" || single.PID == 0 || single.Memory == 0 || single.Mode != "fork" {
			t.Errorf("sumserver: %+v, want online with a pid and memory", single)
		}
		if cl.Status != "online" || cl.Mode != "cluster" || len(cl.Workers) != cpus {
			t.Errorf("sumcluster: status %s mode %s, %d workers, want online cluster with %d (CPUs)", cl.Status, cl.Mode, len(cl.Workers), cpus)
		}
		if cl.Served == nil || *cl.Served < 6 {
			t.Errorf("sumcluster served %v, want >= 6 after 6 requests", cl.Served)
		}
		if single.Served == nil || *single.Served < 6 {
			t.Errorf("sumserver served %v, want >= 6 after 6 requests (its statistics socket)", single.Served)
		}
		for _, w := range cl.Workers {
			if w.PID == 0 || w.Status != "ready" || w.Memory == 0 {
				t.Errorf("worker: %+v", w)
			}
		}

		// kill -9 of the master: systemd restarts it; ls counts it.
		remoteRun(t, h, "kill -9 "+strconv.Itoa(cl.PID))
		after := waitLs(t, h, "sumcluster", "restart after kill -9", func(p ProcStatus) bool {
			return p.Status == "online" && p.Restarts >= 1 && p.PID != cl.PID && p.PID != 0 && len(p.Workers) == cpus
		})

		// stop / start / restart / reload change what ls shows.
		control(t, h, VerbStop, "cluster")
		if s := lsOne(t, h); s["sumcluster"].Status != "stopped" || s["sumcluster"].PID != 0 || s["sumserver"].Status != "online" {
			t.Errorf("after stop cluster: %+v / %+v", s["sumcluster"], s["sumserver"])
		}
		if r := control(t, h, VerbStop, "cluster"); r.Changed != 0 {
			t.Errorf("a second stop changed something")
		}
		control(t, h, VerbStart, "cluster")
		started := waitLs(t, h, "sumcluster", "online after start", func(p ProcStatus) bool { return p.Status == "online" && p.PID != after.PID && len(p.Workers) == cpus })
		control(t, h, VerbRestart, "single")
		if s := lsOne(t, h)["sumserver"]; s.PID == single.PID || s.Status != "online" {
			t.Errorf("restart single: pid %d -> %d, %s", single.PID, s.PID, s.Status)
		}
		rep := control(t, h, VerbReload, "all")
		var msgs []string
		for _, r := range rep.Tasks {
			msgs = append(msgs, r.Msg)
		}
		if all := strings.Join(msgs, "\n"); !strings.Contains(all, "sumserver has no zero-downtime reload: restarted") || !strings.Contains(all, "reloaded (zero downtime)") {
			t.Errorf("reload messages:\n%s", all)
		}
		reloaded := lsOne(t, h)["sumcluster"]
		if reloaded.PID != started.PID {
			t.Errorf("reload changed the master's pid %d -> %d", started.PID, reloaded.PID)
		}
		for _, w := range reloaded.Workers {
			for _, old := range started.Workers {
				if w.PID == old.PID {
					t.Errorf("worker pid %d survived the reload", w.PID)
				}
			}
		}

		// logs: the journal's lines of the units.
		var buf bytes.Buffer
		if err := Logs(verbCtx(t), labTargets(h), &buf, LogsOptions{Lines: 20, Dial: labDial}); err != nil {
			t.Fatalf("logs: %v", err)
		}
		if !strings.Contains(buf.String(), "deploylab") || strings.Count(buf.String(), "\n") < 3 {
			t.Errorf("logs:\n%s", buf.String())
		}
		// logs -f sees a new line, stops on cancel.
		if s, ok := followLogs(t, h, LogsOptions{}, func() { control(t, h, VerbRestart, "single") }, func(_, s string) bool {
			return strings.Contains(s, "Started") || strings.Contains(s, "Stopping")
		}); !ok {
			t.Errorf("logs -f did not show the restart:\n%s", s)
		}

		var js bytes.Buffer
		hs, _ := Ls(verbCtx(t), labTargets(h), LsOptions{Dial: labDial})
		if err := WriteLsJSON(&js, hs); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Schema string       `json:"schema"`
			Hosts  []HostStatus `json:"hosts"`
		}
		if err := json.Unmarshal(js.Bytes(), &doc); err != nil || doc.Schema != "deploylab.ls/v1" || len(doc.Hosts) != 1 || len(doc.Hosts[0].Services) != 2 {
			t.Errorf("ls JSON: %v\n%s", err, js.String())
		}

		downAndCheck(t, h)
	})

	t.Run("pm2", func(t *testing.T) {
		t.Parallel()
		h := hosts[1]
		upWith(t, b, h, SupervisorPM2)
		for _, port := range []string{"3000", "3001"} {
			if got := remoteRun(t, h, "curl -sS -m 10 http://127.0.0.1:"+port+"/api/50"); got != API50Body {
				t.Errorf(":%s answered %q", port, got)
			}
		}
		d, _ := NewDeployment(DeploymentOptions{})
		procs, err := parseJlist(lastLine(remoteRun(t, h, pm2Env(d)+" pm2 jlist")))
		if err != nil {
			t.Fatalf("pm2 jlist: %v", err)
		}
		online := 0
		for _, p := range procs {
			if strings.HasPrefix(p.Name, "deploylab-") && p.Status == "online" && p.ExecMode == "fork_mode" {
				online++
			}
		}
		if online != 2 {
			t.Errorf("pm2 jlist: %d deploylab apps online in fork mode, want 2: %+v", online, procs)
		}
		if out := remoteRun(t, h, "systemctl is-enabled "+PM2StartupUnit); strings.TrimSpace(out) != "enabled" {
			t.Errorf("%s: %s", PM2StartupUnit, out)
		}
		// A second up changes nothing.
		if rc := upWith(t, b, h, SupervisorPM2); rc.Hosts[0].Changed != 0 {
			t.Errorf("second up under pm2 changed %d tasks", rc.Hosts[0].Changed)
		}
		remoteRun(t, h, "for i in 1 2 3 4 5; do curl -sS -m 5 -o /dev/null http://127.0.0.1:3001/; done")
		st := lsOne(t, h)
		cl := st["sumcluster"]
		if st["sumserver"].Status != "online" || st["sumserver"].Served == nil || cl.Status != "online" || cl.Supervisor != SupervisorPM2 || len(cl.Workers) == 0 || cl.Served == nil || *cl.Served < 5 {
			t.Errorf("ls under pm2: %+v / %+v", st["sumserver"], cl)
		}
		control(t, h, VerbStop, "single")
		if s := lsOne(t, h)["sumserver"]; s.Status != "stopped" {
			t.Errorf("after pm2 stop: %+v", s)
		}
		control(t, h, VerbStart, "single")
		control(t, h, VerbReload, "cluster")
		if s := lsOne(t, h)["sumcluster"]; s.PID != cl.PID || s.Status != "online" {
			t.Errorf("reload under pm2 replaced the master: %d -> %d (%s)", cl.PID, s.PID, s.Status)
		}
		var buf bytes.Buffer
		if err := Logs(verbCtx(t), labTargets(h), &buf, LogsOptions{Lines: 10, Dial: labDial}); err != nil {
			t.Errorf("logs under pm2: %v", err)
		}
		t.Logf("pm2 logs:\n%s", buf.String())

		// Back to systemd without down: up removes PM2's apps (they hold
		// the ports), daemon, startup unit and user, then runs the units.
		rc := upWith(t, b, h, SupervisorSystemd)
		var units TaskResult
		for _, r := range rc.Hosts[0].Tasks {
			if r.Task == TaskUnits {
				units = r
			}
		}
		if units.Status != Changed || !strings.Contains(units.Msg, "pm2:deploylab-sumserver") || !strings.Contains(units.Msg, PM2StartupUnit) || !strings.Contains(units.Msg, "user:"+PM2User) {
			t.Errorf("up --supervisor systemd after pm2: units task %s %q, want PM2's apps, unit and user removed", units.Status, units.Msg)
		}
		st = lsOne(t, h)
		if s, c := st["sumserver"], st["sumcluster"]; s.Status != "online" || c.Status != "online" || c.Supervisor != SupervisorSystemd {
			t.Errorf("ls after the switch to systemd: %+v / %+v", s, c)
		}
		if out := remoteRun(t, h, "systemctl is-active deploylab-sumserver.service deploylab-sumcluster.service; pgrep -f '^PM2 v' || true; id -u "+PM2User+" 2>/dev/null || true"); out != "active\nactive\n" {
			t.Errorf("after the switch to systemd: %q, want both units active, no PM2 daemon, no user %s", out, PM2User)
		}
		if rc := upWith(t, b, h, SupervisorSystemd); rc.Hosts[0].Changed != 0 {
			t.Errorf("second up under systemd after the switch changed %d tasks: %v", rc.Hosts[0].Changed, changedTasks(rc.Hosts[0]))
		}
		downAndCheck(t, h)
	})
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
