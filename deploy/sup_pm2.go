package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/nodeapp"
	"github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/remote"
)

// This file is the PM2 supervisor, for both apps.
//
// The Go servers (up --supervisor pm2, pm2System): an ecosystem.config.js
// runs both servers in PM2's fork mode (Go programs cannot use PM2's
// cluster mode; sumcluster does its own clustering), under a PM2 daemon of
// a system user deploylab creates, started at boot by the pm2-<user>.service
// that `pm2 startup systemd` writes, with `pm2 save`.
//
// The Node app (up --app node, pm2User): the login user's PM2 runs the
// practice's Express app in fork mode and in PM2's own cluster mode, with
// PM2's verbs (pm2 reload is its zero-downtime reload), under
// pm2-<login user>.service.

// SupervisorPM2 runs the services under PM2.
const SupervisorPM2 = "pm2"

func init() { registerGoSupervisor(SupervisorPM2, pm2System{}) }

// pm2System is the PM2 goSupervisor: PM2 of the system user PM2User.
type pm2System struct{}

// PM2User is the system user deploylab creates to run PM2 and the servers.
const PM2User = "deploylab"

// PM2Home is the PM2 user's home; PM2's state is in PM2Home/.pm2.
func (d Deployment) PM2Home() string { return path.Join(d.Root, "pm2") }

// EcosystemPath is the generated PM2 ecosystem file.
func (d Deployment) EcosystemPath() string { return path.Join(d.PM2Home(), "ecosystem.config.js") }

// PM2StartupUnit is the unit `pm2 startup systemd -u PM2User` writes.
const PM2StartupUnit = "pm2-" + PM2User + ".service"

func pm2Name(s Service) string { return "deploylab-" + s.Name }

// pm2Env is the command prefix running pm2 as the PM2 user, with its home.
func pm2Env(d Deployment) string {
	return fmt.Sprintf("runuser -u %s -- env HOME=%s PM2_HOME=%s", PM2User, q(d.PM2Home()), q(path.Join(d.PM2Home(), ".pm2")))
}

// pm2StatsSocket is where the cluster serves its statistics under PM2.
func pm2StatsSocket(d Deployment, s Service) string {
	return path.Join(d.PM2Home(), s.Name+".sock")
}

// Ecosystem renders the ecosystem.config.js of d: every service in fork
// mode, restarted with exponential back-off, given time to drain.
func (d Deployment) Ecosystem() []byte {
	type app struct {
		Name                   string   `json:"name"`
		Script                 string   `json:"script"`
		Args                   []string `json:"args"`
		ExecMode               string   `json:"exec_mode"`
		Instances              int      `json:"instances"`
		Interpreter            string   `json:"interpreter"`
		Autorestart            bool     `json:"autorestart"`
		ExpBackoffRestartDelay int      `json:"exp_backoff_restart_delay"`
		KillTimeout            int      `json:"kill_timeout"`
		MergeLogs              bool     `json:"merge_logs"`
		Time                   bool     `json:"time"`
	}
	var apps []app
	for _, s := range d.Services {
		args := append([]string{"--port", strconv.Itoa(s.Port)}, s.Args...)
		if s.RuntimeDirectory != "" {
			args = append(args, "--stats-socket", pm2StatsSocket(d, s))
		}
		apps = append(apps, app{Name: pm2Name(s), Script: d.BinPath(s.Program), Args: args, ExecMode: "fork",
			Instances: 1, Interpreter: "none", Autorestart: true, ExpBackoffRestartDelay: 100,
			KillTimeout: 45000, MergeLogs: true, Time: true})
	}
	b, _ := json.MarshalIndent(map[string]any{"apps": apps}, "", "  ")
	return []byte("// Written by deploylab up --supervisor pm2; changes here are overwritten by the next run.\n" +
		"// Go programs run in PM2's fork mode; sumcluster forks its own workers.\nmodule.exports = " + string(b) + ";\n")
}

// TaskPM2 is Up's task that replaces the units and services tasks under PM2.
const TaskPM2 = "pm2"

