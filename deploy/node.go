package deploy

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// The practice's own stack: its Express app, single and clustered, run by
// PM2 (deploylab up --app node).

//go:embed testdata/node/app.js testdata/node/app_cluster.js testdata/node/package.json testdata/node/package-lock.json
var nodeFiles embed.FS

// Node deployment defaults. The Node servers default to 3100/3101 so they
// run next to the Go servers (3000/3001) on the same VM, for bench --compare.
const (
	DefaultNodePort        = 3100
	DefaultNodeClusterPort = 3101
	// DefaultNodeDir is the app directory, relative to the login user's home.
	DefaultNodeDir = "deploylab-node"
	// NodeSingleApp and NodeClusterApp are the PM2 app names: "deploylab-"
	// and the service's name, as for the Go servers under PM2.
	NodeSingleApp  = "deploylab-node-single"
	NodeClusterApp = "deploylab-node-cluster"
	// NodeMinMajor is the oldest Node.js Express 5 runs on.
	NodeMinMajor = 18
)

// NodeSourceFiles are the app's files uploaded as they are, in order.
var NodeSourceFiles = []string{"app.js", "app_cluster.js", "package.json", "package-lock.json"}

// NodeSource returns one of NodeSourceFiles' embedded content.
func NodeSource(name string) []byte {
	b, err := nodeFiles.ReadFile("testdata/node/" + name)
	if err != nil {
		panic("deploy: missing embedded node file " + name)
	}
	return b
}

// NodeDeployment says how the practice's Node app is deployed: the app
// directory (under the login user's home), the two PM2 apps and their
// ports. PM2 runs as the login user, under pm2-<user>.service (pm2 startup),
// so the apps come back after a reboot.
type NodeDeployment struct {
	// Dir is the app directory: absolute, or relative to the user's home.
	Dir string
	// Port is the single app's (fork mode); ClusterPort the cluster's.
	Port, ClusterPort int
	// Instances is the cluster's PM2 instances: 0 = one per CPU, -1 =
	// CPUs-1, N.
	Instances int
	// GlobalTools installs pm2 and loadtest with npm -g (as root) when
	// missing, instead of in the app directory's .tools.
	GlobalTools bool
}

// NodeOptions are the user's choices for NewNodeDeployment.
type NodeOptions struct {
	Dir               string
	Port, ClusterPort int
	Instances         int
	GlobalTools       bool
}

// NewNodeDeployment validates o and fills the defaults.
func NewNodeDeployment(o NodeOptions) (NodeDeployment, error) {
	n := NodeDeployment{Dir: o.Dir, Port: o.Port, ClusterPort: o.ClusterPort, Instances: o.Instances, GlobalTools: o.GlobalTools}
	if n.Dir == "" {
		n.Dir = DefaultNodeDir
	}
	if n.Port == 0 {
		n.Port = DefaultNodePort
	}
	if n.ClusterPort == 0 {
		n.ClusterPort = DefaultNodeClusterPort
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"--node-port", n.Port}, {"--node-cluster-port", n.ClusterPort}} {
		if p.v < 1024 || p.v > 65535 {
			return NodeDeployment{}, fail.Errorf(fail.Usage, "use a port from 1024 to 65535 (the apps run unprivileged)", "%s %d is out of range", p.flag, p.v)
		}
	}
	if n.Port == n.ClusterPort {
		return NodeDeployment{}, fail.Errorf(fail.Usage, "give the single and the clustered app different ports", "--node-port and --node-cluster-port are both %d", n.Port)
	}
	if n.Instances < -1 || n.Instances > 256 {
		return NodeDeployment{}, fail.Errorf(fail.Usage, "use 0 (one per CPU), -1 (CPUs-1) or a count up to 256", "--instances %d is out of range", n.Instances)
	}
	if strings.ContainsAny(n.Dir, "'\"\\$`\n") || strings.Contains(n.Dir, "..") {
		return NodeDeployment{}, fail.Errorf(fail.Usage, "use a plain directory name", "node app directory %q is not allowed", n.Dir)
	}
	return n, nil
}

