package deploy

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/nodeapp"
	"github.com/deploylab/deploylab/payload/sessions"
)

// This file is the Node app: the practice's own stack, its Express app
// (package nodeapp), single and clustered, run by the login user's PM2
// (deploylab up --app node; PM2's part is pm2User, in sup_pm2.go).

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
	// DefaultNodeSessionsPort and DefaultNodeSessionsDir are up --app
	// node-sessions' (the stateful cluster's Node model answer): its memory,
	// master and stateless apps listen on 3110, 3111 and 3112.
	DefaultNodeSessionsPort = 3110
	DefaultNodeSessionsDir  = "deploylab-node-sessions"
)

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
	// Sessions deploys the stateful cluster's Node model answer
	// (payload/sessions/node/sessions.js, its own cluster of Instances
	// workers) instead of the practice's app: three PM2 apps in fork mode,
	// SESSIONS=memory, master and stateless, on Port, Port+1 and Port+2.
	Sessions bool
}

// NodeOptions are the user's choices for NewNodeDeployment.
type NodeOptions struct {
	Dir               string
	Port, ClusterPort int
	Instances         int
	GlobalTools       bool
	Sessions          bool
}

// NewNodeDeployment validates o and fills the defaults.
func NewNodeDeployment(o NodeOptions) (NodeDeployment, error) {
	n := NodeDeployment{Dir: o.Dir, Port: o.Port, ClusterPort: o.ClusterPort, Instances: o.Instances, GlobalTools: o.GlobalTools, Sessions: o.Sessions}
	if n.Sessions {
		if n.Dir == "" {
			n.Dir = DefaultNodeSessionsDir
		}
		if n.Port == 0 {
			n.Port = DefaultNodeSessionsPort
		}
		if n.Port > 65533 {
			return NodeDeployment{}, fail.Errorf(fail.Usage, "use a port up to 65533 (the three modes take it and the next two)", "--node-port %d is out of range", n.Port)
		}
		n.ClusterPort = n.Port + 1
	}
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
	if n.Sessions {
		d := Deployment{Root: n.Dir, Supervisor: SupervisorPM2}
		for _, a := range n.pm2Apps() {
			d.Services = append(d.Services, Service{Name: strings.TrimPrefix(a.name, "deploylab-"), Program: "node", Port: a.port,
				Description: "the stateful cluster's Node model answer, " + a.mode + " mode (its own cluster, PM2 fork mode)"})
		}
		return d
	}
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

// Task names of Up for the Node app, in order (with facts and verify).
const (
	TaskNode    = "nodejs"
	TaskApp     = "app"
	TaskDeps    = "npm-ci"
	TaskTools   = "tools"
	TaskStartup = "startup"
	TaskPM2Apps = "pm2-apps"
)

func init() {
	registerApp("node", func(o AppOptions) (App, error) {
		return NewNodeDeployment(NodeOptions{Port: o.NodePort, ClusterPort: o.NodeClusterPort, Instances: o.Instances})
	})
	registerApp("node-sessions", func(o AppOptions) (App, error) {
		return NewNodeDeployment(NodeOptions{Sessions: true, Instances: o.Instances})
	})
}

// AppName is "node" (or "node-sessions").
func (n NodeDeployment) AppName() string {
	if n.Sessions {
		return "node-sessions"
	}
	return "node"
}

// nodePM2App is one PM2 app of a Node deployment.
type nodePM2App struct {
	name, script, mode string // mode: fork or cluster
	instances, port    int
	env                string // more env entries, as JS
	waitReady          bool   // the script sends "ready" once it listens
	sessions           string // the sessions mode, for the model answer
}

// pm2Apps are the deployment's PM2 apps: the practice's single and
// cluster apps, or the model answer's three modes.
func (n NodeDeployment) pm2Apps() []nodePM2App {
	if !n.Sessions {
		return []nodePM2App{
			{name: NodeSingleApp, script: "app.js", mode: "fork", instances: 1, port: n.Port, waitReady: true},
			{name: NodeClusterApp, script: "app.js", mode: "cluster", instances: n.Instances, port: n.ClusterPort, waitReady: true},
		}
	}
	var out []nodePM2App
	for i, m := range []string{"memory", "master", "stateless"} {
		env := fmt.Sprintf("SESSIONS: %q, SESSION_KEY_FILE: %q", m, nodeSessionKey)
		if n.Instances > 0 {
			env += fmt.Sprintf(", WORKERS: %d", n.Instances)
		}
		out = append(out, nodePM2App{name: "deploylab-node-sessions-" + m, script: "sessions.js", mode: "fork", instances: 1, port: n.Port + i, env: env, sessions: m})
	}
	return out
}

// nodeSessionKey is the stateless mode's key file, in the app directory
// (made on the host by up, never uploaded).
const nodeSessionKey = "session.key"

// appNames are the deployment's PM2 app names.
func (n NodeDeployment) appNames() []string {
	var out []string
	for _, a := range n.pm2Apps() {
		out = append(out, a.name)
	}
	return out
}

// fileNames are the files up uploads to the app directory, in order.
func (n NodeDeployment) fileNames() []string {
	if n.Sessions {
		return []string{"sessions.js", "package.json", "package-lock.json", "ecosystem.config.js"}
	}
	return nodeFileOrder
}

// scriptFile is the content of the PM2 apps' script.
func (n NodeDeployment) scriptFile() []byte {
	if n.Sessions {
		return sessions.NodeModelAnswer
	}
	return nodeapp.File("app.js")
}

func (n NodeDeployment) backend() runner {
	if n.Port == 0 {
		n, _ = NewNodeDeployment(NodeOptions{})
	}
	return engine[nodeHost]{nodeBackend{n}}
}

// nodeBackend installs the practice's Node app and runs it under the login
// user's PM2 (pm2User, in sup_pm2.go).
type nodeBackend struct{ n NodeDeployment }

func (b nodeBackend) Deployment() Deployment { return b.n.Deployment() }

// nodeHost is what the Node app's tasks learn about one host.
type nodeHost struct {
	dir    string
	noNode bool // check mode: node would be installed
	// hadNpmCache and hadPM2Home: ~/.npm and ~/.pm2 were there before up
	// (else up records that it added them, for down).
	hadNpmCache, hadPM2Home bool
	pm2                     string
	filesSame               bool // every app file was already there
	depsSame                bool
	// st is PM2's state as the verbs' first task read it.
	st *nodeState
}

// Up deploys the practice's Node app: Node.js and npm (Debian's, through
// apt, when missing), the app's files, npm ci (offline from npm's cache
// first: lab hosts have no internet), pm2 and loadtest, then PM2's tasks
// (pm2 startup, the two PM2 apps from a generated ecosystem.config.js),
// verified over HTTP. A second run changes nothing.
func (b nodeBackend) Up(o UpOptions) []Task[nodeHost] {
	p := pm2User{b.n}
	tasks := []Task[nodeHost]{
		{TaskFacts, b.facts},
		{TaskNode, b.nodejs},
		{TaskApp, b.app},
		{TaskDeps, b.deps},
		{TaskTools, b.tools},
	}
	tasks = append(tasks, p.up()...)
	return append(tasks, Task[nodeHost]{TaskVerify, func(ctx context.Context, h *HostRun, st *nodeHost) TaskResult {
		return b.verify(ctx, h, st, o.VerifyTimeout)
	}})
}

func (b nodeBackend) facts(ctx context.Context, h *HostRun, st *nodeHost) TaskResult {
	f, err := observeFacts(ctx, h)
	if err != nil {
		return Fail(err)
	}
	st.dir = b.n.AppDir(f.Home)
	desc := fmt.Sprintf("%s %s, %s, %d CPUs, user %s", orUnknown(f.OSID), f.OSVersion, orUnknown(f.Arch), f.CPUs, f.User)
	if !f.Systemd {
		return Fail(fail.Errorf(fail.Failed, "deploy to a host booted with systemd (a Debian 12 VM is): pm2 startup needs it", "%s: systemd is not running (PID 1 is %q)", desc, f.Init))
	}
	if err := checkSudo(ctx, h, desc); err != nil {
		return Fail(err) // apt and pm2 startup need root
	}
	for _, p := range []int{b.n.Port, b.n.ClusterPort} {
		for _, pr := range f.Holders(p) {
			if !isNodeProcess(pr.Name) {
				return Fail(fail.Errorf(fail.Failed, "stop it or choose other ports with --node-port/--node-cluster-port",
					"port %d is in use by %s (pid %d)", p, pr.Name, pr.PID))
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
func (b nodeBackend) nodejs(ctx context.Context, h *HostRun, st *nodeHost) TaskResult {
	const probe = `printf 'node=%s\nnpm=%s\n' "$(node --version 2>/dev/null)" "$(npm --version 2>/dev/null)"
[ -d "$HOME/.npm" ] && echo npmcache=yes; [ -d "${PM2_HOME:-$HOME/.pm2}" ] && echo pm2home=yes; exit 0`
	out, err := userSh(ctx, h, "node --version", probe)
	if err != nil {
		return Fail(err)
	}
	nodeV, npmV := kv(out, "node"), kv(out, "npm")
	st.hadNpmCache, st.hadPM2Home = kv(out, "npmcache") == "yes", kv(out, "pm2home") == "yes"
	if nodeV != "" && npmV != "" {
		if m := majorOf(nodeV); m < NodeMinMajor {
			return Fail(fail.Errorf(fail.Prereq, fmt.Sprintf("install Node.js %d or later on the host (Debian 12's nodejs package is 18)", NodeMinMajor), "node %s is too old for Express 5", nodeV))
		}
		return Ok("node %s, npm %s", nodeV, npmV)
	}
	changes := []string{"apt-get install nodejs npm"}
	if h.Check {
		st.noNode = true
		return Change(changes, "would install Debian's nodejs and npm (node %q, npm %q found)", nodeV, npmV)
	}
	const install = `export DEBIAN_FRONTEND=noninteractive
inst() { apt-get install -y -q --no-install-recommends nodejs npm >/tmp/deploylab-apt.log 2>&1; }
inst || { apt-get update -q >>/tmp/deploylab-apt.log 2>&1; inst; } || { tail -n 3 /tmp/deploylab-apt.log >&2; exit 1; }`
	// What up adds is recorded before it is added: a run cut short
	// still leaves down the list.
	if err := recordAdded(ctx, h, st.dir, "apt nodejs npm"); err != nil {
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

func majorOf(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	return n
}

// nodeFilesFor is every file the app directory holds, by name.
func (b nodeBackend) nodeFilesFor(dir string) map[string][]byte {
	m := map[string][]byte{"ecosystem.config.js": b.n.Ecosystem(dir)}
	for _, name := range nodeapp.Files {
		m[name] = nodeapp.File(name)
	}
	if b.n.Sessions {
		m = map[string][]byte{"ecosystem.config.js": m["ecosystem.config.js"], "sessions.js": sessions.NodeModelAnswer,
			"package.json": m["package.json"], "package-lock.json": m["package-lock.json"]}
	}
	return m
}

var nodeFileOrder = append(append([]string{}, nodeapp.Files...), "ecosystem.config.js")

// app uploads the app's files (skipping unchanged ones).
func (b nodeBackend) app(ctx context.Context, h *HostRun, st *nodeHost) TaskResult {
	files := b.nodeFilesFor(st.dir)
	var paths []string
	for _, name := range b.n.fileNames() {
		paths = append(paths, path.Join(st.dir, name))
	}
	sums, err := remoteSums(ctx, h, paths)
	if err != nil {
		return Fail(err)
	}
	var changes []string
	if b.n.Sessions {
		// The stateless mode's key: made once on the host, never uploaded.
		key := path.Join(st.dir, nodeSessionKey)
		out, err := userSh(ctx, h, "session key", fmt.Sprintf("[ -s %[1]s ] && echo have; exit 0", q(key)))
		if err != nil {
			return Fail(err)
		}
		if strings.TrimSpace(out) != "have" {
			if h.Check {
				changes = append(changes, key)
			} else if _, err := userSh(ctx, h, "session key", fmt.Sprintf("mkdir -p %[2]s && (umask 077 && head -c 32 /dev/urandom > %[1]s.new && mv -f %[1]s.new %[1]s)", q(key), q(st.dir))); err != nil {
				return Fail(err)
			} else {
				changes = append(changes, key)
			}
		}
	}
	for _, name := range b.n.fileNames() {
		p := path.Join(st.dir, name)
		if sums[p] != sha256Hex(files[name]) {
			changes = append(changes, p)
		}
	}
	if len(changes) == 0 {
		st.filesSame = true
		return Ok("%s: %d files up to date", st.dir, len(files))
	}
	if h.Check {
		return Change(changes, "would write %d files in %s", len(changes), st.dir)
	}
	for _, p := range changes {
		if path.Base(p) == nodeSessionKey {
			continue
		}
		if _, err := h.Exec.WriteFile(ctx, p, files[path.Base(p)], 0o644); err != nil {
			return Fail(fmt.Errorf("upload %s: %w", p, err))
		}
	}
	return Change(changes, "wrote %d files in %s", len(changes), st.dir)
}

// deps runs npm ci when package-lock.json differs from what is installed:
// offline first (npm's cache), then online.
func (b nodeBackend) deps(ctx context.Context, h *HostRun, st *nodeHost) TaskResult {
	lock := sha256Hex(nodeapp.File("package-lock.json"))
	marker := path.Join(st.dir, "node_modules", ".deploylab-lock")
	out, err := userSh(ctx, h, "read node_modules", fmt.Sprintf("cat %s 2>/dev/null; [ -f %s ] && echo express-present; exit 0",
		q(marker), q(path.Join(st.dir, "node_modules/express/package.json"))))
	if err != nil {
		return Fail(err)
	}
	if strings.Contains(out, lock) && strings.Contains(out, "express-present") {
		st.depsSame = true
		return Ok("node_modules matches package-lock.json")
	}
	if h.Check {
		return Change([]string{path.Join(st.dir, "node_modules")}, "would run npm ci in %s", st.dir)
	}
	script := fmt.Sprintf(`cd %s || exit 1
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false npm_config_loglevel=error
if npm ci --offline >/tmp/deploylab-npm-$$.log 2>&1; then how=offline
elif npm ci --fetch-timeout=20000 --fetch-retries=1 >>/tmp/deploylab-npm-$$.log 2>&1; then how=online
else tail -n 3 /tmp/deploylab-npm-$$.log >&2; rm -f /tmp/deploylab-npm-$$.log; exit 1; fi
rm -f /tmp/deploylab-npm-$$.log
echo %s > node_modules/.deploylab-lock && echo "how=$how"`, q(st.dir), q(lock))
	if !st.hadNpmCache {
		if err := recordAdded(ctx, h, st.dir, "npm-cache"); err != nil {
			return Fail(err)
		}
	}
	out, err = userSh(ctx, h, "npm ci", script)
	if err != nil {
		return Fail(fail.New(fail.Prereq,
			"npm could neither install from its cache (offline) nor reach the registry: give the host internet access or fill npm's cache (npm cache add express@5.3.0)", err))
	}
	how := kv(out, "how")
	return Change([]string{path.Join(st.dir, "node_modules")}, "npm ci (%s, from package-lock.json)", map[string]string{"offline": "offline, from npm's cache", "online": "from the registry"}[how])
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
func (b nodeBackend) tools(ctx context.Context, h *HostRun, st *nodeHost) TaskResult {
	tools := b.n.ToolsDir(h.Facts.Home)
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
	st.pm2 = kv(out, "pm2")
	if len(missing) == 0 {
		return Ok("pm2 %s, loadtest %s", kv(out, "pm2"), kv(out, "loadtest"))
	}
	where := tools
	if b.n.GlobalTools {
		where = "global (npm -g)"
	}
	changes := []string{"npm install " + strings.Join(missing, " ") + " (" + where + ")"}
	if h.Check {
		st.pm2 = "pm2"
		return Change(changes, "would install %s (%s)", strings.Join(missing, " and "), where)
	}
	pkgs := strings.Join(missing, " ")
	// npm -g runs as root (root's cache); a local install, as the user.
	var added []string
	if b.n.GlobalTools {
		added = append(added, "npm-global "+pkgs)
	} else if !st.hadNpmCache {
		added = append(added, "npm-cache")
	}
	if len(added) > 0 {
		if err := recordAdded(ctx, h, st.dir, added...); err != nil {
			return Fail(err)
		}
	}
	install := fmt.Sprintf(`mkdir -p %[1]s && cd %[1]s && { [ -f package.json ] || echo '{"name":"deploylab-tools","private":true}' > package.json; }
export npm_config_fund=false npm_config_audit=false npm_config_update_notifier=false npm_config_loglevel=error
npm install --offline %[2]s >/tmp/deploylab-npm-$$.log 2>&1 || npm install --fetch-timeout=20000 --fetch-retries=1 %[2]s >>/tmp/deploylab-npm-$$.log 2>&1 || { tail -n 3 /tmp/deploylab-npm-$$.log >&2; rm -f /tmp/deploylab-npm-$$.log; exit 1; }
rm -f /tmp/deploylab-npm-$$.log`, q(tools), pkgs)
	if b.n.GlobalTools {
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
	st.pm2 = kv(out, "pm2")
	return Change(changes, "installed %s (%s): pm2 %s, loadtest %s", pkgs, where, kv(out, "pm2"), kv(out, "loadtest"))
}

// verify asks both apps for / and /api/50 from the host itself and checks
// PM2 runs the cluster with the wanted number of processes.
func (b nodeBackend) verify(ctx context.Context, h *HostRun, st *nodeHost, timeout time.Duration) TaskResult {
	if h.Check && h.Changed() {
		return Skip("check mode: the apps would change")
	}
	var names []string
	var ports []int
	for _, a := range b.n.pm2Apps() {
		names, ports = append(names, a.name), append(ports, a.port)
	}
	parts, bad, via, err := verifyPorts(ctx, h, names, ports, timeout)
	if err != nil {
		return Fail(err)
	}
	if len(bad) == 0 {
		if s, err := (pm2User{b.n}).running(ctx, h, st); err != nil {
			return Fail(err)
		} else if s != "" {
			bad = append(bad, s)
		}
	}
	if len(bad) > 0 {
		return Fail(fail.Errorf(fail.Failed, "see: pm2 ls; pm2 logs", "%s", strings.Join(bad, "; ")))
	}
	return Ok("%s (/ and /api/50 answered from the host via %s)", strings.Join(parts, ", "), via)
}

// Control: PM2's daemon first (the "pm2" task), then PM2's verb on each
// app (tasks single and cluster).
func (b nodeBackend) Control(verb Verb, svcs []Service, timeout time.Duration) []Task[nodeHost] {
	p := pm2User{b.n}
	tasks := []Task[nodeHost]{{"pm2", func(ctx context.Context, h *HostRun, st *nodeHost) TaskResult {
		return p.daemon(ctx, h, st, verb)
	}}}
	for _, s := range svcs {
		// Tasks are named single and cluster (the line says which app).
		tasks = append(tasks, Task[nodeHost]{strings.TrimPrefix(s.Name, "node-"), func(ctx context.Context, h *HostRun, _ *nodeHost) TaskResult {
			return p.control(ctx, h, s, verb, timeout)
		}})
	}
	return tasks
}

// Ls lists the apps from the login user's pm2 jlist.
func (b nodeBackend) Ls(ctx context.Context, h *HostRun, _ *nodeHost, svcs []Service, _ time.Duration) ([]ProcStatus, error) {
	st, err := readNodeState(ctx, h, b.n)
	if err != nil {
		return nil, err
	}
	return nodeRows(st, svcs), nil
}

// Logs prints the apps' PM2 log files, read as the login user.
func (b nodeBackend) Logs(ctx context.Context, h *HostRun, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	return (pm2User{b.n}).logs(ctx, h, svcs, o, emit)
}

// Task names of down --app node, in order (then files and verify).
const (
	TaskDownApps     = "pm2-apps"
	TaskDownPackages = "packages"
)

// Down removes what up --app node added: the apps from PM2 (and PM2's
// process list saved without them), then, when no other PM2 app is left,
// what up recorded it added (pm2-<user>.service, PM2's home, npm -g
// packages, Debian's nodejs and npm, npm's cache), and the app directory.
// Anything up found on the host is left there, and the task says so.
func (b nodeBackend) Down() []Task[nodeHost] {
	return []Task[nodeHost]{{TaskDownApps, (pm2User{b.n}).down}, {TaskDownPackages, b.downPackages}, {TaskDownFiles, b.downDir}, {TaskDownVerify, b.downVerify}}
}

// nodeAddedFile, in the app directory, lists what up --app node added to
// the host outside it, one thing a line, so that down removes exactly that:
//
//	apt nodejs npm              Debian packages it installed
//	npm-global pm2 loadtest     npm -g packages it installed
//	startup pm2-<user>.service  the unit pm2 startup wrote
//	pm2-home                    PM2's home (~/.pm2), absent before
//	npm-cache                   npm's cache (~/.npm), absent before
const nodeAddedFile = ".deploylab-added"

// recordAdded appends what to the app directory's nodeAddedFile (once each).
func recordAdded(ctx context.Context, h *HostRun, dir string, what ...string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mkdir -p %s && f=%s && touch \"$f\" || exit 1\n", q(dir), q(path.Join(dir, nodeAddedFile)))
	for _, w := range what {
		fmt.Fprintf(&b, "grep -qxF %[1]s \"$f\" || printf '%%s\\n' %[1]s >> \"$f\" || exit 1\n", q(w))
	}
	_, err := userSh(ctx, h, "record "+strings.Join(what, ", "), b.String())
	return err
}

// What up --app node may record adding. nodeAddedFile is the login user's
// file: down removes only these, whatever else a line names.
var (
	nodeAptPackages = []string{"nodejs", "npm"}
	nodeNpmPackages = []string{"pm2", "loadtest"}
)

// nodeRecord is what nodeAddedFile says up added, as far as down may
// remove it.
type nodeRecord struct {
	// apt and npm are the Debian and npm -g packages recorded, of those up
	// installs (nodeAptPackages, nodeNpmPackages).
	apt, npm []string
	// unit is pm2 startup's unit of the user, when recorded.
	unit string
	// npmCache and pm2Home: up created ~/.npm, ~/.pm2.
	npmCache, pm2Home bool
	// ignored are the other things the lines name (quoted, clipped): never
	// used in a command.
	ignored []string
}

// readRecord reads nodeAddedFile's lines for user (the login user, as id
// -un says).
func readRecord(lines []string, user string) nodeRecord {
	var r nodeRecord
	ignore := func(s string) {
		if len(r.ignored) < 5 {
			r.ignored = append(r.ignored, strconv.Quote(clip(s)))
		}
	}
	for _, line := range lines {
		kind, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		names := strings.Fields(rest)
		switch kind {
		case "apt", "npm-global":
			allowed, list := nodeAptPackages, &r.apt
			if kind == "npm-global" {
				allowed, list = nodeNpmPackages, &r.npm
			}
			for _, n := range names {
				switch {
				case !slices.Contains(allowed, n):
					ignore(kind + " " + n)
				case !slices.Contains(*list, n):
					*list = append(*list, n)
				}
			}
		case "startup":
			u := strings.TrimSpace(rest)
			if u == "" {
				u = PM2Unit(user)
			}
			if u != PM2Unit(user) || !validUser(user) {
				ignore(line)
				continue
			}
			r.unit = u
		case "pm2-home":
			r.pm2Home = true
		case "npm-cache":
			r.npmCache = true
		case "":
		default:
			ignore(line)
		}
	}
	return r
}

// validUser reports whether name is a user name as Debian's adduser
// accepts it (so that pm2-<name>.service is a plain unit name).
func validUser(name string) bool {
	if name == "" || len(name) > 32 {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-' || c == '.' || c >= 'A' && c <= 'Z'):
		default:
			return false
		}
	}
	return true
}

// ignoredMsg is "; ignored <names> of the record (not what up adds)", or
// "" when nothing was.
func (r nodeRecord) ignoredMsg() string {
	if len(r.ignored) == 0 {
		return ""
	}
	return fmt.Sprintf("; ignored %s in %s (not what up adds)", strings.Join(r.ignored, ", "), nodeAddedFile)
}

// packages removes what up recorded installing and is still there: npm -g
// packages (before npm itself), Debian's packages, npm's cache.
func (b nodeBackend) downPackages(ctx context.Context, h *HostRun, hs *nodeHost) TaskResult {
	st := hs.st
	rec := readRecord(st.Added, st.User)
	aptPkgs, npmPkgs, cache := rec.apt, rec.npm, rec.npmCache
	if len(aptPkgs)+len(npmPkgs) == 0 && !cache {
		return Ok("up installed no package here%s", rec.ignoredMsg())
	}
	// What of it is still there (a package may be gone already).
	var probe strings.Builder
	for _, p := range aptPkgs {
		fmt.Fprintf(&probe, "dpkg-query -W -f='${db:Status-Status}' %[1]s 2>/dev/null | grep -qx installed && echo apt %[1]s\n", q(p))
	}
	if len(npmPkgs) > 0 {
		probe.WriteString("r=$(npm root -g 2>/dev/null)\n")
		for _, p := range npmPkgs {
			fmt.Fprintf(&probe, "[ -n \"$r\" ] && [ -d \"$r\"/%[1]s ] && echo npm %[1]s\n", q(p))
		}
	}
	if cache {
		probe.WriteString("[ -d \"$HOME/.npm\" ] && echo cache\n")
	}
	out, err := userSh(ctx, h, "find packages", probe.String()+"exit 0\n")
	if err != nil {
		return Fail(err)
	}
	var apt, npm []string
	var hasCache bool
	for _, line := range strings.Split(out, "\n") {
		switch f := strings.Fields(line); {
		case len(f) == 2 && f[0] == "apt" && slices.Contains(aptPkgs, f[1]):
			apt = append(apt, f[1])
		case len(f) == 2 && f[0] == "npm" && slices.Contains(npmPkgs, f[1]):
			npm = append(npm, f[1])
		case len(f) == 1 && f[0] == "cache":
			hasCache = true
		}
	}
	var changes []string
	var root string
	// npm's packages go before npm itself.
	if len(npm) > 0 {
		root += fmt.Sprintf("npm uninstall -g %s >/dev/null 2>&1 || { echo 'npm uninstall -g failed' >&2; exit 1; }\n", quoteAll(npm))
		changes = append(changes, "npm -g "+strings.Join(npm, " "))
	}
	if len(apt) > 0 {
		root += fmt.Sprintf("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove %s >/tmp/deploylab-apt.log 2>&1 || { tail -n 3 /tmp/deploylab-apt.log >&2; exit 1; }\nrm -f /tmp/deploylab-apt.log\n", quoteAll(apt))
		changes = append(changes, "apt "+strings.Join(apt, " "))
	}
	if hasCache {
		changes = append(changes, st.Home+"/.npm")
	}
	if len(changes) == 0 {
		return Ok("none of what up recorded installing is here%s", rec.ignoredMsg())
	}
	if h.Check {
		return Change(changes, "would remove %s%s", strings.Join(changes, ", "), rec.ignoredMsg())
	}
	if root != "" {
		if _, err := sh(ctx, h, "remove packages", root); err != nil {
			return Fail(err)
		}
	}
	if hasCache {
		if _, err := userSh(ctx, h, "remove npm's cache", `rm -rf -- "$HOME/.npm"`); err != nil {
			return Fail(err)
		}
	}
	return Change(changes, "removed %s%s", strings.Join(changes, ", "), rec.ignoredMsg())
}

// quoteAll quotes each name for the shell, space-separated.
func quoteAll(names []string) string {
	var qs []string
	for _, n := range names {
		qs = append(qs, q(n))
	}
	return strings.Join(qs, " ")
}

// dir removes the app directory (and with it the record).
func (b nodeBackend) downDir(ctx context.Context, h *HostRun, hs *nodeHost) TaskResult {
	st := hs.st
	if !st.DirExists {
		return Ok("no %s", st.Dir)
	}
	if h.Check {
		return Change([]string{st.Dir}, "would remove %s", st.Dir)
	}
	if _, err := userSh(ctx, h, "remove "+st.Dir, "rm -rf -- "+q(st.Dir)); err != nil {
		return Fail(err)
	}
	return Change([]string{st.Dir}, "removed %s", st.Dir)
}

// verify checks, independently of the tasks before, that nothing of the
// deployment is left.
func (b nodeBackend) downVerify(ctx context.Context, h *HostRun, hs *nodeHost) TaskResult {
	if h.Check && h.Changed() {
		return Skip("check mode: things would be removed")
	}
	before := hs.st
	st, err := readNodeState(ctx, h, b.n)
	if err != nil {
		return Fail(err)
	}
	var left []string
	if st.DirExists {
		left = append(left, st.Dir)
	}
	for _, a := range b.n.appNames() {
		if len(st.app(a)) > 0 {
			left = append(left, "pm2:"+a)
		}
	}
	if len(before.others()) == 0 {
		rec := readRecord(before.Added, before.User)
		if unit := rec.unit; unit != "" {
			if out, _ := sh(ctx, h, "find unit", "[ -e /etc/systemd/system/"+q(unit)+" ] && echo yes; exit 0"); strings.TrimSpace(out) == "yes" {
				left = append(left, unit)
			}
		}
		if rec.pm2Home && st.Daemon {
			left = append(left, "PM2's daemon")
		}
	}
	// Processes working in the app directory (their cwd): the apps.
	out, err := userSh(ctx, h, "find processes", `for p in /proc/[0-9]*; do c=$(readlink "$p/cwd" 2>/dev/null) || continue
case "$c" in `+q(st.Dir)+"|"+q(st.Dir)+`/*|`+q(st.Dir+" (deleted)")+`) echo "${p#/proc/}";; esac; done; exit 0`)
	if err != nil {
		return Fail(err)
	}
	for _, pid := range strings.Fields(out) {
		left = append(left, "process:"+pid)
	}
	if len(left) > 0 {
		return Fail(fmt.Errorf("left on the host: %s", strings.Join(left, " ")))
	}
	return Ok("no app, file, unit or process of deploylab's Node deployment left")
}
