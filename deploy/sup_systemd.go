package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/remote"
)

// This file is the systemd supervisor of the Go servers (up --supervisor
// systemd, the default): one hardened unit per service, verified with
// systemd-analyze, started, restarted or reloaded (zero downtime) as the
// release and the unit change; the journal for logs.

// SupervisorSystemd runs the services under hardened systemd units.
const SupervisorSystemd = "systemd"

func init() { registerGoSupervisor(SupervisorSystemd, systemd{}) }

// systemd is the systemd goSupervisor.
type systemd struct{}

// MaxExposure is the systemd-analyze security score up aims at ("OK").
const MaxExposure = 2.0

// Unit is the systemd unit name.
func (s Service) Unit() string { return "deploylab-" + s.Name + ".service" }

// UnitPath is where the unit file goes.
func (d Deployment) UnitPath(s Service) string { return path.Join("/etc/systemd/system", s.Unit()) }

// Hardening are the sandboxing directives of every unit. All of them apply
// both on a Debian 12 VM and in a systemd-nspawn container (deploylab's lab
// hosts): the journal shows no "Failed to set up" or "ignoring" for them
// there, and the processes run with NoNewPrivs, seccomp and an empty
// capability bounding set. systemd-analyze security rates them about 1.1 (OK).
var Hardening = []string{
	"DynamicUser=yes",
	"NoNewPrivileges=yes",
	"ProtectSystem=strict",
	"ProtectHome=yes",
	"PrivateTmp=yes",
	"PrivateDevices=yes",
	"PrivateUsers=yes",
	"ProtectKernelTunables=yes",
	"ProtectKernelModules=yes",
	"ProtectKernelLogs=yes",
	"ProtectControlGroups=yes",
	"ProtectClock=yes",
	"ProtectHostname=yes",
	"ProtectProc=invisible",
	"ProcSubset=pid",
	"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
	"RestrictNamespaces=yes",
	"RestrictRealtime=yes",
	"RestrictSUIDSGID=yes",
	"LockPersonality=yes",
	"MemoryDenyWriteExecute=yes",
	"SystemCallFilter=@system-service",
	"SystemCallFilter=~@privileged @resources",
	"SystemCallErrorNumber=EPERM",
	"SystemCallArchitectures=native",
	"CapabilityBoundingSet=",
	"AmbientCapabilities=",
	"DevicePolicy=closed",
	"RemoveIPC=yes",
	"UMask=0077",
}

// UnitFile renders the systemd unit of s.
func (d Deployment) UnitFile(s Service) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("# Written by deploylab up; changes here are overwritten by the next run.")
	w("[Unit]")
	w("Description=%s (port %d)", s.Description, s.Port)
	w("Documentation=https://github.com/deploylab/deploylab")
	w("After=network.target")
	w("StartLimitIntervalSec=60")
	w("StartLimitBurst=10")
	w("")
	w("[Service]")
	if s.Notify {
		w("Type=notify")
		w("NotifyAccess=main")
	} else {
		w("Type=exec")
	}
	args := append([]string{d.BinPath(s.Program), "--port", strconv.Itoa(s.Port)}, s.Args...)
	w("ExecStart=%s", strings.Join(args, " "))
	if s.Reload {
		w("ExecReload=/bin/kill -HUP $MAINPID")
	}
	w("Restart=on-failure")
	w("RestartSec=1s")
	// SIGTERM to the main process only: it drains its workers itself.
	w("KillMode=mixed")
	w("TimeoutStopSec=45s")
	if s.RuntimeDirectory != "" {
		w("RuntimeDirectory=%s", s.RuntimeDirectory)
		w("RuntimeDirectoryMode=0755")
	}
	for _, h := range Hardening {
		w("%s", h)
	}
	w("")
	w("[Install]")
	w("WantedBy=multi-user.target")
	return []byte(b.String())
}

// unitSum is a short hash of a unit's content, recorded in the state file.
func unitSum(unit []byte) string {
	s := sha256.Sum256(unit)
	return hex.EncodeToString(s[:])[:16]
}

// up: the units, one task per service, and after verify the security
// score.
func (systemd) up(d Deployment, o UpOptions) (before, after []Task[goHost]) {
	before = []Task[goHost]{{TaskUnits, func(ctx context.Context, h *HostRun, _ *goHost) TaskResult { return units(ctx, h, d) }}}
	for _, s := range d.Services {
		before = append(before, Task[goHost]{s.Name, func(ctx context.Context, h *HostRun, st *goHost) TaskResult {
			return service(ctx, h, d, s, st.set.Hash, o.VerifyTimeout)
		}})
	}
	after = []Task[goHost]{{TaskSecurity, func(ctx context.Context, h *HostRun, _ *goHost) TaskResult { return security(ctx, h, d) }}}
	return before, after
}