// AppDir is the app directory for a user whose home is home.
func (n NodeDeployment) AppDir(home string) string {
	if path.IsAbs(n.Dir) {
		return path.Clean(n.Dir)
	}
	if home == "" || home == "/" {
		home = "/root"
	}
	return path.Join(home, n.Dir)
}

// ToolsDir holds pm2 and loadtest when deploylab installs them locally.
func (n NodeDeployment) ToolsDir(home string) string { return path.Join(n.AppDir(home), ".tools") }

// PM2Unit is the unit pm2 startup writes for user.
func PM2Unit(user string) string { return "pm2-" + user + ".service" }

// Deployment describes the Node apps as a Deployment (Supervisor pm2, one
// Service per PM2 app, Program "node"), for the verbs that work on any
// deployment (ls, logs, reload... through pm2 jlist).
func (n NodeDeployment) Deployment() Deployment {
	return Deployment{
		Root:       n.Dir,
		Supervisor: SupervisorPM2,
		Services: []Service{
			{Name: "node-single", Program: "node", Description: "the practice's Express app, single process (PM2 fork mode)", Port: n.Port},
			{Name: "node-cluster", Program: "node", Description: "the practice's Express app under PM2's cluster mode", Port: n.ClusterPort,
				Args: []string{"--instances", strconv.Itoa(n.Instances)}, Reload: true},
		},
	}
}

// wantInstances is the cluster's process count on a host with cpus CPUs.
func (n NodeDeployment) wantInstances(cpus int) int {
	switch {
	case n.Instances > 0:
		return n.Instances
	case n.Instances == -1:
		return max(1, cpus-1)
	}
	return max(1, cpus)
}

// Ecosystem renders ecosystem.config.js for the app directory dir.
func (n NodeDeployment) Ecosystem(dir string) []byte {
	app := func(name, mode string, instances, port int) string {
		return fmt.Sprintf(`    {
      name: %q,
      script: "app.js",
      cwd: %q,
      exec_mode: %q,
      instances: %d,
      env: { PORT: %d, NODE_ENV: "production" },
      // app.js sends "ready" once it listens: PM2 waits for it (up to
      // listen_timeout) before it counts a (re)started process as online.
      wait_ready: true,
      listen_timeout: 10000,
      // On stop or reload: SIGINT, then SIGKILL after kill_timeout.
      kill_timeout: 3000,
      exp_backoff_restart_delay: 100,
      max_memory_restart: "300M",
      // Each log line starts with its time (deploylab logs --app node).
      time: true,
    }`, name, dir, mode, instances, port)
	}
	return []byte("// Written by deploylab up --app node; changes here are overwritten by the next run.\n" +
		"// pm2 start ecosystem.config.js  |  pm2 reload ecosystem.config.js  |  pm2 ls\n" +
		"module.exports = {\n  apps: [\n" +
		app(NodeSingleApp, "fork", 1, n.Port) + ",\n" +
		app(NodeClusterApp, "cluster", n.Instances, n.ClusterPort) + ",\n  ],\n};\n")
}

// Task names of UpNode, in order.
const (
	TaskNode    = "nodejs"
	TaskApp     = "app"
	TaskDeps    = "npm-ci"
	TaskTools   = "tools"
	TaskStartup = "startup"
	TaskPM2Apps = "pm2-apps"
)

// NodeTaskNames are UpNode's task names, in order.
func NodeTaskNames() []string {
	return []string{TaskFacts, TaskNode, TaskApp, TaskDeps, TaskTools, TaskStartup, TaskPM2Apps, TaskVerify}
}

// NodeUpOptions configure UpNode.
type NodeUpOptions struct {
	Node          NodeDeployment
	Forks         int
	Check         bool
	Dial          DialFunc
	Observer      Observer
	VerifyTimeout time.Duration
}