// up is one pm2 task before verify.
func (pm2System) up(d Deployment, o UpOptions) (before, after []Task[goHost]) {
	return []Task[goHost]{{TaskPM2, func(ctx context.Context, h *HostRun, st *goHost) TaskResult {
		return pm2Up(ctx, h, d, st.set.Hash, o.VerifyTimeout)
	}}}, nil
}

// pm2Up is Up's task under PM2: user, ecosystem file, apps started (or
// reloaded when the release changed), startup unit, saved process list.
func pm2Up(ctx context.Context, h *HostRun, d Deployment, release string, timeout time.Duration) TaskResult {
	pm2, ok := h.Facts.UserTool("pm2")
	if !ok {
		return Fail(fail.Errorf(fail.Prereq, "install it on the host: npm install -g pm2 (or deploy without --supervisor pm2)", "pm2 is not installed on the host"))
	}
	eco := d.Ecosystem()
	want := release + " " + unitSum(eco)
	var b strings.Builder
	fmt.Fprintf(&b, "id -u %s >/dev/null 2>&1 && echo user=yes\n", PM2User)
	fmt.Fprintf(&b, "sha256sum %s 2>/dev/null | cut -d' ' -f1 | sed 's/^/eco=/'\n", q(d.EcosystemPath()))
	fmt.Fprintf(&b, "printf 'applied='; cat %s 2>/dev/null; echo\n", q(d.StatePath(Service{Name: SupervisorPM2})))
	fmt.Fprintf(&b, "printf 'supervisor='; cat %s 2>/dev/null; echo\n", q(d.SupervisorPath()))
	fmt.Fprintf(&b, "systemctl is-enabled %s >/dev/null 2>&1 && echo startup=yes\n", PM2StartupUnit)
	fmt.Fprintf(&b, "for u in %s; do [ -f /etc/systemd/system/$u ] && echo unit=$u; done\n", systemdUnits(d))
	fmt.Fprintf(&b, "[ -d %s ] && { printf 'jlist='; %s pm2 jlist 2>/dev/null | tail -n 1; echo; }\nexit 0\n", q(d.PM2Home()), pm2Env(d))
	out, err := sh(ctx, h, "pm2 state", b.String())
	if err != nil {
		return Fail(err)
	}
	st := map[string]string{}
	var units []string
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			if k == "unit" {
				units = append(units, v)
			}
			st[k] = strings.TrimSpace(v)
		}
	}
	procs, _ := parseJlist(st["jlist"])
	online := map[string]bool{}
	for _, p := range procs {
		online[p.Name] = p.Status == "online"
	}
	var changes []string
	if st["user"] != "yes" {
		changes = append(changes, "user "+PM2User)
	}
	if len(units) > 0 {
		changes = append(changes, "remove systemd units "+strings.Join(units, " "))
	}
	if st["eco"] != sha256Hex(eco) {
		changes = append(changes, d.EcosystemPath())
	}
	allOnline := true
	for _, s := range d.Services {
		allOnline = allOnline && online[pm2Name(s)]
	}
	action := ""
	oldRelease, oldEco, _ := strings.Cut(st["applied"], " ")
	switch {
	case !allOnline:
		action = "start"
	case st["applied"] == want:
	case oldEco != unitSum(eco):
		action = "restart"
	case oldRelease != release:
		action = "reload"
	}
	if action != "" {
		changes = append(changes, action)
	}
	if st["startup"] != "yes" {
		changes = append(changes, "startup "+PM2StartupUnit)
	}
	if st["supervisor"] != SupervisorPM2 {
		changes = append(changes, "state")
	}
	if len(changes) == 0 {
		return Ok("%d apps online under pm2 %s, release %s", len(d.Services), pm2.Version, release)
	}
	if h.Check {
		return Change(changes, "would %s", strings.Join(changes, ", "))
	}
	home := d.PM2Home()
	var s strings.Builder
	s.WriteString("set -e\n")
	if len(units) > 0 {
		fmt.Fprintf(&s, "systemctl disable --now %s >/dev/null 2>&1 || true\n", strings.Join(units, " "))
		for _, un := range units {
			fmt.Fprintf(&s, "rm -f /etc/systemd/system/%s\n", un)
		}
		s.WriteString("systemctl daemon-reload\n")
	}
	fmt.Fprintf(&s, "id -u %s >/dev/null 2>&1 || useradd --system --home-dir %s --no-create-home --shell /usr/sbin/nologin %s\n", PM2User, q(home), PM2User)
	fmt.Fprintf(&s, "mkdir -p %s && chown %s: %s && chmod 0750 %s\n", q(home), PM2User, q(home), q(home))
	if st["startup"] != "yes" {
		// The PM2 daemon starts under its systemd unit, not in this SSH
		// session: pm2 startup writes and enables it, resurrect starts it.
		fmt.Fprintf(&s, "%s\n", pm2StartupScript("pm2", PM2User, home))
		fmt.Fprintf(&s, "systemctl is-enabled %s\n", PM2StartupUnit)
	}
	fmt.Fprintf(&s, "systemctl is-active %s || systemctl start %s\n", PM2StartupUnit, PM2StartupUnit)
	script := "(\n" + s.String() + ") >/dev/null\n"
	if _, err := sh(ctx, h, "pm2 user and startup", script); err != nil {
		return Fail(err)
	}
	if st["eco"] != sha256Hex(eco) {
		if _, err := h.Exec.WriteFile(ctx, d.EcosystemPath(), eco, 0o644, remote.AsRoot()); err != nil {
			return Fail(err)
		}
	}
	pm := pm2Env(d) + " pm2"
	var run string
	switch action {
	case "start":
		run = fmt.Sprintf("%s startOrRestart %s", pm, q(d.EcosystemPath()))
	case "restart":
		run = fmt.Sprintf("%s delete %s >/dev/null 2>&1 || true; %s start %s", pm, pm2Names(d), pm, q(d.EcosystemPath()))
	case "reload":
		// The single server restarts; the cluster reloads its workers
		// itself on SIGHUP, with zero downtime.
		var parts []string
		for _, sv := range d.Services {
			if sv.Reload {
				parts = append(parts, fmt.Sprintf("%s sendSignal SIGHUP %s", pm, q(pm2Name(sv))))
			} else {
				parts = append(parts, fmt.Sprintf("%s restart %s", pm, q(pm2Name(sv))))
			}
		}
		run = strings.Join(parts, " && ")
	}
	if run != "" {
		if _, err := sh(ctx, h, "pm2 "+action, run+" >/dev/null"); err != nil {
			return Fail(err)
		}
		if err := pm2WaitOnline(ctx, h, d, timeout); err != nil {
			return Fail(err)
		}
	}
	var tail strings.Builder
	tail.WriteString("set -e\n")
	fmt.Fprintf(&tail, "%s save --force >/dev/null\n", pm)
	fmt.Fprintf(&tail, "%s\n", recordState(d.SupervisorPath(), SupervisorPM2))
	fmt.Fprintf(&tail, "%s\n", recordState(d.StatePath(Service{Name: SupervisorPM2}), want))
	if _, err := sh(ctx, h, "pm2 startup and save", tail.String()); err != nil {
		return Fail(err)
	}
	return Change(changes, "%s under pm2 %s (fork mode), release %s", strings.Join(changes, ", "), pm2.Version, release)
}

