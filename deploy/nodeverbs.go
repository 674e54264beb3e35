package deploy

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// This file holds the verbs for the practice's Node deployment (up --app
// node): ls, reload/restart/stop/start, logs and down, through the login
// user's PM2 (pm2 jlist and PM2's own verbs), as `pm2 ls`, `pm2 reload` and
// friends would be typed on the VM.

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

// nodeState is what one round trip as the login user tells of the Node
// deployment on a host.
type nodeState struct {
	User, Home string
	// Dir is the app directory; DirExists says whether it is there.
	Dir       string
	DirExists bool
	// PM2 is the pm2 that up uses (the app directory's own, else the one on
	// PATH); "" when there is none.
	PM2     string
	PM2Home string
	// HomeExists: PM2Home is there.
	HomeExists bool
	// Daemon: PM2's daemon of the user runs; Unit: its pm2-<user>.service
	// unit file is there.
	Daemon, Unit bool
	// Added are the lines of nodeAddedFile.
	Added []string
	// Logs are PM2's log files of deploylab's apps.
	Logs []string
	// Procs is pm2 jlist (nil when the daemon does not run: jlist would
	// start one).
	Procs []PM2Proc
}

// stateScript prints nodeState, jlist last.
func (n NodeDeployment) stateScript() string {
	dir := `"$HOME"/` + q(n.Dir)
	if path.IsAbs(n.Dir) {
		dir = q(path.Clean(n.Dir))
	}
	return `dir=` + dir + `
pm2=$dir/.tools/node_modules/.bin/pm2
[ -x "$pm2" ] || pm2=$(command -v pm2 2>/dev/null) || pm2=
ph=${PM2_HOME:-$HOME/.pm2}
echo "@@user $(id -un)"
echo "@@home $HOME"
echo "@@dir $dir"
[ -d "$dir" ] && echo "@@exists"
echo "@@pm2 $pm2"
echo "@@pm2home $ph"
[ -d "$ph" ] && echo "@@homeexists"
[ -f "/etc/systemd/system/pm2-$(id -un).service" ] && echo "@@unit"
sed 's/^/@@added /' "$dir/` + nodeAddedFile + `" 2>/dev/null
for f in "$ph"/logs/deploylab-node-*.log; do [ -f "$f" ] && echo "@@log $f"; done
if [ -f "$ph/pm2.pid" ] && kill -0 "$(cat "$ph/pm2.pid")" 2>/dev/null; then
  echo "@@daemon"
  [ -n "$pm2" ] && { echo "@@jlist"; "$pm2" jlist 2>&1; }
fi
exit 0
`
}

// readNodeState reads the Node deployment's state as the login user.
func readNodeState(ctx context.Context, h *HostRun, n NodeDeployment) (*nodeState, error) {
	out, err := userSh(ctx, h, "read PM2's state", n.stateScript())
	if err != nil {
		return nil, err
	}
	return parseNodeState(out)
}

func parseNodeState(out string) (*nodeState, error) {
	st := &nodeState{}
	head, jl, hasJlist := strings.Cut(out, "@@jlist\n")
	for _, line := range strings.Split(head, "\n") {
		k, v, _ := strings.Cut(strings.TrimRight(line, "\r"), " ")
		switch k {
		case "@@user":
			st.User = v
		case "@@home":
			st.Home = v
		case "@@dir":
			st.Dir = v
		case "@@exists":
			st.DirExists = true
		case "@@pm2":
			st.PM2 = v
		case "@@pm2home":
			st.PM2Home = v
		case "@@added":
			st.Added = append(st.Added, strings.TrimSpace(v))
		case "@@log":
			st.Logs = append(st.Logs, v)
		case "@@daemon":
			st.Daemon = true
		case "@@unit":
			st.Unit = true
		case "@@homeexists":
			st.HomeExists = true
		}
	}
	if hasJlist {
		procs, err := ParsePM2JList(jl)
		if err != nil {
			return nil, err
		}
		st.Procs = procs
	}
	return st, nil
}

// app returns the processes of the PM2 app name.
func (st *nodeState) app(name string) []PM2Proc {
	var ps []PM2Proc
	for _, p := range st.Procs {
		if p.Name == name {
			ps = append(ps, p)
		}
	}
	return ps
}