// UpNode deploys the practice's Node app to every target: Node.js and npm
// (Debian's, through apt, when missing), the app's files, npm ci (offline
// from npm's cache first: lab hosts have no internet), pm2 and loadtest,
// pm2 startup (pm2-<user>.service) and the two PM2 apps from a generated
// ecosystem.config.js, verified over HTTP. A second run changes nothing.
func UpNode(ctx context.Context, targets []Target, o NodeUpOptions) (*Recap, error) {
	n := o.Node
	if n.Port == 0 {
		var err error
		if n, err = NewNodeDeployment(NodeOptions{}); err != nil {
			return nil, err
		}
	}
	if err := checkTargets(targets); err != nil {
		return nil, err
	}
	u := &nodeUp{n: n, verifyTimeout: o.VerifyTimeout}
	if u.verifyTimeout <= 0 {
		u.verifyTimeout = 30 * time.Second
	}
	tasks := []Task{
		{TaskFacts, u.facts},
		{TaskNode, u.nodejs},
		{TaskApp, u.app},
		{TaskDeps, u.deps},
		{TaskTools, u.tools},
		{TaskStartup, u.startup},
		{TaskPM2Apps, u.apps},
		{TaskVerify, u.verify},
	}
	return Run(ctx, targets, tasks, RunOptions{
		Forks: o.Forks, Check: o.Check, Dial: o.Dial, Observer: o.Observer,
		NewData: func(Target) any { return &nodeHost{} },
	}), nil
}

type nodeUp struct {
	n             NodeDeployment
	verifyTimeout time.Duration
}

// nodeHost is what UpNode's tasks learn about one host.
type nodeHost struct {
	dir    string
	noNode bool // check mode: node would be installed
	// hadNpmCache and hadPM2Home: ~/.npm and ~/.pm2 were there before up
	// (else up records that it added them, for down).
	hadNpmCache, hadPM2Home bool
	pm2                     string
	filesSame               bool // every app file was already there
	depsSame                bool
}

func ndata(h *HostRun) *nodeHost { return h.Data.(*nodeHost) }

// userSh runs a script as the login user with node's usual PATH.
func userSh(ctx context.Context, h *HostRun, what, script string) (string, error) {
	r, err := h.Exec.Run(ctx, "sh -c "+q("export PATH=\"$PATH:/usr/local/bin:/usr/bin:/bin\"\n"+script))
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return string(r.Stdout), scriptErr(what, r)
}

func (u *nodeUp) facts(ctx context.Context, h *HostRun) TaskResult {
	f, err := h.Exec.Facts(ctx)
	if err != nil {
		return Fail(err)
	}
	h.Facts = f
	ndata(h).dir = u.n.AppDir(f.Home)
	desc := fmt.Sprintf("%s %s, %s, %d CPUs, user %s", orUnknown(f.OSID), f.OSVersion, orUnknown(f.Arch), f.CPUs, f.User)
	if !f.Systemd {
		return Fail(fail.Errorf(fail.Failed, "deploy to a host booted with systemd (a Debian 12 VM is): pm2 startup needs it", "%s: systemd is not running (PID 1 is %q)", desc, f.Init))
	}
	if err := checkSudo(ctx, h, desc); err != nil {
		return Fail(err) // apt and pm2 startup need root
	}
	for _, p := range []int{u.n.Port, u.n.ClusterPort} {
		for _, l := range f.ListenersOn(p) {
			for _, pr := range l.Processes {
				if !isNodeProcess(pr.Name) {
					return Fail(fail.Errorf(fail.Failed, "stop it or choose other ports with --node-port/--node-cluster-port",
						"port %d is in use by %s (pid %d)", p, pr.Name, pr.PID))
				}
			}
		}
	}
	return Ok("%s", desc)
}

// isNodeProcess: a process named node (PM2 sets titles like "node
// /home/deploy/app.js") or PM2's daemon.
func isNodeProcess(name string) bool {
	return name == "node" || name == "nodejs" || strings.HasPrefix(name, "node ") || strings.HasPrefix(name, "PM2")
}

