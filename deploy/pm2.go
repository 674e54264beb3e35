package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/remote"
)

// This file holds the PM2 supervisor: up --supervisor pm2 writes an
// ecosystem.config.js and runs both servers in PM2's fork mode (Go programs
// cannot use PM2's cluster mode; sumcluster does its own clustering), under
// a PM2 daemon of a system user deploylab creates, started at boot by the
// pm2-<user>.service that `pm2 startup systemd` writes, with `pm2 save`.

// SupervisorPM2 runs the services under PM2.
const SupervisorPM2 = "pm2"

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

// pm2Up is Up's task under PM2: user, ecosystem file, apps started (or
// reloaded when the release changed), startup unit, saved process list.
func (u *up) pm2Up(ctx context.Context, h *HostRun) TaskResult {
	pm2 := h.Facts.Tools["pm2"]
	if !pm2.Present {
		return Fail(fail.Errorf(fail.Prereq, "install it on the host: npm install -g pm2 (or deploy without --supervisor pm2)", "pm2 is not installed on the host"))
	}
	d := data(h)
	eco := u.d.Ecosystem()
	want := d.set.Hash + " " + unitSum(eco)
	var b strings.Builder
	fmt.Fprintf(&b, "id -u %s >/dev/null 2>&1 && echo user=yes\n", PM2User)
	fmt.Fprintf(&b, "sha256sum %s 2>/dev/null | cut -d' ' -f1 | sed 's/^/eco=/'\n", q(u.d.EcosystemPath()))
	fmt.Fprintf(&b, "printf 'applied='; cat %s 2>/dev/null; echo\n", q(u.d.StatePath(Service{Name: SupervisorPM2})))
	fmt.Fprintf(&b, "printf 'supervisor='; cat %s 2>/dev/null; echo\n", q(u.d.SupervisorPath()))
	fmt.Fprintf(&b, "systemctl is-enabled %s >/dev/null 2>&1 && echo startup=yes\n", PM2StartupUnit)
	fmt.Fprintf(&b, "for u in %s; do [ -f /etc/systemd/system/$u ] && echo unit=$u; done\n", systemdUnits(u.d))
	fmt.Fprintf(&b, "[ -d %s ] && { printf 'jlist='; %s pm2 jlist 2>/dev/null | tail -n 1; echo; }\nexit 0\n", q(u.d.PM2Home()), pm2Env(u.d))
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
	var procs []PM2Proc
	_ = json.Unmarshal([]byte(st["jlist"]), &procs)
	online := map[string]bool{}
	for _, p := range procs {
		online[p.Name] = p.Env.Status == "online"
	}
	var changes []string
	if st["user"] != "yes" {
		changes = append(changes, "user "+PM2User)
	}
	if len(units) > 0 {
		changes = append(changes, "remove systemd units "+strings.Join(units, " "))
	}
	if st["eco"] != sha256Hex(eco) {
		changes = append(changes, u.d.EcosystemPath())
	}
	allOnline := true
	for _, s := range u.d.Services {
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
	case oldRelease != d.set.Hash:
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
		return Ok("%d apps online under pm2 %s, release %s", len(u.d.Services), pm2.Version, d.set.Hash)
	}
	if h.Check {
		return Change(changes, "would %s", strings.Join(changes, ", "))
	}
	home := u.d.PM2Home()
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
		if _, err := h.Exec.WriteFile(ctx, u.d.EcosystemPath(), eco, 0o644, remote.AsRoot()); err != nil {
			return Fail(err)
		}
	}
	pm := pm2Env(u.d) + " pm2"
	var run string
	switch action {
	case "start":
		run = fmt.Sprintf("%s startOrRestart %s", pm, q(u.d.EcosystemPath()))
	case "restart":
		run = fmt.Sprintf("%s delete %s >/dev/null 2>&1 || true; %s start %s", pm, pm2Names(u.d), pm, q(u.d.EcosystemPath()))
	case "reload":
		// The single server restarts; the cluster reloads its workers
		// itself on SIGHUP, with zero downtime.
		var parts []string
		for _, sv := range u.d.Services {
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
		if err := u.pm2WaitOnline(ctx, h); err != nil {
			return Fail(err)
		}
	}
	var tail strings.Builder
	tail.WriteString("set -e\n")
	fmt.Fprintf(&tail, "%s save --force >/dev/null\n", pm)
	fmt.Fprintf(&tail, "mkdir -p %s\n", q(path.Dir(u.d.SupervisorPath())))
	fmt.Fprintf(&tail, "printf '%%s\\n' %s > %s.new && mv -f %s.new %s\n", SupervisorPM2, q(u.d.SupervisorPath()), q(u.d.SupervisorPath()), q(u.d.SupervisorPath()))
	sp := u.d.StatePath(Service{Name: SupervisorPM2})
	fmt.Fprintf(&tail, "printf '%%s\\n' %s > %s.new && mv -f %s.new %s\n", q(want), q(sp), q(sp), q(sp))
	if _, err := sh(ctx, h, "pm2 startup and save", tail.String()); err != nil {
		return Fail(err)
	}
	return Change(changes, "%s under pm2 %s (fork mode), release %s", strings.Join(changes, ", "), pm2.Version, d.set.Hash)
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
func pm2Jlist(ctx context.Context, h *HostRun, d Deployment) ([]PM2Proc, error) {
	out, err := sh(ctx, h, "pm2 jlist", pm2Env(d)+" pm2 jlist")
	if err != nil {
		return nil, err
	}
	return ParsePM2JList(out)
}

// pm2WaitOnline waits until every service is online in pm2 jlist.
func (u *up) pm2WaitOnline(ctx context.Context, h *HostRun) error {
	ctx, cancel := context.WithTimeout(ctx, u.verifyTimeout)
	defer cancel()
	for {
		procs, err := pm2Jlist(ctx, h, u.d)
		n := 0
		for _, p := range procs {
			for _, s := range u.d.Services {
				if p.Name == pm2Name(s) && p.Env.Status == "online" {
					n++
				}
			}
		}
		if err == nil && n == len(u.d.Services) {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return err
			}
			return fmt.Errorf("pm2: %d of %d apps online after %s", n, len(u.d.Services), u.verifyTimeout)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// pm2Stats reads the cluster's statistics under PM2.
func pm2Stats(ctx context.Context, h *HostRun, d Deployment, s Service) (clusterStats, error) {
	var st clusterStats
	out, err := sh(ctx, h, "cluster stats", q(d.BinPath(s.Program))+" stats --stats-socket "+q(pm2StatsSocket(d, s)))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("cluster stats: %w", err)
	}
	return st, nil
}

// pm2Control applies verb to s under PM2. A reload of the cluster is its
// own zero-downtime reload (SIGHUP through pm2 sendSignal), not pm2
// reload, which in fork mode is a restart.
func pm2Control(ctx context.Context, h *HostRun, d Deployment, s Service, verb Verb) TaskResult {
	procs, err := pm2Jlist(ctx, h, d)
	if err != nil {
		return Fail(err)
	}
	status := ""
	for _, p := range procs {
		if p.Name == pm2Name(s) {
			status = p.Env.Status
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
		before, err := pm2Stats(ctx, h, d, s)
		if err != nil {
			return Fail(err)
		}
		if _, err := sh(ctx, h, "pm2 sendSignal", pm+" sendSignal SIGHUP "+q(pm2Name(s))+" >/dev/null"); err != nil {
			return Fail(err)
		}
		deadline := time.Now().Add(time.Minute)
		for {
			st, err := pm2Stats(ctx, h, d, s)
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

// TaskPM2 is Up's task that replaces the units and services tasks under PM2.
const TaskPM2 = "pm2"

// pm2Tasks turns Up's systemd tasks into PM2's: the units, services and
// security tasks become one pm2 task before verify.
func pm2Tasks(tasks []Task, u *up) []Task {
	var out []Task
	for _, t := range tasks {
		switch {
		case t.Name == TaskUnits:
			out = append(out, Task{TaskPM2, u.pm2Up})
		case t.Name == TaskSecurity:
		case isService(u.d, t.Name):
		default:
			out = append(out, t)
		}
	}
	return out
}

func isService(d Deployment, name string) bool {
	_, ok := d.Service(name)
	return ok
}