// pm2StartupScript runs `pm2 startup systemd` for user (PM2_HOME under
// home) as root, with a throwaway PM2_HOME for root's own pm2 run, which
// would otherwise leave a /root/.pm2 behind. It works under set -e; on
// failure the last lines of pm2's output go to stderr.
func pm2StartupScript(pm2, user, home string) string {
	return fmt.Sprintf(`t=$(mktemp -d); if PM2_HOME="$t" %s startup systemd -u %s --hp %s >"$t.log" 2>&1; then rc=0; else rc=$?; tail -n 3 "$t.log" >&2; fi; rm -rf "$t" "$t.log"; [ $rc = 0 ]`,
		pm2, q(user), q(home))
}

func pm2Names(d Deployment) string {
	var n []string
	for _, s := range d.Services {
		n = append(n, q(pm2Name(s)))
	}
	return strings.Join(n, " ")
}

func systemdUnits(d Deployment) string {
	var n []string
	for _, s := range d.Services {
		n = append(n, q(s.Unit()))
	}
	return strings.Join(n, " ")
}

// pm2Jlist reads pm2 jlist on the host.
func pm2Jlist(ctx context.Context, h *HostRun, d Deployment) ([]observe.PM2App, error) {
	out, err := sh(ctx, h, "pm2 jlist", pm2Env(d)+" pm2 jlist")
	if err != nil {
		return nil, err
	}
	return parseJlist(out)
}