// nodejs makes sure node (18 or later) and npm are installed.
func (u *nodeUp) nodejs(ctx context.Context, h *HostRun) TaskResult {
	const probe = `printf 'node=%s\nnpm=%s\n' "$(node --version 2>/dev/null)" "$(npm --version 2>/dev/null)"
[ -d "$HOME/.npm" ] && echo npmcache=yes; [ -d "${PM2_HOME:-$HOME/.pm2}" ] && echo pm2home=yes; exit 0`
	out, err := userSh(ctx, h, "node --version", probe)
	if err != nil {
		return Fail(err)
	}
	nodeV, npmV := kv(out, "node"), kv(out, "npm")
	ndata(h).hadNpmCache, ndata(h).hadPM2Home = kv(out, "npmcache") == "yes", kv(out, "pm2home") == "yes"
	if nodeV != "" && npmV != "" {
		if m := majorOf(nodeV); m < NodeMinMajor {
			return Fail(fail.Errorf(fail.Prereq, fmt.Sprintf("install Node.js %d or later on the host (Debian 12's nodejs package is 18)", NodeMinMajor), "node %s is too old for Express 5", nodeV))
		}
		return Ok("node %s, npm %s", nodeV, npmV)
	}
	changes := []string{"apt-get install nodejs npm"}
	if h.Check {
		ndata(h).noNode = true
		return Change(changes, "would install Debian's nodejs and npm (node %q, npm %q found)", nodeV, npmV)
	}
	const install = `export DEBIAN_FRONTEND=noninteractive
inst() { apt-get install -y -q --no-install-recommends nodejs npm >/tmp/deploylab-apt.log 2>&1; }
inst || { apt-get update -q >>/tmp/deploylab-apt.log 2>&1; inst; } || { tail -n 3 /tmp/deploylab-apt.log >&2; exit 1; }`
	// What up adds is recorded before it is added: a run cut short
	// still leaves down the list.
	if err := recordAdded(ctx, h, ndata(h).dir, "apt nodejs npm"); err != nil {
		return Fail(err)
	}
	if _, err := sh(ctx, h, "apt-get install nodejs npm", install); err != nil {
		return Fail(fail.New(fail.Prereq,
			"the host has no package source it can reach (no internet or no apt mirror): install Node.js and npm on it by hand (apt-get install nodejs npm), or give it a Debian mirror",
			err))
	}
	out, err = userSh(ctx, h, "node --version", probe)
	if err != nil {
		return Fail(err)
	}
	return Change(changes, "installed Debian's nodejs %s and npm %s", kv(out, "node"), kv(out, "npm"))
}

