package deploy

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
)

// nodeLs lists the Node apps of h by name.
func nodeLs(t *testing.T, h lab.Host) map[string]ProcStatus {
	t.Helper()
	n, _ := NewNodeDeployment(NodeOptions{})
	return lsWith(t, h, n)
}

// nodeControlOK runs a verb on a Node app ("single", "cluster" or "all")
// and checks whether it changed something.
func nodeControlOK(t *testing.T, h lab.Host, verb Verb, svc string, wantChanged bool) *HostReport {
	t.Helper()
	n, _ := NewNodeDeployment(NodeOptions{})
	svcs, err := n.Deployment().SelectServices(svc)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := Control(verbCtx(t), labTargets(h), verb, ControlOptions{Services: svcs, Dial: labDial, App: n})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rc.Hosts[0].Tasks {
		t.Logf("%s --app node %s: %s %s: %s%s", verb, svc, r.Task, r.Status, r.Msg, r.Error)
	}
	if err := rc.Err(); err != nil {
		t.Fatalf("%s --app node %s: %v", verb, svc, err)
	}
	if got := rc.Hosts[0].Changed > 0; got != wantChanged {
		t.Errorf("%s --app node %s: changed=%d, want changed: %v", verb, svc, rc.Hosts[0].Changed, wantChanged)
	}
	return rc.Hosts[0]
}

// answers says whether port answers GET / on the host.
func answers(t *testing.T, h lab.Host, port string) bool {
	return strings.TrimSpace(remoteRun(t, h, "curl -s -m 5 http://127.0.0.1:"+port+"/ || true")) == "Hello World!"
}