// pm2WaitOnline waits until every service is online in pm2 jlist.
func pm2WaitOnline(ctx context.Context, h *HostRun, d Deployment, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		procs, err := pm2Jlist(ctx, h, d)
		n := 0
		for _, p := range procs {
			for _, s := range d.Services {
				if p.Name == pm2Name(s) && p.Status == "online" {
					n++
				}
			}
		}
		if err == nil && n == len(d.Services) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return err
			}
			return fmt.Errorf("pm2: %d of %d apps online after %s", n, len(d.Services), timeout)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// pm2Control applies verb to s under PM2. A reload of the cluster is its
// own zero-downtime reload (SIGHUP through pm2 sendSignal), not pm2
// reload, which in fork mode is a restart.
func (pm2System) control(ctx context.Context, h *HostRun, d Deployment, s Service, verb Verb, _ time.Duration) TaskResult {
	procs, err := pm2Jlist(ctx, h, d)
	if err != nil {
		return Fail(err)
	}
	status := ""
	for _, p := range procs {
		if p.Name == pm2Name(s) {
			status = p.Status
		}
	}
	if status == "" {
		return Fail(fail.Errorf(fail.Failed, "deploy it first: deploylab up --supervisor pm2", "%s is not in pm2's process list", pm2Name(s)))
	}
	online := status == "online"
	pm := pm2Env(d) + " pm2"
	action, note := string(verb), ""
	switch verb {
	case VerbStop:
		if !online {
			return Ok("%s already stopped (%s)", pm2Name(s), status)
		}
	case VerbStart:
		if online {
			return Ok("%s already online", pm2Name(s))
		}
	case VerbReload:
		if !online {
			action, note = "start", " (it was not running: started)"
		} else if !s.Reload {
			action, note = "restart", " ("+s.Program+" has no zero-downtime reload: restarted)"
		}
	}
	if action == "reload" {
		before, err := readStats(ctx, h, d, s, pm2StatsSocket(d, s))
		if err != nil {
			return Fail(err)
		}
		if _, err := sh(ctx, h, "pm2 sendSignal", pm+" sendSignal SIGHUP "+q(pm2Name(s))+" >/dev/null"); err != nil {
			return Fail(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			st, err := readStats(ctx, h, d, s, pm2StatsSocket(d, s))
			if err == nil && st.Reloads > before.Reloads && st.Ready {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return Fail(fmt.Errorf("reload %s: not finished after 1m", pm2Name(s)))
			}
			time.Sleep(300 * time.Millisecond)
		}
	} else if _, err := sh(ctx, h, "pm2 "+action, pm+" "+action+" "+q(pm2Name(s))+" >/dev/null"); err != nil {
		return Fail(err)
	}
	if _, err := sh(ctx, h, "pm2 save", pm+" save --force >/dev/null"); err != nil {
		return Fail(err)
	}
	past := map[string]string{"start": "started", "restart": "restarted", "reload": "reloaded (zero downtime)", "stop": "stopped"}[action]
	return Change([]string{action}, "%s %s under pm2%s", pm2Name(s), past, note)
}

// lsHead prints PM2's process list once (pm2 jlist, after "@@head").
func (pm2System) lsHead(d Deployment) string {
	return "echo @@head; " + pm2Env(d) + " pm2 jlist 2>/dev/null | tail -n 1; echo"
}

// lsService finds s's pid with pm2 pid.
func (pm2System) lsService(d Deployment, s Service) string {
	sock := "sock="
	if s.RuntimeDirectory != "" {
		sock = "sock=" + q(pm2StatsSocket(d, s))
	}
	return fmt.Sprintf("mp=$(%s pm2 pid %s 2>/dev/null | tail -n 1); %s", pm2Env(d), q(pm2Name(s)), sock)
}

// lsRow reads s's status, pid, restarts and uptime from pm2 jlist.
func (pm2System) lsRow(ps *ProcStatus, s Service, _ observe.Unit, head string, _ float64) {
	procs, _ := parseJlist(head)
	ps.Status = "missing"
	for _, p := range procs {
		if p.Name == pm2Name(s) {
			ps.Status = p.Status
			ps.Restarts = p.Restarts
			if p.PID > 0 {
				ps.PID = p.PID
			}
			if ps.Status == "online" && p.Started > 0 {
				ps.Uptime = time.Since(time.UnixMilli(p.Started)).Seconds()
			}
		}
	}
}

// logs prints the PM2 apps' log files (PM2's own logs command streams
// forever and colours its output: the files are read instead).
func (pm2System) logs(ctx context.Context, h *HostRun, d Deployment, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	var files []string
	for _, s := range svcs {
		for _, kind := range []string{"out", "error"} {
			files = append(files, fmt.Sprintf("%s/.pm2/logs/%s-%s.log", d.PM2Home(), pm2Name(s), kind))
		}
	}
	return tailFiles(ctx, h, sh, files, o, emit)
}

// down removes the Go servers' PM2 apps, PM2's daemon and
// pm2-deploylab.service, then the PM2 user.
func (pm2System) down(d Deployment) (services, files string) {
	return pm2RemoveScript(d), fmt.Sprintf("if id -u %s >/dev/null 2>&1; then echo removed user:%s; act userdel %s; fi\n", PM2User, PM2User, PM2User)
}

// leftovers prints PM2's startup unit (file or loaded) and user.
func (pm2System) leftovers(Deployment) string {
	return fmt.Sprintf("[ -e /etc/systemd/system/%[1]s ] && echo /etc/systemd/system/%[1]s\n", PM2StartupUnit) +
		fmt.Sprintf("systemctl list-units --all --plain --no-legend %s 2>/dev/null | awk '{print \"unit:\" $1}'\n", PM2StartupUnit) +
		fmt.Sprintf("id -u %s >/dev/null 2>&1 && echo user:%s\n", PM2User, PM2User)
}

// leave removes what up --supervisor pm2 left on a host that now gets
// another supervisor: the PM2 apps (they hold the ports), PM2's daemon and
// pm2-deploylab.service, the PM2 user and its home, and the recorded
// supervisor; only when PM2 ran them (the recorded supervisor says so).
func (pm2System) leave(d Deployment) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[ \"$(cat %s 2>/dev/null)\" = %s ] || exit 0\n", q(d.SupervisorPath()), SupervisorPM2)
	b.WriteString("set -u\nact() { [ \"$DRY\" = 1 ] || \"$@\"; }\nreload=0\n")
	b.WriteString(pm2RemoveScript(d))
	fmt.Fprintf(&b, "if [ -e %[1]s ]; then echo removed %[2]s; act rm -rf -- %[1]s; fi\n", q(d.PM2Home()), d.PM2Home())
	fmt.Fprintf(&b, "if id -u %[1]s >/dev/null 2>&1; then echo removed user:%[1]s; act userdel %[1]s; fi\n", PM2User)
	fmt.Fprintf(&b, "act rm -f %s %s\n", q(d.SupervisorPath()), q(d.StatePath(Service{Name: SupervisorPM2})))
	b.WriteString("if [ $reload = 1 ] && [ \"$DRY\" != 1 ]; then systemctl daemon-reload; fi\nexit 0\n")
	return b.String()
}