func kv(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func majorOf(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	return n
}

// nodeFilesFor is every file the app directory holds, by name.
func (u *nodeUp) nodeFilesFor(dir string) map[string][]byte {
	m := map[string][]byte{"ecosystem.config.js": u.n.Ecosystem(dir)}
	for _, name := range NodeSourceFiles {
		m[name] = NodeSource(name)
	}
	return m
}

var nodeFileOrder = append(append([]string{}, NodeSourceFiles...), "ecosystem.config.js")

// app uploads the app's files (skipping unchanged ones).
func (u *nodeUp) app(ctx context.Context, h *HostRun) TaskResult {
	d := ndata(h)
	files := u.nodeFilesFor(d.dir)
	var paths []string
	for _, name := range nodeFileOrder {
		paths = append(paths, path.Join(d.dir, name))
	}
	sums, err := remoteSums(ctx, h, paths)
	if err != nil {
		return Fail(err)
	}
	var changes []string
	for _, name := range nodeFileOrder {
		p := path.Join(d.dir, name)
		if sums[p] != sha256Hex(files[name]) {
			changes = append(changes, p)
		}
	}
	if len(changes) == 0 {
		d.filesSame = true
		return Ok("%s: %d files up to date", d.dir, len(files))
	}
	if h.Check {
		return Change(changes, "would write %d files in %s", len(changes), d.dir)
	}
	for _, p := range changes {
		if _, err := h.Exec.WriteFile(ctx, p, files[path.Base(p)], 0o644); err != nil {
			return Fail(fmt.Errorf("upload %s: %w", p, err))
		}
	}
	return Change(changes, "wrote %d files in %s", len(changes), d.dir)
}

// deps runs npm ci when package-lock.json differs from what is installed:
// offline first (npm's cache), then online.
func (u *nodeUp) deps(ctx context.Context, h *HostRun) TaskResult {
	d := ndata(h)
	lock := sha256Hex(NodeSource("package-lock.json"))
	marker := path.Join(d.dir, "node_modules", ".deploylab-lock")
	out, err := userSh(ctx, h, "read node_modules", fmt.Sprintf("cat %s 2>/dev/null; [ -f %s ] && echo express-present; exit 0",
		q(marker), q(path.Join(d.dir, "node_modules/express/package.json"))))
	if err != nil {
		return Fail(err)
	}
	if strings.Contains(out, lock) && strings.Contains(out, "express-present") {
		d.depsSame = true
		return Ok("node_modules matches package-lock.json")
	}
	if h.Check {
		return Change([]string{path.Join(d.dir, "node_modules")}, "would run npm ci in %s", d.dir)
	}
	script := fmt.Sprintf(`cd %s || exit 1
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false npm_config_loglevel=error
if npm ci --offline >/tmp/deploylab-npm-$$.log 2>&1; then how=offline
elif npm ci --fetch-timeout=20000 --fetch-retries=1 >>/tmp/deploylab-npm-$$.log 2>&1; then how=online
else tail -n 3 /tmp/deploylab-npm-$$.log >&2; rm -f /tmp/deploylab-npm-$$.log; exit 1; fi
rm -f /tmp/deploylab-npm-$$.log
echo %s > node_modules/.deploylab-lock && echo "how=$how"`, q(d.dir), q(lock))
	if !d.hadNpmCache {
		if err := recordAdded(ctx, h, d.dir, "npm-cache"); err != nil {
			return Fail(err)
		}
	}
	out, err = userSh(ctx, h, "npm ci", script)
	if err != nil {
		return Fail(fail.New(fail.Prereq,
			"npm could neither install from its cache (offline) nor reach the registry: give the host internet access or fill npm's cache (npm cache add express@5.3.0)", err))
	}
	how := kv(out, "how")
	return Change([]string{path.Join(d.dir, "node_modules")}, "npm ci (%s, from package-lock.json)", map[string]string{"offline": "offline, from npm's cache", "online": "from the registry"}[how])
}

// toolScript finds pm2 and loadtest: the app directory's first, then the
// global ones. It prints "pm2=<path>" and "loadtest=<path>".
func toolScript(tools string) string {
	return fmt.Sprintf(`for t in pm2 loadtest; do
  if [ -x %[1]s/node_modules/.bin/$t ]; then p=%[1]s/node_modules/.bin/$t; else p=$(command -v $t 2>/dev/null || true); fi
  echo "$t=$p"
done`, q(tools))
}

// tools makes sure pm2 and loadtest are there: in the app directory, or
// global (as in the lab image), else installed into the app directory
// (from npm's cache if it has them).
func (u *nodeUp) tools(ctx context.Context, h *HostRun) TaskResult {
	d := ndata(h)
	tools := u.n.ToolsDir(h.Facts.Home)
	out, err := userSh(ctx, h, "find pm2 and loadtest", toolScript(tools))
	if err != nil {
		return Fail(err)
	}
	var missing []string
	for _, t := range []string{"pm2", "loadtest"} {
		if kv(out, t) == "" {
			missing = append(missing, t)
		}
	}
	d.pm2 = kv(out, "pm2")
	if len(missing) == 0 {
		return Ok("pm2 %s, loadtest %s", kv(out, "pm2"), kv(out, "loadtest"))
	}
	where := tools
	if u.n.GlobalTools {
		where = "global (npm -g)"
	}
	changes := []string{"npm install " + strings.Join(missing, " ") + " (" + where + ")"}
	if h.Check {
		d.pm2 = "pm2"
		return Change(changes, "would install %s (%s)", strings.Join(missing, " and "), where)
	}
	pkgs := strings.Join(missing, " ")
	// npm -g runs as root (root's cache); a local install, as the user.
	var added []string
	if u.n.GlobalTools {
		added = append(added, "npm-global "+pkgs)
	} else if !d.hadNpmCache {
		added = append(added, "npm-cache")
	}
	if len(added) > 0 {
		if err := recordAdded(ctx, h, d.dir, added...); err != nil {
			return Fail(err)
		}
	}
	install := fmt.Sprintf(`mkdir -p %[1]s && cd %[1]s && { [ -f package.json ] || echo '{"name":"deploylab-tools","private":true}' > package.json; }
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false npm_config_loglevel=error
npm install --offline %[2]s >/tmp/deploylab-npm-$$.log 2>&1 || npm install --fetch-timeout=20000 --fetch-retries=1 %[2]s >>/tmp/deploylab-npm-$$.log 2>&1 || { tail -n 3 /tmp/deploylab-npm-$$.log >&2; rm -f /tmp/deploylab-npm-$$.log; exit 1; }
rm -f /tmp/deploylab-npm-$$.log`, q(tools), pkgs)
	if u.n.GlobalTools {
		_, err = sh(ctx, h, "npm install -g "+pkgs, fmt.Sprintf("export npm_config_fund=false npm_config_audit=false npm_config_loglevel=error\nnpm install -g --offline %[1]s 2>/dev/null || npm install -g --fetch-timeout=20000 --fetch-retries=1 %[1]s", pkgs))
	} else {
		_, err = userSh(ctx, h, "npm install "+pkgs, install)
	}
	if err != nil {
		return Fail(fail.New(fail.Prereq, "npm could not install "+pkgs+" (not in its cache and no registry): install them on the host (sudo npm install -g pm2 loadtest)", err))
	}
	out, err = userSh(ctx, h, "find pm2 and loadtest", toolScript(tools))
	if err != nil {
		return Fail(err)
	}
	d.pm2 = kv(out, "pm2")
	return Change(changes, "installed %s (%s): pm2 %s, loadtest %s", pkgs, where, kv(out, "pm2"), kv(out, "loadtest"))
}

// startup makes PM2's daemon run under pm2-<user>.service (pm2 startup),
// enabled and active, so the apps come back after a reboot.
func (u *nodeUp) startup(ctx context.Context, h *HostRun) TaskResult {
	d := ndata(h)
	unit := PM2Unit(h.Facts.User)
	out, err := sh(ctx, h, "systemctl show", "systemctl show -p UnitFileState -p ActiveState "+q(unit))
	if err != nil {
		return Fail(err)
	}
	st := parseShow(out)
	var changes []string
	needWrite := st.unitFileState != "enabled"
	if needWrite {
		changes = append(changes, "pm2 startup ("+unit+" enabled)")
	}
	if st.activeState != "active" {
		changes = append(changes, "start "+unit)
	}
	if len(changes) == 0 {
		return Ok("%s enabled and active", unit)
	}
	if h.Check {
		return Change(changes, "would %s", strings.Join(changes, ", "))
	}
	home := h.Facts.Home
	if home == "" {
		home = "/root"
	}
	var added []string
	if needWrite {
		added = append(added, "startup "+unit)
	}
	if !d.hadPM2Home {
		added = append(added, "pm2-home")
	}
	if len(added) > 0 {
		if err := recordAdded(ctx, h, d.dir, added...); err != nil {
			return Fail(err)
		}
	}
	if needWrite {
		// pm2 startup writes the unit with this PATH (node must be on it).
		cmd := fmt.Sprintf("export PATH=\"$PATH:/usr/local/bin:/usr/bin:/bin:%s\"\n%s", path.Dir(d.pm2), pm2StartupScript(q(d.pm2), h.Facts.User, home))
		if _, err := sh(ctx, h, "pm2 startup", cmd); err != nil {
			return Fail(err)
		}
	}
	out, err = sh(ctx, h, "systemctl show", "systemctl show -p ActiveState "+q(unit))
	if err != nil {
		return Fail(err)
	}
	if parseShow(out).activeState != "active" {
		// A daemon started by hand (outside the unit) would make the
		// unit's start fail: save its apps, stop it, let the unit
		// resurrect them.
		if _, err := userSh(ctx, h, "pm2 kill", fmt.Sprintf(`if [ -f "$HOME/.pm2/pm2.pid" ] && kill -0 "$(cat "$HOME/.pm2/pm2.pid")" 2>/dev/null; then %[1]s save --force >/dev/null 2>&1; %[1]s kill >/dev/null 2>&1; fi; exit 0`, q(d.pm2))); err != nil {
			return Fail(err)
		}
		if _, err := sh(ctx, h, "start "+unit, "systemctl start "+q(unit)); err != nil {
			return Fail(fail.New(fail.Failed, "see: journalctl -u "+unit, err))
		}
	}
	return Change(changes, "%s", strings.Join(changes, ", "))
}

// PM2Proc is the part of one pm2 jlist entry deploylab reads.
type PM2Proc struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	PMID  int    `json:"pm_id"`
	Monit struct {
		CPU    float64 `json:"cpu"`
		Memory int64   `json:"memory"`
	} `json:"monit"`
	Env struct {
		Status      string `json:"status"`
		ExecMode    string `json:"exec_mode"`
		RestartTime int    `json:"restart_time"`
		// PMUptime is when the process (re)started, in ms since the epoch.
		PMUptime  int64  `json:"pm_uptime"`
		Script    string `json:"pm_exec_path"`
		Cwd       string `json:"pm_cwd"`
		Port      any    `json:"PORT"`
		Instances any    `json:"instances"`
		OutLog    string `json:"pm_out_log_path"`
		ErrLog    string `json:"pm_err_log_path"`
	} `json:"pm2_env"`
}