// units writes the unit files, reloads systemd and verifies them.
func units(ctx context.Context, h *HostRun, d Deployment) TaskResult {
	left, from, err := leaveOthers(ctx, h, d)
	if err != nil {
		return Fail(err)
	}
	var paths []string
	for _, s := range d.Services {
		paths = append(paths, d.UnitPath(s))
	}
	sums, err := remoteSums(ctx, h, paths)
	if err != nil {
		return Fail(err)
	}
	var changes []string
	for _, s := range d.Services {
		unit := d.UnitFile(s)
		if sums[d.UnitPath(s)] == sha256Hex(unit) {
			continue
		}
		changes = append(changes, d.UnitPath(s))
		if h.Check {
			continue
		}
		if _, err := h.Exec.WriteFile(ctx, d.UnitPath(s), unit, 0o644, remote.AsRoot()); err != nil {
			return Fail(err)
		}
	}
	// What leaveOthers removed comes first in the message.
	pm2Msg := ""
	if len(left) > 0 {
		verb := "removed"
		if h.Check {
			verb = "would remove"
		}
		pm2Msg = fmt.Sprintf("%s %s (the servers ran under %s); ", verb, strings.Join(left, ", "), strings.Join(from, ", "))
	}
	if len(changes) == 0 {
		if len(left) > 0 {
			return Change(left, "%s%d units up to date", pm2Msg, len(d.Services))
		}
		return Ok("%d units up to date", len(d.Services))
	}
	if h.Check {
		return Change(append(left, changes...), "%swould write %s", pm2Msg, unitList(changes))
	}
	if _, err := sh(ctx, h, "daemon-reload", "systemctl daemon-reload"); err != nil {
		return Fail(err)
	}
	// systemd-analyze verify prints nothing for a clean unit.
	var units []string
	for _, s := range d.Services {
		units = append(units, q(s.Unit()))
	}
	r, err := h.Exec.RunSudo(ctx, "systemd-analyze verify "+strings.Join(units, " ")+" 2>&1")
	if err != nil {
		return Fail(fmt.Errorf("systemd-analyze verify: %w", err))
	}
	if out := strings.TrimSpace(string(r.Stdout)); r.ExitCode != 0 || relevant(out, d) != "" {
		return Fail(fail.Errorf(fail.Failed, "", "systemd-analyze verify: %s", firstLines(relevant(out, d)+" "+out, 3)))
	}
	return Change(append(left, changes...), "%swrote %s; daemon-reload; verify clean", pm2Msg, unitList(changes))
}

// leaveOthers removes what the other supervisors left (the servers ran
// under them before) and returns what it removed (in check mode: would
// remove) and from which supervisors (PM2, ...).
func leaveOthers(ctx context.Context, h *HostRun, d Deployment) (removed, from []string, err error) {
	dry := "0"
	if h.Check {
		dry = "1"
	}
	for _, name := range goSupervisorNames {
		script := goSupervisors[name].leave(d)
		if script == "" {
			continue
		}
		out, err := sh(ctx, h, "leave "+name, "DRY="+dry+"\n"+script)
		if err != nil {
			return nil, nil, err
		}
		n := len(removed)
		for _, line := range strings.Split(out, "\n") {
			if c, ok := strings.CutPrefix(strings.TrimSpace(line), "removed "); ok {
				removed = append(removed, c)
			}
		}
		if len(removed) > n {
			from = append(from, strings.ToUpper(name))
		}
	}
	return removed, from, nil
}

// leave is "": PM2's up task disables and removes the units itself (and
// systemd does not leave itself).
func (systemd) leave(Deployment) string { return "" }

// relevant keeps the verify lines about our units.
func relevant(out string, d Deployment) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		for _, s := range d.Services {
			if strings.Contains(line, s.Unit()) || strings.Contains(line, d.BinPath(s.Program)) {
				keep = append(keep, strings.TrimSpace(line))
				break
			}
		}
	}
	return strings.Join(keep, "; ")
}

func unitList(paths []string) string {
	var names []string
	for _, p := range paths {
		names = append(names, path.Base(p))
	}
	return strings.Join(names, ", ")
}

