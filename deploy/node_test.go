package deploy

import (
	"context"
	"fmt"
	"github.com/deploylab/deploylab/internal/need"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/golden"
	"github.com/deploylab/deploylab/nodeapp"
	"github.com/google/go-cmp/cmp"
)

func TestNodeEcosystemGolden(t *testing.T) {
	n, err := NewNodeDeployment(NodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eco := n.Ecosystem("/home/deploy/deploylab-node")
	golden.Check(t, filepath.Join("testdata", "node-ecosystem.config.js.golden"), []byte(string(eco)))

	// Node itself reads it: the two apps, cluster mode with instances 0.
	node := need.Tool(t, "node", "install Debian's nodejs package (apt-get install nodejs)")
	dir := t.TempDir()
	p := filepath.Join(dir, "ecosystem.config.js")
	if err := os.WriteFile(p, eco, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "-e", `const c = require(process.argv[1]); console.log(c.apps.map(a => [a.name, a.exec_mode, a.instances, a.env.PORT, a.wait_ready, a.listen_timeout, a.kill_timeout].join(" ")).join("\n"))`, p).CombinedOutput()
	if err != nil {
		t.Fatalf("node cannot load the ecosystem file: %v: %s", err, out)
	}
	want := "deploylab-node-single fork 1 3100 true 10000 3000\ndeploylab-node-cluster cluster 0 3101 true 10000 3000\n"
	if string(out) != want {
		t.Errorf("ecosystem as node reads it:\n%s\nwant:\n%s", out, want)
	}
}

func TestNewNodeDeploymentErrors(t *testing.T) {
	tests := []struct {
		name string
		o    NodeOptions
		want string
	}{
		{"privileged", NodeOptions{Port: 80}, "--node-port 80 is out of range"},
		{"same ports", NodeOptions{Port: 4000, ClusterPort: 4000}, "--node-port and --node-cluster-port are both 4000"},
		{"instances", NodeOptions{Instances: -2}, "--instances -2 is out of range"},
		{"dir", NodeOptions{Dir: "../etc"}, `node app directory "../etc" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewNodeDeployment(tt.o)
			if err == nil || err.Error() != tt.want || fail.KindOf(err) != fail.Usage {
				t.Errorf("err = %v (kind %v), want usage error %q", err, fail.KindOf(err), tt.want)
			}
		})
	}
	n, err := NewNodeDeployment(NodeOptions{})
	if err != nil || n.Port != 3100 || n.ClusterPort != 3101 || n.AppDir("/home/deploy") != "/home/deploy/deploylab-node" || n.AppDir("/") != "/root/deploylab-node" {
		t.Errorf("defaults: %+v %v", n, err)
	}
	if d := n.Deployment(); d.Supervisor != SupervisorPM2 || len(d.Services) != 2 || d.Services[1].Port != 3101 {
		t.Errorf("Deployment(): %+v", d)
	}
}

func TestParseJlist(t *testing.T) {
	out := `[PM2] Spawning PM2 daemon with pm2_home=/home/deploy/.pm2
[{"name":"deploylab-node-single","pid":10,"pm_id":0,"monit":{"cpu":0,"memory":50000000},"pm2_env":{"status":"online","exec_mode":"fork_mode","restart_time":0,"pm_exec_path":"/d/app.js","PORT":3100}},
{"name":"deploylab-node-cluster","pid":11,"pm_id":1,"monit":{"cpu":1,"memory":1},"pm2_env":{"status":"online","exec_mode":"cluster_mode","restart_time":2,"pm_exec_path":"/d/app.js","PORT":"3101"}},
{"name":"deploylab-node-cluster","pid":12,"pm_id":2,"monit":{"cpu":1,"memory":1},"pm2_env":{"status":"stopped","exec_mode":"cluster_mode","pm_exec_path":"/d/app.js","PORT":"3101"}}]`
	procs, err := parseJlist(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 3 || procs[1].ExecMode != "cluster_mode" || procs[1].Restarts != 2 || procs[0].Memory != 50000000 {
		t.Fatalf("parsed: %+v", procs)
	}
	u := pm2User{NodeDeployment{Port: 3100, ClusterPort: 3101}}
	if got, want := u.appsState(procs, "/d", 2), "deploylab-node-cluster: 1 of 2 online as wanted (2 processes)"; got != want {
		t.Errorf("appsState = %q, want %q", got, want)
	}
	procs[2].Status = "online"
	if got := u.appsState(procs, "/d", 2); got != "" {
		t.Errorf("appsState with all online = %q, want \"\"", got)
	}
	if _, err := parseJlist("command not found"); err == nil {
		t.Error("no error for output without JSON")
	}
}

// TestNodeAppRuns runs the embedded app.js with the real Express (nodeapp's
// node_modules, as the differential peer uses them) and asks / and /api/50.
func TestNodeAppRuns(t *testing.T) {
	node := need.Tool(t, "node", "install Debian's nodejs package (apt-get install nodejs)")
	src, err := nodeapp.Dir()
	if err != nil {
		t.Fatal(err)
	}
	mods := filepath.Join(src, "node_modules")
	if _, err := os.Stat(filepath.Join(mods, "express")); err != nil {
		need.Missing(t, "express is not installed in nodeapp: cd nodeapp && npm ci")
	}
	dir := t.TempDir()
	for _, f := range nodeapp.Files {
		if err := os.WriteFile(filepath.Join(dir, f), nodeapp.File(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(mods, filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{"app.js", "app_cluster.js"} {
		t.Run(script, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port := l.Addr().(*net.TCPAddr).Port
			l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, script)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			base := "http://127.0.0.1:" + strconv.Itoa(port)
			get := func(p string) (int, string, error) {
				resp, err := http.Get(base + p)
				if err != nil {
					return 0, "", err
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b), err
			}
			var code int
			var body string
			// A bound for the start, not a speed check: the cluster forks a
			// worker per CPU, slow on a loaded machine.
			for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if code, body, err = get("/"); err == nil {
					break
				}
			}
			if err != nil || code != 200 || body != RootBody {
				t.Fatalf("GET / = %d %q %v", code, body, err)
			}
			if code, body, err = get(API50Path); err != nil || code != 200 || body != API50Body {
				t.Errorf("GET %s = %d %q %v", API50Path, code, body, err)
			}
			if code, body, _ = get("/api/12abc"); !strings.Contains(body, "78") {
				t.Errorf("GET /api/12abc = %d %q, want the practice's parseInt (78)", code, body)
			}
		})
	}
}

// TestNodeState reads the Node verbs' state script output (a PM2 daemon
// message before jlist's JSON included) and turns it into ls rows.
func TestNodeState(t *testing.T) {
	now := time.Now().UnixMilli()
	out := fmt.Sprintf(`@@user deploy
@@home /home/deploy
@@dir /home/deploy/deploylab-node
@@exists
@@pm2 /usr/local/bin/pm2
@@pm2home /home/deploy/.pm2
@@unit
@@homeexists
@@added startup pm2-deploy.service
@@added pm2-home
@@log /home/deploy/.pm2/logs/deploylab-node-single-out-0.log
@@log /home/deploy/.pm2/logs/deploylab-node-single-error-0.log
@@log /home/deploy/.pm2/logs/deploylab-node-cluster-out-1.log
@@daemon
@@jlist
>>>> In-memory PM2 is out-of-date, do:
[{"name":"deploylab-node-single","pid":10,"pm_id":0,"monit":{"cpu":1.5,"memory":1000},"pm2_env":{"status":"online","exec_mode":"fork_mode","restart_time":3,"pm_uptime":%[1]d,"pm_out_log_path":"/l/s-out-0.log","pm_err_log_path":"/l/s-error-0.log"}},
{"name":"deploylab-node-cluster","pid":12,"pm_id":2,"monit":{"cpu":2,"memory":300},"pm2_env":{"status":"online","exec_mode":"cluster_mode","restart_time":1,"pm_uptime":%[2]d,"pm_out_log_path":"/l/c-out-2.log","pm_err_log_path":"/l/c-error-2.log"}},
{"name":"deploylab-node-cluster","pid":0,"pm_id":1,"monit":{"cpu":0,"memory":0},"pm2_env":{"status":"stopped","exec_mode":"cluster_mode","restart_time":0,"pm_uptime":%[2]d,"pm_out_log_path":"/l/c-out-1.log","pm_err_log_path":"/l/c-error-1.log"}},
{"name":"blog","pid":20,"pm_id":3,"monit":{"cpu":0,"memory":5},"pm2_env":{"status":"online","exec_mode":"fork_mode"}}]
`, now-90_000, now-30_000)
	st, err := parseNodeState(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.User != "deploy" || !st.DirExists || !st.Daemon || !st.Unit || !st.HomeExists || st.PM2 != "/usr/local/bin/pm2" || len(st.Procs) != 4 || len(st.Logs) != 3 {
		t.Fatalf("state: %+v", st)
	}
	if rec := readRecord(st.Added, st.User); rec.unit != "pm2-deploy.service" || !rec.pm2Home || len(rec.apt) > 0 || len(rec.ignored) > 0 {
		t.Errorf("record: %+v", rec)
	}
	if got := st.others(); !cmp.Equal(got, []string{"blog"}) {
		t.Errorf("others = %v, want [blog]", got)
	}
	n, _ := NewNodeDeployment(NodeOptions{})
	rows := nodeRows(st, n.Deployment().Services)
	if len(rows) != 2 {
		t.Fatalf("rows: %+v", rows)
	}
	single, cluster := rows[0], rows[1]
	if single.Status != "online" || single.PID != 10 || single.Restarts != 3 || single.CPU != 1.5 || single.Memory != 1000 ||
		single.Uptime < 89 || single.Uptime > 120 || single.Mode != "fork" {
		t.Errorf("single: %+v", single)
	}
	if cluster.Status != "degraded" || cluster.Mode != "cluster" || cluster.PID != 0 || cluster.Restarts != 1 || cluster.Memory != 300 ||
		len(cluster.Workers) != 2 || cluster.Workers[0].Name != "worker 1" || cluster.Workers[0].PID != 0 || cluster.Workers[1].PID != 12 {
		t.Errorf("cluster: %+v", cluster)
	}
	svcs, _ := n.Deployment().SelectServices("cluster")
	if got := nodeLogFiles(st, svcs); !cmp.Equal(got, []string{"/l/c-out-1.log", "/l/c-error-1.log", "/l/c-out-2.log", "/l/c-error-2.log"}) {
		t.Errorf("cluster log files: %v", got)
	}

	// PM2's daemon down: no jlist; the apps are stopped, their log files
	// are found in PM2's logs directory.
	st, err = parseNodeState(strings.Split(out, "@@daemon")[0])
	if err != nil {
		t.Fatal(err)
	}
	rows = nodeRows(st, n.Deployment().Services)
	if rows[0].Status != "stopped" || rows[1].Status != "stopped" {
		t.Errorf("daemon down: %+v", rows)
	}
	svcs, _ = n.Deployment().SelectServices("single")
	if got := nodeLogFiles(st, svcs); !cmp.Equal(got, []string{"/home/deploy/.pm2/logs/deploylab-node-single-out-0.log", "/home/deploy/.pm2/logs/deploylab-node-single-error-0.log"}) {
		t.Errorf("daemon down: single log files %v", got)
	}
	// Nothing deployed.
	st, _ = parseNodeState("@@user deploy\n@@pm2 \n")
	if rows := nodeRows(st, n.Deployment().Services); rows[0].Status != "missing" {
		t.Errorf("nothing deployed: %+v", rows[0])
	}
}

// TestReadRecord: down --app node removes only what up adds, whatever the
// user's record (.deploylab-added) says; the rest is reported, quoted.
func TestReadRecord(t *testing.T) {
	for _, tt := range []struct {
		name, user, record string
		want               nodeRecord
	}{
		{"up's own", "deploy", "apt nodejs npm\nnpm-global pm2 loadtest\nstartup pm2-deploy.service\npm2-home\nnpm-cache\n",
			nodeRecord{apt: []string{"nodejs", "npm"}, npm: []string{"pm2", "loadtest"}, unit: "pm2-deploy.service", pm2Home: true, npmCache: true}},
		{"old startup line", "deploy", "startup\n", nodeRecord{unit: "pm2-deploy.service"}},
		{"twice", "deploy", "apt nodejs\napt nodejs npm\n", nodeRecord{apt: []string{"nodejs", "npm"}}},
		{"shell in a package", "deploy", "apt nodejs;rm${IFS}-rf${IFS}/ npm\nnpm-global $(reboot) pm2\n",
			nodeRecord{apt: []string{"npm"}, npm: []string{"pm2"}, ignored: []string{`"apt nodejs;rm${IFS}-rf${IFS}/"`, `"npm-global $(reboot)"`}}},
		{"other package", "deploy", "apt openssh-server\n", nodeRecord{ignored: []string{`"apt openssh-server"`}}},
		{"unit path", "deploy", "startup ../../../etc/passwd\n", nodeRecord{ignored: []string{`"startup ../../../etc/passwd"`}}},
		{"another user's unit", "deploy", "startup pm2-root.service\n", nodeRecord{ignored: []string{`"startup pm2-root.service"`}}},
		{"odd user", "x/../y", "startup\n", nodeRecord{ignored: []string{`"startup"`}}},
		{"unknown line", "deploy", "rm -rf /\n", nodeRecord{ignored: []string{`"rm -rf /"`}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := readRecord(strings.Split(tt.record, "\n"), tt.user)
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(nodeRecord{})); diff != "" {
				t.Errorf("readRecord (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzReadRecord: whatever the record, down is only ever given the names
// up adds, and what it reports is bounded.
func FuzzReadRecord(f *testing.F) {
	f.Add("apt nodejs npm\nstartup pm2-deploy.service\npm2-home\n", "deploy")
	f.Add("npm-global pm2 $(id)\nstartup ../x\n", "deploy")
	f.Fuzz(func(t *testing.T, record, user string) {
		r := readRecord(strings.Split(record, "\n"), user)
		for _, p := range r.apt {
			if p != "nodejs" && p != "npm" {
				t.Fatalf("apt %q", p)
			}
		}
		for _, p := range r.npm {
			if p != "pm2" && p != "loadtest" {
				t.Fatalf("npm %q", p)
			}
		}
		if r.unit != "" && (r.unit != PM2Unit(user) || !validUser(user) || strings.ContainsAny(r.unit, "/ '$;")) {
			t.Fatalf("unit %q for user %q", r.unit, user)
		}
		if len(r.ignored) > 5 {
			t.Fatalf("%d ignored", len(r.ignored))
		}
		for _, s := range r.ignored {
			if len(s) > 300 {
				t.Fatalf("ignored entry of %d bytes", len(s))
			}
		}
	})
}

// FuzzParseNodeState: the state script's output (the login user's, and
// PM2's jlist) never panics the parser.
func FuzzParseNodeState(f *testing.F) {
	f.Add("@@user deploy\n@@dir /home/deploy/deploylab-node\n@@exists\n@@added pm2-home\n@@daemon\n@@jlist\n[]\n")
	f.Add("@@jlist\n[{\"name\":\"deploylab-node-cluster\",\"pm2_env\":{\"status\":\"online\",\"PORT\":{}}}]")
	f.Fuzz(func(t *testing.T, out string) {
		st, err := parseNodeState(out)
		if err != nil {
			return
		}
		n, _ := NewNodeDeployment(NodeOptions{})
		_ = nodeRows(st, n.Deployment().Services)
		_ = nodeLogFiles(st, n.Deployment().Services)
		_ = readRecord(st.Added, st.User)
	})
}