// others are the names of PM2 apps that are not deploylab's Node apps.
func (st *nodeState) others() []string {
	var names []string
	for _, p := range st.Procs {
		if p.Name != NodeSingleApp && p.Name != NodeClusterApp && !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return names
}

// added returns the recorded line starting with kind, and whether there
// is one.
func (st *nodeState) added(kind string) (string, bool) {
	for _, a := range st.Added {
		if a == kind || strings.HasPrefix(a, kind+" ") {
			return a, true
		}
	}
	return "", false
}

func online(procs []PM2Proc) int {
	n := 0
	for _, p := range procs {
		if p.Env.Status == "online" {
			n++
		}
	}
	return n
}

func statuses(procs []PM2Proc) string {
	var s []string
	for _, p := range procs {
		if !slices.Contains(s, p.Env.Status) {
			s = append(s, p.Env.Status)
		}
	}
	return strings.Join(s, ", ")
}

// nodeRows are ls's rows for the Node apps, from pm2 jlist: the figures are
// PM2's own (monit's CPU and memory, pm_uptime, restart_time), as pm2 ls
// shows them; the cluster's row adds up its processes, one worker each.
func nodeRows(st *nodeState, svcs []Service) []ProcStatus {
	var rows []ProcStatus
	for _, s := range svcs {
		ps := ProcStatus{Name: s.Name, Mode: "fork", Supervisor: SupervisorPM2}
		if s.Reload {
			ps.Mode = "cluster"
		}
		procs := st.app(pm2Name(s))
		if len(procs) == 0 {
			ps.Status = "missing"
			if st.DirExists && !st.Daemon {
				ps.Status = "stopped" // PM2's daemon is not running
			}
			rows = append(rows, ps)
			continue
		}
		fill := func(r *ProcStatus, p PM2Proc) {
			r.Status = p.Env.Status
			r.Restarts = p.Env.RestartTime
			r.CPU = p.Monit.CPU
			r.Memory = p.Monit.Memory
			if p.Env.Status == "online" {
				r.PID = p.PID
				if p.Env.PMUptime > 0 {
					r.Uptime = max(0, time.Since(time.UnixMilli(p.Env.PMUptime)).Seconds())
				}
			}
		}
		if !s.Reload {
			fill(&ps, procs[0])
			rows = append(rows, ps)
			continue
		}
		slices.SortFunc(procs, func(a, b PM2Proc) int { return a.PMID - b.PMID })
		for _, p := range procs {
			w := ProcStatus{Name: fmt.Sprintf("worker %d", p.PMID)}
			fill(&w, p)
			ps.Workers = append(ps.Workers, w)
			ps.Restarts += w.Restarts
			ps.CPU += w.CPU
			ps.Memory += w.Memory
			ps.Uptime = max(ps.Uptime, w.Uptime)
		}
		switch n := online(procs); {
		case n == len(procs):
			ps.Status = "online"
		case n > 0:
			ps.Status = "degraded"
		default:
			ps.Status = procs[0].Env.Status
		}
		rows = append(rows, ps)
	}
	return rows
}

// nodeVerbHost is what the Node verbs learn about a host.
type nodeVerbHost struct {
	st *nodeState
}

// nodeDaemon is the Node verbs' first task: pm2 and the app are there, and
// PM2's daemon runs (for any verb but stop it is started through
// pm2-<user>.service, whose pm2 resurrect brings the saved apps back).
func nodeDaemon(n NodeDeployment, verb Verb) func(ctx context.Context, h *HostRun) TaskResult {
	return func(ctx context.Context, h *HostRun) TaskResult {
		st, err := readNodeState(ctx, h, n)
		if err != nil {
			return Fail(err)
		}
		h.Data.(*nodeVerbHost).st = st
		if st.PM2 == "" {
			return Fail(fail.Errorf(fail.Prereq, "deploy it first: deploylab up --app node", "pm2 is not installed for user %s", st.User))
		}
		if !st.DirExists && len(st.app(NodeSingleApp))+len(st.app(NodeClusterApp)) == 0 {
			return Fail(fail.Errorf(fail.Failed, "deploy it first: deploylab up --app node", "the Node app is not deployed for user %s (no %s)", st.User, st.Dir))
		}
		if st.Daemon {
			return Ok("PM2's daemon of %s is running (%s)", st.User, st.PM2Home)
		}
		if verb == VerbStop {
			return Ok("PM2's daemon of %s is not running: nothing runs", st.User)
		}
		unit := PM2Unit(st.User)
		if _, err := sh(ctx, h, "start "+unit, "systemctl start "+q(unit)); err != nil {
			return Fail(fail.New(fail.Failed, "run deploylab up --app node (it writes "+unit+"), or see: journalctl -u "+unit, err))
		}
		if st, err = readNodeState(ctx, h, n); err != nil {
			return Fail(err)
		}
		h.Data.(*nodeVerbHost).st = st
		if !st.Daemon {
			return Fail(fail.Errorf(fail.Failed, "see: journalctl -u "+unit, "PM2's daemon is not running after systemctl start %s", unit))
		}
		return Change([]string{"start " + unit}, "started %s (pm2 resurrect)", unit)
	}
}

// nodeControl applies verb to one Node app with PM2's own verb, waits until
// PM2 shows the outcome, then saves PM2's process list (pm2 save) so a
// reboot brings back what is running now. pm2 reload is zero-downtime for
// the cluster app (PM2 replaces its processes, waiting for each to be
// ready); for the single app, in fork mode, it is a restart.
func nodeControl(ctx context.Context, h *HostRun, n NodeDeployment, s Service, verb Verb, timeout time.Duration) TaskResult {
	st, err := readNodeState(ctx, h, n)
	if err != nil {
		return Fail(err)
	}
	app := pm2Name(s)
	procs := st.app(app)
	if len(procs) == 0 {
		if !st.Daemon && verb == VerbStop {
			return Ok("%s is not running (PM2's daemon is not)", app)
		}
		return Fail(fail.Errorf(fail.Failed, "deploy it first: deploylab up --app node", "%s is not in PM2's process list of user %s", app, st.User))
	}
	up := online(procs)
	action, note := string(verb), ""
	switch verb {
	case VerbStop:
		if up == 0 {
			return Ok("%s already stopped (%s)", app, statuses(procs))
		}
	case VerbStart:
		if up == len(procs) {
			return Ok("%s already online (%d of %d processes)", app, up, len(procs))
		}
	case VerbReload:
		switch {
		case up == 0:
			action, note = "start", " (it was not running: started)"
		case !s.Reload:
			note = " (fork mode: pm2 reload restarts it)"
		}
	}
	script := fmt.Sprintf(`%[1]s %[2]s %[3]s >/tmp/deploylab-pm2-$$.log 2>&1 || { tail -n 3 /tmp/deploylab-pm2-$$.log >&2; rm -f /tmp/deploylab-pm2-$$.log; exit 1; }
rm -f /tmp/deploylab-pm2-$$.log
%[1]s save --force >/dev/null 2>&1 || { echo "pm2 save failed" >&2; exit 1; }`, q(st.PM2), action, q(app))
	if _, err := userSh(ctx, h, "pm2 "+action+" "+app, script); err != nil {
		return Fail(fail.New(fail.Failed, "see: deploylab logs --app node", err))
	}
	deadline := time.Now().Add(timeout)
	for {
		if st, err = readNodeState(ctx, h, n); err != nil {
			return Fail(err)
		}
		procs = st.app(app)
		up = online(procs)
		if verb == VerbStop && up == 0 || verb != VerbStop && up == len(procs) && up > 0 {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return Fail(fail.Errorf(fail.Failed, "see: deploylab logs --app node", "%s: %d of %d processes online %s after pm2 %s (%s)", app, up, len(procs), timeout, action, statuses(procs)))
		}
		time.Sleep(300 * time.Millisecond)
	}
	past := map[string]string{"start": "started", "restart": "restarted", "reload": "reloaded", "stop": "stopped"}[action]
	if action == "reload" && s.Reload {
		past = "reloaded (zero downtime)"
	}
	return Change([]string{"pm2 " + action + " " + app}, "%s %s by PM2%s, %d of %d processes online; pm2 save", app, past, note, up, len(procs))
}

// nodeLogFiles are PM2's log files of the Node apps svcs: those pm2 jlist
// names when the daemon runs, else those found in PM2's logs directory.
func nodeLogFiles(st *nodeState, svcs []Service) []string {
	var files []string
	add := func(f string) {
		if f != "" && f != "/dev/null" && !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	for _, s := range svcs {
		procs := st.app(pm2Name(s))
		slices.SortFunc(procs, func(a, b PM2Proc) int { return a.PMID - b.PMID })
		for _, p := range procs {
			add(p.Env.OutLog)
			add(p.Env.ErrLog)
		}
		if len(procs) > 0 {
			continue
		}
		for _, f := range st.Logs {
			if b := path.Base(f); strings.HasPrefix(b, pm2Name(s)+"-out") || strings.HasPrefix(b, pm2Name(s)+"-error") {
				add(f)
			}
		}
	}
	return files
}

// Task names of down --app node, in order.
const (
	TaskDownApps     = "pm2-apps"
	TaskDownPackages = "packages"
)

// addedUnit is the unit of a "startup <unit>" line of nodeAddedFile.
func addedUnit(line, user string) string {
	if u := strings.TrimSpace(strings.TrimPrefix(line, "startup")); u != "" {
		return u
	}
	return PM2Unit(user)
}

// nodeDownTasks remove what up --app node added: the apps from PM2 (and
// PM2's process list saved without them), then, when no other PM2 app is
// left, what up recorded it added (pm2-<user>.service, PM2's home, npm -g
// packages, Debian's nodejs and npm, npm's cache), and the app directory.
// Anything up found on the host is left there, and the task says so.
func nodeDownTasks(n NodeDeployment) []Task {
	d := nodeDown{n}
	return []Task{{TaskDownApps, d.apps}, {TaskDownPackages, d.packages}, {TaskDownFiles, d.dir}, {TaskDownVerify, d.verify}}
}

// nodeDown is down --app node's tasks; the first one reads the host's
// state for the others.
type nodeDown struct{ n NodeDeployment }

func (nodeDown) state(h *HostRun) *nodeState { return h.Data.(*nodeVerbHost).st }

// apps deletes the two apps from PM2 and saves its process list; when no
// other app is left, it removes the startup unit and PM2's home if up
// recorded adding them.
func (d nodeDown) apps(ctx context.Context, h *HostRun) TaskResult {
	st, err := readNodeState(ctx, h, d.n)
	if err != nil {
		return Fail(err)
	}
	h.Data.(*nodeVerbHost).st = st
	// The apps go first (as the user), the unit next (its stop is
	// pm2 kill), PM2's home last.
	var changes, kept []string
	var del, unit, home string
	var ours []string
	for _, a := range []string{NodeSingleApp, NodeClusterApp} {
		if len(st.app(a)) > 0 {
			ours = append(ours, q(a))
			changes = append(changes, "pm2:"+a)
		}
	}
	if len(ours) > 0 {
		del = fmt.Sprintf("%[1]s delete %[2]s >/dev/null 2>&1 || { echo 'pm2 delete failed' >&2; exit 1; }\n%[1]s save --force >/dev/null 2>&1\n", q(st.PM2), strings.Join(ours, " "))
	}
	if others := st.others(); len(others) > 0 {
		kept = append(kept, fmt.Sprintf("PM2's daemon and startup unit (other apps: %s)", strings.Join(others, ", ")))
	} else {
		if a, ok := st.added("startup"); ok && st.Unit {
			u := addedUnit(a, st.User)
			unit = fmt.Sprintf("if [ -f /etc/systemd/system/%[1]s ]; then systemctl disable --now %[1]s >/dev/null 2>&1; rm -f /etc/systemd/system/%[1]s; systemctl daemon-reload; systemctl reset-failed %[1]s >/dev/null 2>&1; fi\nexit 0\n", q(u))
			changes = append(changes, u)
		} else if _, ok := st.added("startup"); !ok && st.Unit {
			kept = append(kept, PM2Unit(st.User)+" (up did not add it)")
		}
		if _, ok := st.added("pm2-home"); ok && st.HomeExists {
			if st.PM2 != "" && st.Daemon {
				home = fmt.Sprintf("%s kill >/dev/null 2>&1\n", q(st.PM2))
			}
			home += fmt.Sprintf("rm -rf -- %s\nexit 0\n", q(st.PM2Home))
			changes = append(changes, st.PM2Home)
		}
	}
	keptMsg := ""
	if len(kept) > 0 {
		keptMsg = "; kept " + strings.Join(kept, ", ")
	}
	if len(changes) == 0 {
		return Ok("no app of deploylab in PM2%s", keptMsg)
	}
	msg := strings.Join(changes, ", ") + keptMsg
	if h.Check {
		return Change(changes, "would remove %s", msg)
	}
	for _, step := range []struct {
		what, script string
		root         bool
	}{{"pm2 delete", del, false}, {"remove the PM2 startup unit", unit, true}, {"remove PM2's home", home, false}} {
		if step.script == "" {
			continue
		}
		run := userSh
		if step.root {
			run = sh
		}
		if _, err := run(ctx, h, step.what, step.script); err != nil {
			return Fail(err)
		}
	}
	return Change(changes, "removed %s", msg)
}

// packages removes what up recorded installing and is still there: npm -g
// packages (before npm itself), Debian's packages, npm's cache.
func (d nodeDown) packages(ctx context.Context, h *HostRun) TaskResult {
	st := d.state(h)
	var aptPkgs, npmPkgs []string
	if a, ok := st.added("npm-global"); ok {
		npmPkgs = strings.Fields(strings.TrimPrefix(a, "npm-global"))
	}
	if a, ok := st.added("apt"); ok {
		aptPkgs = strings.Fields(strings.TrimPrefix(a, "apt"))
	}
	_, cache := st.added("npm-cache")
	if len(aptPkgs)+len(npmPkgs) == 0 && !cache {
		return Ok("up installed no package here")
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
		case len(f) == 2 && f[0] == "apt":
			apt = append(apt, f[1])
		case len(f) == 2 && f[0] == "npm":
			npm = append(npm, f[1])
		case len(f) == 1 && f[0] == "cache":
			hasCache = true
		}
	}
	var changes []string
	var root string
	// npm's packages go before npm itself.
	if len(npm) > 0 {
		root += fmt.Sprintf("npm uninstall -g %s >/dev/null 2>&1 || { echo 'npm uninstall -g failed' >&2; exit 1; }\n", strings.Join(npm, " "))
		changes = append(changes, "npm -g "+strings.Join(npm, " "))
	}
	if len(apt) > 0 {
		root += fmt.Sprintf("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q --autoremove %s >/tmp/deploylab-apt.log 2>&1 || { tail -n 3 /tmp/deploylab-apt.log >&2; exit 1; }\nrm -f /tmp/deploylab-apt.log\n", strings.Join(apt, " "))
		changes = append(changes, "apt "+strings.Join(apt, " "))
	}
	if hasCache {
		changes = append(changes, st.Home+"/.npm")
	}
	if len(changes) == 0 {
		return Ok("none of what up recorded installing is here")
	}
	if h.Check {
		return Change(changes, "would remove %s", strings.Join(changes, ", "))
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
	return Change(changes, "removed %s", strings.Join(changes, ", "))
}

// dir removes the app directory (and with it the record).
func (d nodeDown) dir(ctx context.Context, h *HostRun) TaskResult {
	st := d.state(h)
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
func (d nodeDown) verify(ctx context.Context, h *HostRun) TaskResult {
	if h.Check && h.Changed() {
		return Skip("check mode: things would be removed")
	}
	before := d.state(h)
	st, err := readNodeState(ctx, h, d.n)
	if err != nil {
		return Fail(err)
	}
	var left []string
	if st.DirExists {
		left = append(left, st.Dir)
	}
	for _, a := range []string{NodeSingleApp, NodeClusterApp} {
		if len(st.app(a)) > 0 {
			left = append(left, "pm2:"+a)
		}
	}
	if len(before.others()) == 0 {
		if a, ok := before.added("startup"); ok {
			unit := addedUnit(a, before.User)
			if out, _ := sh(ctx, h, "find unit", "[ -e /etc/systemd/system/"+q(unit)+" ] && echo yes; exit 0"); strings.TrimSpace(out) == "yes" {
				left = append(left, unit)
			}
		}
		if _, ok := before.added("pm2-home"); ok && st.Daemon {
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