// pm2RemoveScript removes the Go servers' PM2 apps, PM2's daemon and
// pm2-deploylab.service (up --supervisor pm2), printing "removed <what>" for
// each; it needs act (DRY) and sets reload=1 when systemd must reload.
func pm2RemoveScript(d Deployment) string {
	var b strings.Builder
	fmt.Fprintf(&b, "if id -u %s >/dev/null 2>&1 && [ -d %s/.pm2 ] && command -v pm2 >/dev/null; then\n", PM2User, q(d.PM2Home()))
	for _, s := range d.Services {
		fmt.Fprintf(&b, "  if %s pm2 pid %s 2>/dev/null | grep -q .; then echo removed pm2:%s; act %s pm2 delete %s >/dev/null 2>&1; fi\n",
			pm2Env(d), q(pm2Name(s)), pm2Name(s), pm2Env(d), q(pm2Name(s)))
	}
	fmt.Fprintf(&b, "  act %s pm2 kill >/dev/null 2>&1\nfi\n", pm2Env(d))
	fmt.Fprintf(&b, "if [ -f /etc/systemd/system/%s ]; then echo removed %s; act systemctl disable --now %s >/dev/null 2>&1; act rm -f /etc/systemd/system/%s; reload=1; fi\n",
		PM2StartupUnit, PM2StartupUnit, PM2StartupUnit, PM2StartupUnit)
	return b.String()
}