// nodeVerbsLab runs ls, stop, start, restart, logs and start-after-pm2-kill
// on a host where up --app node has run.
func nodeVerbsLab(t *testing.T, h lab.Host, cpus int) {
	ls := nodeLs(t, h)
	single, cluster := ls["node-single"], ls["node-cluster"]
	if single.Status != "online" || single.Mode != "fork" || single.PID == 0 || single.Memory == 0 || single.Supervisor != SupervisorPM2 {
		t.Errorf("node-single: %+v, want online in fork mode with a pid and memory, under pm2", single)
	}
	if cluster.Status != "online" || cluster.Mode != "cluster" || len(cluster.Workers) != cpus {
		t.Errorf("node-cluster: %+v, want online with %d workers (one per CPU)", cluster, cpus)
	}
	for _, w := range cluster.Workers {
		if w.Status != "online" || w.PID == 0 || w.Memory == 0 || w.Uptime <= 0 {
			t.Errorf("node-cluster %s: %+v, want online with a pid, memory and an uptime", w.Name, w)
		}
	}

	// stop, a second stop (nothing to do), start.
	nodeControlOK(t, h, VerbStop, "single", true)
	if s := nodeLs(t, h)["node-single"]; s.Status != "stopped" || s.PID != 0 {
		t.Errorf("after stop: node-single %+v, want stopped without a pid", s)
	}
	if answers(t, h, "3100") {
		t.Error("the single app still answers after stop")
	}
	if !answers(t, h, "3101") {
		t.Error("the cluster app stopped answering when the single app was stopped")
	}
	nodeControlOK(t, h, VerbStop, "single", false)
	nodeControlOK(t, h, VerbStart, "all", true)
	if !answers(t, h, "3100") {
		t.Error("the single app does not answer after start")
	}
	nodeControlOK(t, h, VerbStart, "all", false)

	// restart: new processes, restart counts up.
	before := nodeLs(t, h)["node-cluster"]
	nodeControlOK(t, h, VerbRestart, "cluster", true)
	after := nodeLs(t, h)["node-cluster"]
	if after.Status != "online" || after.Restarts <= before.Restarts || len(after.Workers) != cpus || after.Workers[0].PID == before.Workers[0].PID {
		t.Errorf("restart: cluster %+v -> %+v, want new online workers and more restarts", before, after)
	}

	// logs: PM2's log files of both apps, each line after its file's name.
	n, _ := NewNodeDeployment(NodeOptions{})
	var buf bytes.Buffer
	if err := Logs(verbCtx(t), labTargets(h), &buf, LogsOptions{Lines: 5, Dial: labDial, App: n}); err != nil {
		t.Fatalf("logs --app node: %v", err)
	}
	t.Logf("logs --app node:\n%s", buf.String())
	for _, want := range []string{"deploylab-node-single-out-0 | ", "App listening on port 3100", "deploylab-node-cluster-out-", "App listening on port 3101"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("logs --app node: no %q", want)
		}
	}

	// logs -f: the lines PM2 writes after it started (a restart's), then
	// it stops on cancel.
	const line = "App listening on port 3100"
	if s, ok := followLogs(t, h, LogsOptions{App: n}, func() { nodeControlOK(t, h, VerbRestart, "single", true) }, func(before, now string) bool {
		return strings.Count(now, line) > strings.Count(before, line)
	}); !ok {
		t.Errorf("logs -f --app node did not show the restarted app's line:\n%s", s)
	}

	// PM2's daemon killed by hand: start brings it back through
	// pm2-<user>.service (pm2 resurrect) with the saved apps.
	c := labtest.Dial(t, h)
	if r, err := c.Run(verbCtx(t), "pm2 kill"); err != nil || r.ExitCode != 0 {
		t.Fatalf("pm2 kill: %v %s", err, r.Stderr)
	}
	if s := nodeLs(t, h)["node-single"]; s.Status != "stopped" {
		t.Errorf("ls with PM2's daemon down: node-single %+v, want stopped", s)
	}
	rep := nodeControlOK(t, h, VerbStart, "all", true)
	if r := rep.Tasks[0]; r.Status != Changed || !strings.Contains(r.Msg, "pm2 resurrect") {
		t.Errorf("start with PM2's daemon down: first task %+v, want the unit started", r)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !(answers(t, h, "3100") && answers(t, h, "3101")) {
		if time.Now().After(deadline) {
			t.Fatal("the apps do not answer 20s after start brought PM2 back")
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// nodeDownLab: down --app node --check removes nothing; down removes what up
// added (the apps, pm2-<user>.service, ~/.pm2, the app directory), and what
// it recorded installing (here written into the record by hand, as up does
// on a host without Node.js: the lab hosts have no package source); a
// second down changes nothing. Lines the user added to the record (it is
// the user's file) are never run or removed: only what up adds is.
func nodeDownLab(t *testing.T, h lab.Host) {
	n, _ := NewNodeDeployment(NodeOptions{})
	rec := remoteRun(t, h, "cat /home/deploy/deploylab-node/"+nodeAddedFile)
	for _, want := range []string{"startup pm2-deploy.service", "pm2-home"} {
		if !strings.Contains(rec, want+"\n") {
			t.Errorf("up's record %q has no %q", rec, want)
		}
	}
	remoteRun(t, h, "printf 'npm-global pm2 loadtest\\napt nodejs npm\\n' >> /home/deploy/deploylab-node/"+nodeAddedFile)
	// A hostile record, first (before up's own lines): shell in package
	// names (the npm one names a directory that exists, so that it passes
	// the "still installed" probe), a unit path out of /etc/systemd/system,
	// a package up does not install.
	remoteRun(t, h, `mkdir -p '/tmp/x;touch${IFS}/tmp/pwned-npm' && touch /tmp/victim.service && f=/home/deploy/deploylab-node/`+nodeAddedFile+` && t=$(mktemp) &&
{ printf '%s\n' 'npm-global ../../../../tmp/x;touch${IFS}/tmp/pwned-npm' 'startup ../../../../tmp/victim.service' 'apt openssh-server' 'apt nodejs;touch${IFS}/tmp/pwned-apt'; cat "$f"; } > "$t" && cat "$t" > "$f" && rm -f "$t"`)
	ignored := false
	for i, o := range []struct {
		check, changed bool
	}{{true, true}, {false, true}, {false, false}} {
		rc, err := Down(verbCtx(t), labTargets(h), DownOptions{Dial: labDial, App: n, Check: o.check})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rc.Hosts[0].Tasks {
			t.Logf("down --app node #%d (check=%v) %s: %s %s%s", i+1, o.check, r.Task, r.Status, r.Msg, r.Error)
			ignored = ignored || r.Task == TaskDownPackages && strings.Contains(r.Msg, `ignored "npm-global ../../../../tmp/x;touch${IFS}/tmp/pwned-npm", "startup ../../../../tmp/victim.service"`)
		}
		if err := rc.Err(); err != nil {
			t.Fatalf("down --app node #%d: %v", i+1, err)
		}
		if got := rc.Hosts[0].Changed > 0; got != o.changed {
			t.Errorf("down --app node #%d (check=%v): changed=%d, want changed: %v", i+1, o.check, rc.Hosts[0].Changed, o.changed)
		}
		if o.check && !answers(t, h, "3101") {
			t.Fatal("down --check stopped the cluster app")
		}
	}
	if !ignored {
		t.Error("down's packages task did not report the record's hostile lines as ignored")
	}
	if out := remoteRun(t, h, "ls -d /tmp/pwned-apt /tmp/pwned-npm /tmp/victim.service 2>/dev/null; rm -rf /tmp/victim.service '/tmp/x;touch${IFS}'; true"); out != "/tmp/victim.service\n" {
		t.Errorf("a hostile record ran or removed something: ls shows %q, want only /tmp/victim.service", out)
	}
	if out := remoteRun(t, h, "dpkg -l openssh-server | grep -c '^ii'; true"); strings.TrimSpace(out) != "1" {
		t.Errorf("down removed openssh-server (named in the record): %q", out)
	}
	// Independently of down's verify task: nothing left.
	out := remoteRun(t, h, `for f in /home/deploy/deploylab-node /home/deploy/.pm2 /etc/systemd/system/pm2-deploy.service /root/.pm2; do [ -e "$f" ] && echo "$f"; done
pgrep -a -x node; pgrep -a -f '^PM2'; command -v node pm2 loadtest; dpkg -l nodejs npm 2>/dev/null | grep '^ii'; systemctl list-units --all --no-legend 'pm2-*'; true`)
	if strings.TrimSpace(out) != "" {
		t.Errorf("down --app node left on the host:\n%s", out)
	}
}