// ParsePM2JList reads pm2 jlist's output (anything before the JSON array,
// like PM2's daemon-spawn messages, is skipped).
func ParsePM2JList(out string) ([]PM2Proc, error) {
	i := -1
	for j := 0; j < len(out); j++ {
		if out[j] != '[' {
			continue
		}
		rest := strings.TrimLeft(out[j+1:], " \t\r\n")
		if strings.HasPrefix(rest, "{") || strings.HasPrefix(rest, "]") {
			i = j
			break
		}
	}
	if i < 0 {
		return nil, fmt.Errorf("pm2 jlist: no JSON in %q", clip(strings.TrimSpace(out)))
	}
	var procs []PM2Proc
	if err := json.NewDecoder(strings.NewReader(out[i:])).Decode(&procs); err != nil {
		return nil, fmt.Errorf("pm2 jlist: %w", err)
	}
	return procs, nil
}

// appsState summarises pm2 jlist for the two apps: "" when they run as
// wanted, else what is wrong.
func (u *nodeUp) appsState(procs []PM2Proc, dir string, cpus int) string {
	type want struct {
		name, mode string
		n, port    int
	}
	var bad []string
	for _, w := range []want{{NodeSingleApp, "fork_mode", 1, u.n.Port}, {NodeClusterApp, "cluster_mode", u.n.wantInstances(cpus), u.n.ClusterPort}} {
		online, total := 0, 0
		for _, p := range procs {
			if p.Name != w.name {
				continue
			}
			total++
			if p.Env.Status == "online" && p.Env.ExecMode == w.mode && fmt.Sprint(p.Env.Port) == strconv.Itoa(w.port) && path.Dir(p.Env.Script) == dir {
				online++
			}
		}
		if online != w.n || total != w.n {
			bad = append(bad, fmt.Sprintf("%s: %d of %d online as wanted (%d processes)", w.name, online, w.n, total))
		}
	}
	return strings.Join(bad, "; ")
}