// pm2User is PM2 of the login user, running the Node app (NodeDeployment).
type pm2User struct{ n NodeDeployment }

// up are Up's PM2 tasks for the Node app: startup and pm2-apps.
func (p pm2User) up() []Task[nodeHost] {
	return []Task[nodeHost]{{TaskStartup, p.startup}, {TaskPM2Apps, p.apps}}
}

// running is "" when PM2 runs the apps as wanted, else what is wrong.
func (p pm2User) running(ctx context.Context, h *HostRun, d *nodeHost) (string, error) {
	out, err := userSh(ctx, h, "pm2 jlist", q(d.pm2)+" jlist")
	if err != nil {
		return "", err
	}
	procs, err := parseJlist(out)
	if err != nil {
		return "", err
	}
	return p.appsState(procs, d.dir, h.Facts.CPUs), nil
}

// Ecosystem renders ecosystem.config.js for the app directory dir.
func (n NodeDeployment) Ecosystem(dir string) []byte {
	app := func(a nodePM2App) string {
		name, mode, instances, port := a.name, a.mode, a.instances, a.port
		env, ready := "", `      // app.js sends "ready" once it listens: PM2 waits for it (up to
      // listen_timeout) before it counts a (re)started process as online.
      wait_ready: true,
      listen_timeout: 10000,`
		if a.env != "" {
			env = ", " + strings.ReplaceAll(a.env, nodeSessionKey, path.Join(dir, nodeSessionKey))
		}
		if !a.waitReady {
			ready = `      // sessions.js is its own cluster (its primary forks the workers).
      wait_ready: false,`
		}
		return fmt.Sprintf(`    {
      name: %q,
      script: %q,
      cwd: %q,
      exec_mode: %q,
      instances: %d,
      env: { PORT: %d, NODE_ENV: "production"%s },
%s
      // On stop or reload: SIGINT, then SIGKILL after kill_timeout.
      kill_timeout: 3000,
      exp_backoff_restart_delay: 100,
      max_memory_restart: "300M",
      // Each log line starts with its time (deploylab logs --app node).
      time: true,
    }`, name, a.script, dir, mode, instances, port, env, ready)
	}
	var apps strings.Builder
	for _, a := range n.pm2Apps() {
		apps.WriteString(app(a) + ",\n")
	}
	return []byte("// Written by deploylab up --app " + n.AppName() + "; changes here are overwritten by the next run.\n" +
		"// pm2 start ecosystem.config.js  |  pm2 reload ecosystem.config.js  |  pm2 ls\n" +
		"module.exports = {\n  apps: [\n" + apps.String() + "  ],\n};\n")
}