// serviceState is what showScript finds.
type serviceState struct {
	activeState, subState, unitFileState string
	mainPID                              int
	applied                              string // state file content
}

func showScript(d Deployment, s Service) string {
	return fmt.Sprintf("systemctl show -p ActiveState -p SubState -p UnitFileState -p MainPID %s; printf 'Applied='; cat %s 2>/dev/null; echo",
		q(s.Unit()), q(d.StatePath(s)))
}

func parseShow(out string) serviceState {
	u := showUnit(out)
	st := serviceState{activeState: u.Active, subState: u.Sub, unitFileState: u.Enabled, mainPID: u.MainPID}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Applied="); ok {
			st.applied = strings.TrimSpace(v)
		}
	}
	return st
}

// showUnit reads one unit's `systemctl show -p ...` with observe's parser.
func showUnit(out string) observe.Unit {
	u := observe.ParseUnits("Id=-\n" + strings.ReplaceAll(out, "\n\n", "\n"))
	if len(u) == 0 {
		return observe.Unit{}
	}
	return u[0]
}

// service makes s enabled and running the current release with the current
// unit: it starts it if stopped, restarts it if its unit changed (or it
// cannot reload), reloads it (zero downtime) if only the binary changed.
func service(ctx context.Context, h *HostRun, d Deployment, s Service, release string, timeout time.Duration) TaskResult {
	want := release + " " + unitSum(d.UnitFile(s))
	out, err := sh(ctx, h, "systemctl show", showScript(d, s))
	if err != nil {
		return Fail(err)
	}
	st := parseShow(out)
	oldRelease, oldUnit, _ := strings.Cut(st.applied, " ")
	var changes []string
	var cmds []string
	if st.unitFileState != "enabled" {
		changes = append(changes, "enable")
		cmds = append(cmds, "systemctl enable --quiet "+q(s.Unit()))
	}
	action := ""
	switch {
	case st.activeState != "active" && st.activeState != "reloading":
		action = "start"
		if st.activeState == "failed" || st.activeState == "activating" {
			action = "restart"
		}
	case st.applied == want:
	case unitChanged(h, d, s) || oldUnit != unitSum(d.UnitFile(s)) || !s.Reload:
		action = "restart"
	case oldRelease != release:
		action = "reload"
	}
	if action != "" {
		changes = append(changes, action)
	}
	if len(changes) == 0 {
		return Ok("%s active, running release %s", s.Unit(), release)
	}
	if h.Check {
		return Change(changes, "would %s %s", strings.Join(changes, " and "), s.Unit())
	}
	var before clusterStats
	if action == "reload" {
		if before, err = readStats(ctx, h, d, s, statsSocket(s)); err != nil {
			// No stats: restart rather than guess.
			action = "restart"
			changes[len(changes)-1] = action
		}
	}
	if action != "" {
		cmds = append(cmds, "systemctl "+action+" "+q(s.Unit()))
	}
	if _, err := sh(ctx, h, strings.Join(changes, " and ")+" "+s.Unit(), strings.Join(cmds, " && ")); err != nil {
		return Fail(withJournal(ctx, h, s, err))
	}
	if action == "reload" {
		if err := waitReload(ctx, h, d, s, statsSocket(s), before, 2*timeout, s.Unit()); err != nil {
			return Fail(withJournal(ctx, h, s, err))
		}
	}
	if action != "" {
		// Only record what runs once it runs.
		out, err := sh(ctx, h, "systemctl show", showScript(d, s))
		if err != nil {
			return Fail(err)
		}
		if st := parseShow(out); st.activeState != "active" && st.activeState != "reloading" {
			return Fail(withJournal(ctx, h, s, fmt.Errorf("%s is %s (%s) after %s", s.Unit(), st.activeState, st.subState, action)))
		}
		if _, err := sh(ctx, h, "record state", recordState(d.StatePath(s), want)); err != nil {
			return Fail(err)
		}
	}
	verb := map[string]string{"start": "started", "restart": "restarted", "reload": "reloaded (zero downtime)", "": ""}[action]
	msg := strings.TrimPrefix(strings.Join(nonEmpty(ifThen(st.unitFileState != "enabled", "enabled"), verb), ", "), ", ")
	return Change(changes, "%s %s, release %s", s.Unit(), msg, release)
}