// apps starts (or reloads) the two PM2 apps from ecosystem.config.js and
// saves PM2's process list for pm2-<user>.service's resurrect.
func (u *nodeUp) apps(ctx context.Context, h *HostRun) TaskResult {
	d := ndata(h)
	applied := path.Join(d.dir, ".deploylab-applied")
	eco := path.Join(d.dir, "ecosystem.config.js")
	want := sha256Hex(u.n.Ecosystem(d.dir))[:16] + " " + sha256Hex(NodeSource("app.js"))[:16] + " " + sha256Hex(NodeSource("package-lock.json"))[:16]
	if h.Check && (d.noNode || d.pm2 == "pm2") {
		return Change([]string{"pm2 start " + eco}, "would start %s and %s", NodeSingleApp, NodeClusterApp)
	}
	out, err := userSh(ctx, h, "pm2 jlist", fmt.Sprintf("%s jlist; printf '\\n@@applied '; cat %s 2>/dev/null; echo", q(d.pm2), q(applied)))
	if err != nil {
		return Fail(err)
	}
	jl, app, _ := strings.Cut(out, "\n@@applied ")
	procs, err := ParsePM2JList(jl)
	if err != nil {
		return Fail(err)
	}
	bad := u.appsState(procs, d.dir, h.Facts.CPUs)
	have := strings.TrimSpace(app)
	if bad == "" && have == want {
		return Ok("%s and %s online (cluster: %d instances)", NodeSingleApp, NodeClusterApp, u.n.wantInstances(h.Facts.CPUs))
	}
	// The ecosystem (ports, modes, instances) changed or the apps are not
	// as wanted: start afresh. Only the code or deps changed: reload.
	action := "start"
	haveEco, _, _ := strings.Cut(have, " ")
	wantEco, _, _ := strings.Cut(want, " ")
	if bad == "" && haveEco == wantEco {
		action = "reload"
	}
	change := []string{"pm2 " + action + " " + eco}
	if h.Check {
		why := bad
		if why == "" {
			why = "the app changed"
		}
		return Change(change, "would %s the apps (%s)", action, why)
	}
	if !d.hadPM2Home {
		if err := recordAdded(ctx, h, d.dir, "pm2-home"); err != nil {
			return Fail(err)
		}
	}
	script := fmt.Sprintf(`cd %[2]s || exit 1
if [ %[3]s = reload ]; then %[1]s reload ecosystem.config.js --update-env >/tmp/deploylab-pm2-$$.log 2>&1
else %[1]s delete ecosystem.config.js >/dev/null 2>&1; %[1]s start ecosystem.config.js >/tmp/deploylab-pm2-$$.log 2>&1; fi || { tail -n 3 /tmp/deploylab-pm2-$$.log >&2; rm -f /tmp/deploylab-pm2-$$.log; exit 1; }
rm -f /tmp/deploylab-pm2-$$.log
%[1]s save --force >/dev/null 2>&1 || { echo "pm2 save failed" >&2; exit 1; }
printf '%%s\n' %[4]s > .deploylab-applied.new && mv -f .deploylab-applied.new .deploylab-applied`, q(d.pm2), q(d.dir), action, q(want))
	if _, err := userSh(ctx, h, "pm2 "+action, script); err != nil {
		return Fail(fail.New(fail.Failed, "see: pm2 logs --lines 20", err))
	}
	verb := map[string]string{"start": "started", "reload": "reloaded"}[action]
	msg := fmt.Sprintf("%s %s and %s (cluster: %d instances); pm2 save", verb, NodeSingleApp, NodeClusterApp, u.n.wantInstances(h.Facts.CPUs))
	if bad != "" && len(procs) > 0 {
		msg += " (were: " + bad + ")"
	}
	return Change(change, "%s", msg)
}