// startup makes PM2's daemon run under pm2-<user>.service (pm2 startup),
// enabled and active, so the apps come back after a reboot.
func (p pm2User) startup(ctx context.Context, h *HostRun, d *nodeHost) TaskResult {
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

// parseJlist reads pm2 jlist's output with observe's parser (PM2's
// messages before the JSON list, like its daemon-spawn lines, are skipped).
func parseJlist(out string) ([]observe.PM2App, error) {
	procs, err := observe.ParsePM2(out, false)
	if err != nil {
		return nil, fmt.Errorf("pm2 jlist: %w", err)
	}
	return procs, nil
}

// appsState summarises pm2 jlist for the two apps: "" when they run as
// wanted, else what is wrong.
func (p pm2User) appsState(procs []observe.PM2App, dir string, cpus int) string {
	type want struct {
		name, mode string
		n, port    int
	}
	var bad []string
	var wants []want
	for _, a := range p.n.pm2Apps() {
		n := 1
		if a.mode == "cluster" {
			n = p.n.wantInstances(cpus)
		}
		wants = append(wants, want{a.name, a.mode + "_mode", n, a.port})
	}
	for _, w := range wants {
		online, total := 0, 0
		for _, p := range procs {
			if p.Name != w.name {
				continue
			}
			total++
			if p.Status == "online" && p.ExecMode == w.mode && p.Port == strconv.Itoa(w.port) && path.Dir(p.Script) == dir {
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
func (p pm2User) apps(ctx context.Context, h *HostRun, d *nodeHost) TaskResult {
	applied := path.Join(d.dir, ".deploylab-applied")
	eco := path.Join(d.dir, "ecosystem.config.js")
	want := sha256Hex(p.n.Ecosystem(d.dir))[:16] + " " + sha256Hex(p.n.scriptFile())[:16] + " " + sha256Hex(nodeapp.File("package-lock.json"))[:16]
	names := strings.Join(p.n.appNames(), " and ")
	if h.Check && (d.noNode || d.pm2 == "pm2") {
		return Change([]string{"pm2 start " + eco}, "would start %s", names)
	}
	out, err := userSh(ctx, h, "pm2 jlist", fmt.Sprintf("%s jlist; printf '\\n@@applied '; cat %s 2>/dev/null; echo", q(d.pm2), q(applied)))
	if err != nil {
		return Fail(err)
	}
	jl, app, _ := strings.Cut(out, "\n@@applied ")
	procs, err := parseJlist(jl)
	if err != nil {
		return Fail(err)
	}
	bad := p.appsState(procs, d.dir, h.Facts.CPUs)
	have := strings.TrimSpace(app)
	if bad == "" && have == want {
		return Ok("%s online%s", names, p.clusterNote(h.Facts.CPUs))
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
	msg := fmt.Sprintf("%s %s%s; pm2 save", verb, names, p.clusterNote(h.Facts.CPUs))
	if bad != "" && len(procs) > 0 {
		msg += " (were: " + bad + ")"
	}
	return Change(change, "%s", msg)
}

// clusterNote is " (cluster: N instances)" for the practice's app.
func (p pm2User) clusterNote(cpus int) string {
	if p.n.Sessions {
		return ""
	}
	return fmt.Sprintf(" (cluster: %d instances)", p.n.wantInstances(cpus))
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
	Procs []observe.PM2App
	// apps are the deployment's PM2 app names (readNodeState).
	apps []string
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
	st, err := parseNodeState(out)
	if st != nil {
		st.apps = n.appNames()
	}
	return st, err
}

// ours are the PM2 apps of the deployment read (the practice's pair when
// the state was parsed alone).
func (st *nodeState) ours() []string {
	if st.apps != nil {
		return st.apps
	}
	return []string{NodeSingleApp, NodeClusterApp}
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
		procs, err := parseJlist(jl)
		if err != nil {
			return nil, err
		}
		st.Procs = procs
	}
	return st, nil
}

// app returns the processes of the PM2 app name.
func (st *nodeState) app(name string) []observe.PM2App {
	var ps []observe.PM2App
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
		if !slices.Contains(st.ours(), p.Name) && !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	return names
}

func online(procs []observe.PM2App) int {
	n := 0
	for _, p := range procs {
		if p.Status == "online" {
			n++
		}
	}
	return n
}

func statuses(procs []observe.PM2App) string {
	var s []string
	for _, p := range procs {
		if !slices.Contains(s, p.Status) {
			s = append(s, p.Status)
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
		fill := func(r *ProcStatus, p observe.PM2App) {
			r.Status = p.Status
			r.Restarts = p.Restarts
			r.CPU = p.CPU
			r.Memory = p.Memory
			if p.Status == "online" {
				r.PID = p.PID
				if p.Started > 0 {
					r.Uptime = max(0, time.Since(time.UnixMilli(p.Started)).Seconds())
				}
			}
		}
		if !s.Reload {
			fill(&ps, procs[0])
			rows = append(rows, ps)
			continue
		}
		slices.SortFunc(procs, func(a, b observe.PM2App) int { return a.PMID - b.PMID })
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
			ps.Status = procs[0].Status
		}
		rows = append(rows, ps)
	}
	return rows
}

// nodeDaemon is the Node verbs' first task: pm2 and the app are there, and
// PM2's daemon runs (for any verb but stop it is started through
// pm2-<user>.service, whose pm2 resurrect brings the saved apps back).
func (p pm2User) daemon(ctx context.Context, h *HostRun, hs *nodeHost, verb Verb) TaskResult {
	st, err := readNodeState(ctx, h, p.n)
	if err != nil {
		return Fail(err)
	}
	hs.st = st
	if st.PM2 == "" {
		return Fail(fail.Errorf(fail.Prereq, "deploy it first: deploylab up --app node", "pm2 is not installed for user %s", st.User))
	}
	nApps := 0
	for _, a := range st.ours() {
		nApps += len(st.app(a))
	}
	if !st.DirExists && nApps == 0 {
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
	if st, err = readNodeState(ctx, h, p.n); err != nil {
		return Fail(err)
	}
	hs.st = st
	if !st.Daemon {
		return Fail(fail.Errorf(fail.Failed, "see: journalctl -u "+unit, "PM2's daemon is not running after systemctl start %s", unit))
	}
	return Change([]string{"start " + unit}, "started %s (pm2 resurrect)", unit)
}

// nodeControl applies verb to one Node app with PM2's own verb, waits until
// PM2 shows the outcome, then saves PM2's process list (pm2 save) so a
// reboot brings back what is running now. pm2 reload is zero-downtime for
// the cluster app (PM2 replaces its processes, waiting for each to be
// ready); for the single app, in fork mode, it is a restart.
func (p pm2User) control(ctx context.Context, h *HostRun, s Service, verb Verb, timeout time.Duration) TaskResult {
	st, err := readNodeState(ctx, h, p.n)
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
		if st, err = readNodeState(ctx, h, p.n); err != nil {
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
		slices.SortFunc(procs, func(a, b observe.PM2App) int { return a.PMID - b.PMID })
		for _, p := range procs {
			add(p.OutLog)
			add(p.ErrLog)
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

// logs prints the Node apps' PM2 log files, read as the login user.
func (p pm2User) logs(ctx context.Context, h *HostRun, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	st, err := readNodeState(ctx, h, p.n)
	if err != nil {
		return err
	}
	files := nodeLogFiles(st, svcs)
	if len(files) == 0 {
		return fail.Errorf(fail.Failed, "deploy it first: deploylab up --app node", "no PM2 log file of the Node apps for user %s (in %s/logs)", st.User, st.PM2Home)
	}
	return tailFiles(ctx, h, userSh, files, o, emit)
}

// apps deletes the two apps from PM2 and saves its process list; when no
// other app is left, it removes the startup unit and PM2's home if up
// recorded adding them.
func (p pm2User) down(ctx context.Context, h *HostRun, hs *nodeHost) TaskResult {
	st, err := readNodeState(ctx, h, p.n)
	if err != nil {
		return Fail(err)
	}
	hs.st = st
	// The apps go first (as the user), the unit next (its stop is
	// pm2 kill), PM2's home last.
	var changes, kept []string
	var del, unit, home string
	var ours []string
	for _, a := range st.ours() {
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
		rec := readRecord(st.Added, st.User)
		if u := rec.unit; u != "" && st.Unit {
			unit = fmt.Sprintf("if [ -f /etc/systemd/system/%[1]s ]; then systemctl disable --now %[1]s >/dev/null 2>&1; rm -f /etc/systemd/system/%[1]s; systemctl daemon-reload; systemctl reset-failed %[1]s >/dev/null 2>&1; fi\nexit 0\n", q(u))
			changes = append(changes, u)
		} else if st.Unit {
			kept = append(kept, PM2Unit(st.User)+" (up did not add it)")
		}
		if rec.pm2Home && st.HomeExists {
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