func ifThen(c bool, s string) string {
	if c {
		return s
	}
	return ""
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// withJournal adds the unit's last journal lines to err.
func withJournal(ctx context.Context, h *HostRun, s Service, err error) error {
	if ctx.Err() != nil {
		return err
	}
	r, jerr := h.Exec.RunSudo(ctx, "journalctl -u "+q(s.Unit())+" -n 5 --no-pager -o cat 2>/dev/null")
	if jerr != nil || len(strings.TrimSpace(string(r.Stdout))) == 0 {
		return fail.New(fail.Failed, "see: journalctl -u "+s.Unit(), err)
	}
	lines := strings.Split(strings.TrimSpace(string(r.Stdout)), "\n")
	return fail.New(fail.Failed, "see: journalctl -u "+s.Unit(), fmt.Errorf("%w; journal: %s", err, strings.Join(lines, " | ")))
}

// unitChanged reports whether the units task wrote (or would write) s's
// unit in this run.
func unitChanged(h *HostRun, d Deployment, s Service) bool {
	for _, r := range h.Results {
		if r.Task == TaskUnits && r.Status == Changed {
			for _, c := range r.Changes {
				if c == d.UnitPath(s) {
					return true
				}
			}
		}
	}
	return false
}

// statsSocket is where the cluster serves its statistics under systemd.
func statsSocket(s Service) string { return path.Join("/run", s.RuntimeDirectory, "stats.sock") }

var exposureRe = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+) (\S+)`)

// security records systemd-analyze security's exposure score of each unit.
func security(ctx context.Context, h *HostRun, d Deployment) TaskResult {
	if h.Check && h.Changed(TaskUnits) {
		return Skip("check mode: the units would change")
	}
	var b strings.Builder
	for _, s := range d.Services {
		fmt.Fprintf(&b, "systemd-analyze security --no-pager %s 2>&1 | tail -n 1\n", q(s.Unit()))
	}
	out, err := sh(ctx, h, "systemd-analyze security", b.String())
	if err != nil {
		return Fail(err)
	}
	scores := map[string]any{}
	var parts []string
	worst := 0.0
	for _, m := range exposureRe.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		name := strings.TrimSuffix(strings.TrimPrefix(m[1], "deploylab-"), ".service")
		scores[name] = v
		parts = append(parts, fmt.Sprintf("%s %s %s", name, m[2], m[3]))
		worst = max(worst, v)
	}
	if len(parts) != len(d.Services) {
		return Fail(fmt.Errorf("systemd-analyze security: unexpected output: %s", firstLines(out, 2)))
	}
	r := Ok("exposure %s", strings.Join(parts, ", "))
	if worst > MaxExposure {
		r.Msg += fmt.Sprintf(" (above the %.1f goal)", MaxExposure)
	}
	r.Data = map[string]any{"exposure": scores}
	return r
}

func (systemd) control(ctx context.Context, h *HostRun, d Deployment, s Service, verb Verb, timeout time.Duration) TaskResult {
	out, err := sh(ctx, h, "systemctl show", showScript(d, s))
	if err != nil {
		return Fail(err)
	}
	st := parseShow(out)
	if st.unitFileState == "" || st.unitFileState == "not-found" {
		if _, err := sh(ctx, h, "find unit", "test -f "+q(d.UnitPath(s))); err != nil {
			return Fail(fail.Errorf(fail.Failed, "deploy it first: deploylab up", "%s is not installed", s.Unit()))
		}
	}
	active := st.activeState == "active" || st.activeState == "reloading"
	action := string(verb)
	note := ""
	switch verb {
	case VerbStop:
		if !active && st.activeState != "activating" {
			return Ok("%s already stopped (%s)", s.Unit(), st.activeState)
		}
	case VerbStart:
		if active {
			return Ok("%s already running (pid %d)", s.Unit(), st.mainPID)
		}
	case VerbReload:
		if !active {
			action = "start"
			note = " (it was not running: started)"
		} else if !s.Reload {
			action = "restart"
			note = " (" + s.Program + " has no zero-downtime reload: restarted)"
		}
	}
	var before clusterStats
	if action == "reload" {
		if before, err = readStats(ctx, h, d, s, statsSocket(s)); err != nil {
			action, note = "restart", " (no statistics from the master: restarted)"
		}
	}
	if _, err := sh(ctx, h, action+" "+s.Unit(), "systemctl "+action+" "+q(s.Unit())); err != nil {
		return Fail(withJournal(ctx, h, s, err))
	}
	if action == "reload" {
		if err := waitReload(ctx, h, d, s, statsSocket(s), before, 2*timeout, s.Unit()); err != nil {
			return Fail(withJournal(ctx, h, s, err))
		}
	}
	out, err = sh(ctx, h, "systemctl show", showScript(d, s))
	if err != nil {
		return Fail(err)
	}
	after := parseShow(out)
	switch verb {
	case VerbStop:
		if after.activeState == "active" {
			return Fail(fmt.Errorf("%s is still active after stop", s.Unit()))
		}
		return Change([]string{"stop"}, "%s stopped", s.Unit())
	default:
		if after.activeState != "active" && after.activeState != "reloading" {
			return Fail(withJournal(ctx, h, s, fmt.Errorf("%s is %s (%s) after %s", s.Unit(), after.activeState, after.subState, action)))
		}
	}
	past := map[string]string{"start": "started", "restart": "restarted", "reload": "reloaded (zero downtime)"}[action]
	return Change([]string{action}, "%s %s, pid %d%s", s.Unit(), past, after.mainPID, note)
}

// logs prints the journal of the units (journalctl -u), then with o.Follow
// the entries after the last cursor seen.
func (systemd) logs(ctx context.Context, h *HostRun, d Deployment, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	var units []string
	for _, s := range svcs {
		units = append(units, "-u "+q(s.Unit()))
	}
	base := "journalctl --no-pager -o short-iso --show-cursor " + strings.Join(units, " ")
	out, err := sh(ctx, h, "journalctl", fmt.Sprintf("%s -n %d", base, o.Lines))
	if err != nil {
		return err
	}
	cursor := emitJournal(h.Name, out, emit)
	for o.Follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(o.Poll):
		}
		cmd := base + " -n 1000"
		if cursor != "" {
			cmd = base + " --after-cursor " + q(cursor)
		}
		out, err := sh(ctx, h, "journalctl", cmd)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if c := emitJournal(h.Name, out, emit); c != "" {
			cursor = c
		}
	}
	return nil
}

// emitJournal emits journalctl's lines and returns its cursor.
func emitJournal(host, out string, emit func(host, text string)) string {
	var keep []string
	cursor := ""
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(line, "-- cursor: "); ok {
			cursor = strings.TrimSpace(c)
			continue
		}
		if line == "-- No entries --" {
			continue
		}
		keep = append(keep, line)
	}
	emit(host, strings.Join(keep, "\n"))
	return cursor
}

// lsHead: systemd needs nothing once per host.
func (systemd) lsHead(Deployment) string { return ":" }

// lsService prints systemctl show's view of s.
func (systemd) lsService(d Deployment, s Service) string {
	sock := "sock="
	if s.RuntimeDirectory != "" {
		sock = "sock=" + q(statsSocket(s))
	}
	return fmt.Sprintf("systemctl show -p LoadState -p ActiveState -p SubState -p MainPID -p NRestarts -p ActiveEnterTimestampMonotonic %s; mp=$(systemctl show -p MainPID --value %s); %s",
		q(s.Unit()), q(s.Unit()), sock)
}

func (systemd) lsRow(ps *ProcStatus, s Service, u observe.Unit, _ string, uptime float64) {
	ps.Status = systemdStatus(u)
	ps.Restarts = u.Restarts
	if mono := u.ActiveSince; mono > 0 && ps.Status == "online" {
		ps.Uptime = uptime - float64(mono)/1e6
	}
}

func systemdStatus(u observe.Unit) string {
	if u.Load == "not-found" {
		return "missing"
	}
	switch u.Active {
	case "active":
		return "online"
	case "reloading":
		return "reloading"
	case "activating":
		return "starting"
	case "failed":
		return "failed"
	case "inactive", "deactivating":
		return "stopped"
	}
	return u.Active
}

// down disables and removes the units.
func (systemd) down(d Deployment) (services, files string) {
	var b strings.Builder
	for _, s := range d.Services {
		u := s.Unit()
		fmt.Fprintf(&b, "if [ -f %s ] || systemctl is-active --quiet %s; then echo removed %s; act systemctl disable --now %s >/dev/null 2>&1; act rm -f %s; reload=1; fi\n",
			q(d.UnitPath(s)), q(u), u, q(u), q(d.UnitPath(s)))
	}
	return b.String(), ""
}

// leftovers prints unit files and loaded units of deploylab.
func (systemd) leftovers(Deployment) string {
	return "for f in /etc/systemd/system/deploylab-*.service; do [ -e \"$f\" ] && echo \"$f\"; done\n" +
		"systemctl list-units --all --plain --no-legend 'deploylab-*' 2>/dev/null | awk '{print \"unit:\" $1}'\n"
}