// verify asks both apps for / and /api/50 from the host itself and checks
// PM2 runs the cluster with the wanted number of processes.
func (u *nodeUp) verify(ctx context.Context, h *HostRun) TaskResult {
	if h.Check && h.Changed() {
		return Skip("check mode: the apps would change")
	}
	d := ndata(h)
	ports := []int{u.n.Port, u.n.ClusterPort}
	res, err := Probe(ctx, h.Exec, ports, u.verifyTimeout)
	if err != nil {
		return Fail(err)
	}
	var parts, bad []string
	for i, name := range []string{NodeSingleApp, NodeClusterApp} {
		p := res[ports[i]]
		if p.OK() {
			parts = append(parts, fmt.Sprintf("%s :%d ok", name, ports[i]))
		} else {
			bad = append(bad, fmt.Sprintf("%s :%d: %s", name, ports[i], p.Problem()))
		}
	}
	if len(bad) == 0 {
		out, err := userSh(ctx, h, "pm2 jlist", q(d.pm2)+" jlist")
		if err != nil {
			return Fail(err)
		}
		procs, err := ParsePM2JList(out)
		if err != nil {
			return Fail(err)
		}
		if s := u.appsState(procs, d.dir, h.Facts.CPUs); s != "" {
			bad = append(bad, s)
		}
	}
	if len(bad) > 0 {
		return Fail(fail.Errorf(fail.Failed, "see: pm2 ls; pm2 logs", "%s", strings.Join(bad, "; ")))
	}
	return Ok("%s (/ and /api/50 answered from the host via %s)", strings.Join(parts, ", "), res[ports[0]].Via)
}
