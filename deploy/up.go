package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/payload"
	"github.com/deploylab/deploylab/remote"
)

// BuildFunc returns the payload for an architecture.
type BuildFunc func(ctx context.Context, goarch string) (*payload.Set, error)

// UpOptions configure Up.
type UpOptions struct {
	Deployment Deployment
	// Forks is how many hosts run at once; 0 means 10.
	Forks int
	// Check: report what would change, change nothing.
	Check bool
	// Build gets the payload; nil means payload.Build with its defaults.
	Build BuildFunc
	// Dial connects to a host; nil means remote.Dial.
	Dial DialFunc
	// Observer follows the run.
	Observer Observer
	// VerifyTimeout bounds the wait for the servers to answer after a
	// (re)start; 0 means 30s.
	VerifyTimeout time.Duration
}

// Task names of Up, in order (the services' tasks are named after them).
const (
	TaskFacts    = "facts"
	TaskPayload  = "payload"
	TaskUpload   = "upload"
	TaskRelease  = "release"
	TaskUnits    = "units"
	TaskVerify   = "verify"
	TaskSecurity = "security"
)

// MaxExposure is the systemd-analyze security score up aims at ("OK").
const MaxExposure = 2.0

// checkTargets refuses a deployment with no host, or with settings that
// cannot work (a password variable that is not set), before any host is
// visited.
func checkTargets(targets []Target) error {
	if len(targets) == 0 {
		return fail.Errorf(fail.Usage, "give --host ADDRESS or -i INVENTORY", "no hosts to deploy to")
	}
	for _, t := range targets {
		if _, err := remote.ResolveHost(t.Host, ""); err != nil {
			return err
		}
	}
	return nil
}

// Up deploys the payload to every target: facts, payload (built here for
// the host's architecture), upload, release switch, units, one task per
// service (enable, start, restart or reload), verify over HTTP from the
// host, security score. A second run changes nothing.
func Up(ctx context.Context, targets []Target, o UpOptions) (*Recap, error) {
	d := o.Deployment
	if d.Root == "" {
		var err error
		if d, err = NewDeployment(DeploymentOptions{}); err != nil {
			return nil, err
		}
	}
	if err := checkTargets(targets); err != nil {
		return nil, err
	}
	build := o.Build
	if build == nil {
		build = func(ctx context.Context, goarch string) (*payload.Set, error) {
			return payload.Build(ctx, payload.Options{GOARCH: goarch})
		}
	}
	u := &up{d: d, build: newBuildCache(build), verifyTimeout: o.VerifyTimeout}
	if u.verifyTimeout <= 0 {
		u.verifyTimeout = 30 * time.Second
	}
	tasks := []Task{
		{TaskFacts, u.facts},
		{TaskPayload, u.payload},
		{TaskUpload, u.upload},
		{TaskRelease, u.release},
		{TaskUnits, u.units},
	}
	for _, s := range d.Services {
		tasks = append(tasks, Task{s.Name, u.service(s)})
	}
	tasks = append(tasks, Task{TaskVerify, u.verify}, Task{TaskSecurity, u.security})
	if d.Supervisor == SupervisorPM2 {
		tasks = pm2Tasks(tasks, u)
	}
	rc := Run(ctx, targets, tasks, RunOptions{
		Forks: o.Forks, Check: o.Check, Dial: o.Dial, Observer: o.Observer,
		NewData: func(Target) any { return &upHost{} },
	})
	return rc, nil
}

// TaskNames are Up's task names for d, in order.
func TaskNames(d Deployment) []string {
	names := []string{TaskFacts, TaskPayload, TaskUpload, TaskRelease, TaskUnits}
	for _, s := range d.Services {
		names = append(names, s.Name)
	}
	names = append(names, TaskVerify, TaskSecurity)
	if d.Supervisor == SupervisorPM2 {
		names = []string{TaskFacts, TaskPayload, TaskUpload, TaskRelease, TaskPM2, TaskVerify}
	}
	return names
}

type up struct {
	d             Deployment
	build         *buildCache
	verifyTimeout time.Duration
}

// upHost is what Up's tasks learn about one host.
type upHost struct {
	set *payload.Set
	// unitChanged: the unit file of the service was (or would be) written.
	unitChanged map[string]bool
	// notDeployed: check mode found nothing deployed yet.
	notDeployed bool
}

func data(h *HostRun) *upHost { return h.Data.(*upHost) }

// buildCache builds each architecture once per run, whatever the number of
// hosts asking.
type buildCache struct {
	build BuildFunc
	mu    sync.Mutex
	sets  map[string]*buildEntry
}

type buildEntry struct {
	once sync.Once
	set  *payload.Set
	err  error
}

func newBuildCache(b BuildFunc) *buildCache {
	return &buildCache{build: b, sets: map[string]*buildEntry{}}
}

func (c *buildCache) get(ctx context.Context, goarch string) (*payload.Set, error) {
	c.mu.Lock()
	e, ok := c.sets[goarch]
	if !ok {
		e = &buildEntry{}
		c.sets[goarch] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.set, e.err = c.build(ctx, goarch) })
	return e.set, e.err
}

// sh runs a script as root and returns its stdout; a non-zero exit is an
// error carrying the script's last stderr line.
func sh(ctx context.Context, h *HostRun, what, script string) (string, error) {
	r, err := h.Exec.RunSudo(ctx, script)
	if err != nil {
		return string(r.Stdout), fmt.Errorf("%s: %w", what, err)
	}
	return string(r.Stdout), scriptErr(what, r)
}

// scriptErr is nil when a script exited 0, else an error naming what it
// did, its exit status and its last line of stderr (of stdout when stderr
// is empty).
func scriptErr(what string, r remote.Result) error {
	if r.ExitCode == 0 {
		return nil
	}
	msg := strings.TrimSpace(string(r.Stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(r.Stdout))
	}
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	return fmt.Errorf("%s: exit status %d: %s", what, r.ExitCode, msg)
}

func q(s string) string { return remote.ShellQuote(s) }

// facts gathers the host's facts and checks it can take the deployment.
func (u *up) facts(ctx context.Context, h *HostRun) TaskResult {
	f, err := h.Exec.Facts(ctx)
	if err != nil {
		return Fail(err)
	}
	h.Facts = f
	desc := fmt.Sprintf("%s %s, %s, %d CPUs", orUnknown(f.OSID), f.OSVersion, orUnknown(f.Arch), f.CPUs)
	if f.Arch != "amd64" && f.Arch != "arm64" {
		return Fail(fail.Errorf(fail.Failed, "deploylab deploys to amd64 and arm64 hosts", "%s: unsupported architecture %q (uname -m %s)", desc, f.Arch, f.Machine))
	}
	if !f.Systemd {
		return Fail(fail.Errorf(fail.Failed, "deploy to a host booted with systemd (a Debian 12 VM is)", "%s: systemd is not running (PID 1 is %q)", desc, f.Init))
	}
	if err := checkSudo(ctx, h, desc); err != nil {
		return Fail(err)
	}
	// A port held by something else (the student's own node app) would
	// make our service crash-loop: say so now.
	for _, s := range u.d.Services {
		for _, l := range f.ListenersOn(s.Port) {
			for _, p := range l.Processes {
				if p.Name != s.Program {
					return Fail(fail.Errorf(fail.Failed,
						fmt.Sprintf("stop it (e.g. pm2 delete all, or systemctl stop its unit) or deploy to another port with --port/--cluster-port"),
						"port %d (for %s) is in use by %s (pid %d)", s.Port, s.Name, p.Name, p.PID))
				}
			}
		}
	}
	return Ok("%s", desc)
}

// checkSudo fails when the login user cannot become root: no sudo, or a
// sudo that wants a password none was given for (RunSudo asks for one on a
// terminal, or takes it from the environment: it is tried here, once).
func checkSudo(ctx context.Context, h *HostRun, desc string) error {
	switch f := h.Facts; f.Sudo {
	case "root", "nopasswd":
		return nil
	case "absent":
		return fail.Errorf(fail.Auth, "log in as root or install sudo on the host", "%s: user %s cannot become root: sudo is not installed", desc, f.User)
	}
	_, err := sh(ctx, h, "sudo", "true")
	return err
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// payload gets the payload for the host's architecture (built once per
// architecture and run, on this machine).
func (u *up) payload(ctx context.Context, h *HostRun) TaskResult {
	set, err := u.build.get(ctx, h.Facts.Arch)
	if err != nil {
		return Fail(err)
	}
	data(h).set = set
	r := Ok("%s release %s (%d programs, %s, %s)", set.GOARCH, set.Hash, len(set.Binaries), mib(set.Size()), set.Origin)
	r.Data = map[string]any{"release": set.Hash, "arch": set.GOARCH, "origin": string(set.Origin)}
	return r
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// remoteSums returns the sha256 of each path that exists (as root).
func remoteSums(ctx context.Context, h *HostRun, paths []string) (map[string]string, error) {
	var b strings.Builder
	for _, p := range paths {
		fmt.Fprintf(&b, "[ -f %s ] && sha256sum -- %s\n", q(p), q(p))
	}
	b.WriteString("exit 0\n")
	out, err := sh(ctx, h, "checksums", b.String())
	if err != nil {
		return nil, err
	}
	sums := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 {
			sums[strings.TrimPrefix(f[1], "\\")] = f[0]
		}
	}
	return sums, nil
}

// upload puts the release's binaries in releases/<hash>/, skipping those
// already there.
func (u *up) upload(ctx context.Context, h *HostRun) TaskResult {
	set := data(h).set
	dir := u.d.ReleaseDir(set.Hash)
	var paths []string
	for _, b := range set.Binaries {
		paths = append(paths, path.Join(dir, b.Name))
	}
	sums, err := remoteSums(ctx, h, paths)
	if err != nil {
		return Fail(err)
	}
	var missing []payload.Binary
	var size int64
	for _, b := range set.Binaries {
		if sums[path.Join(dir, b.Name)] != b.Sum {
			missing = append(missing, b)
			size += int64(len(b.Data))
		}
	}
	if len(missing) == 0 {
		return Ok("%s present", dir)
	}
	var changes []string
	for _, b := range missing {
		changes = append(changes, path.Join(dir, b.Name))
	}
	if h.Check {
		return Change(changes, "would upload %d programs (%s) to %s", len(missing), mib(size), dir)
	}
	// Binaries go up in parallel over the one connection.
	var wg sync.WaitGroup
	errs := make([]error, len(missing))
	for i, b := range missing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.Exec.WriteFile(ctx, path.Join(dir, b.Name), b.Data, 0o755, remote.AsRoot())
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Fail(fmt.Errorf("upload: %w", err))
		}
	}
	return Change(changes, "uploaded %d programs (%s) to %s", len(missing), mib(size), dir)
}

// releaseScript switches current and bin/ to the release and prunes old
// releases. With DRY=1 it only reports. It prints one "changed <what>" line
// per change and "pruned <dir>" per removed release.
const releaseScript = `set -eu
root=$1 hash=$2 keep=$3 dry=$4; shift 4
want=releases/$hash
if [ ! -d "$root" ] && [ "$dry" = 1 ]; then
  echo "changed current -> $want"
  for p in "$@"; do echo "changed bin/$p"; done
  exit 0
fi
cd "$root"
[ -d "$want" ] || { [ "$dry" = 1 ] || { echo "release $want is missing" >&2; exit 3; }; }
if [ "$(readlink current 2>/dev/null || true)" != "$want" ]; then
  echo "changed current -> $want"
  if [ "$dry" != 1 ]; then ln -sfn "$want" .current.new && mv -fT .current.new current; fi
fi
[ "$dry" = 1 ] || mkdir -p bin
for p in "$@"; do
  if [ ! bin/"$p" -ef "$want/$p" ]; then
    echo "changed bin/$p"
    if [ "$dry" != 1 ]; then ln -f "$want/$p" bin/."$p".new && mv -fT bin/."$p".new bin/"$p"; fi
  fi
done
[ "$dry" = 1 ] && exit 0
n=0
for r in $(ls -1t releases); do
  [ "releases/$r" = "$want" ] && continue
  n=$((n+1))
  if [ $n -ge "$keep" ]; then rm -rf -- "releases/$r" && echo "pruned releases/$r"; fi
done
`

// release points current and bin/ at the release.
func (u *up) release(ctx context.Context, h *HostRun) TaskResult {
	set := data(h).set
	dry := "0"
	if h.Check {
		dry = "1"
	}
	args := []string{u.d.Root, set.Hash, strconv.Itoa(u.d.KeepReleases), dry}
	for _, b := range set.Binaries {
		args = append(args, b.Name)
	}
	var quoted []string
	for _, a := range args {
		quoted = append(quoted, q(a))
	}
	out, err := sh(ctx, h, "switch release", "sh -c "+q(releaseScript)+" release "+strings.Join(quoted, " "))
	if err != nil {
		return Fail(err)
	}
	var changes, pruned []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if c, ok := strings.CutPrefix(line, "changed "); ok {
			changes = append(changes, c)
		} else if p, ok := strings.CutPrefix(line, "pruned "); ok {
			pruned = append(pruned, p)
		}
	}
	msg := "current -> releases/" + set.Hash
	if len(pruned) > 0 {
		msg += fmt.Sprintf(" (removed %d old releases)", len(pruned))
	}
	if len(changes) == 0 {
		return Ok("%s", msg)
	}
	if h.Check {
		return Change(changes, "would switch %s", msg)
	}
	return Change(changes, "%s", msg)
}

// units writes the unit files, reloads systemd and verifies them.
func (u *up) units(ctx context.Context, h *HostRun) TaskResult {
	d := data(h)
	d.unitChanged = map[string]bool{}
	left, err := u.leavePM2(ctx, h)
	if err != nil {
		return Fail(err)
	}
	var paths []string
	for _, s := range u.d.Services {
		paths = append(paths, u.d.UnitPath(s))
	}
	sums, err := remoteSums(ctx, h, paths)
	if err != nil {
		return Fail(err)
	}
	var changes []string
	for _, s := range u.d.Services {
		unit := u.d.UnitFile(s)
		if sums[u.d.UnitPath(s)] == sha256Hex(unit) {
			continue
		}
		d.unitChanged[s.Name] = true
		changes = append(changes, u.d.UnitPath(s))
		if h.Check {
			continue
		}
		if _, err := h.Exec.WriteFile(ctx, u.d.UnitPath(s), unit, 0o644, remote.AsRoot()); err != nil {
			return Fail(err)
		}
	}
	// What leavePM2 removed comes first in the message.
	pm2Msg := ""
	if len(left) > 0 {
		verb := "removed"
		if h.Check {
			verb = "would remove"
		}
		pm2Msg = fmt.Sprintf("%s %s (the servers ran under PM2); ", verb, strings.Join(left, ", "))
	}
	if len(changes) == 0 {
		if len(left) > 0 {
			return Change(left, "%s%d units up to date", pm2Msg, len(u.d.Services))
		}
		return Ok("%d units up to date", len(u.d.Services))
	}
	if h.Check {
		return Change(append(left, changes...), "%swould write %s", pm2Msg, unitList(changes))
	}
	if _, err := sh(ctx, h, "daemon-reload", "systemctl daemon-reload"); err != nil {
		return Fail(err)
	}
	// systemd-analyze verify prints nothing for a clean unit.
	var units []string
	for _, s := range u.d.Services {
		units = append(units, q(s.Unit()))
	}
	r, err := h.Exec.RunSudo(ctx, "systemd-analyze verify "+strings.Join(units, " ")+" 2>&1")
	if err != nil {
		return Fail(fmt.Errorf("systemd-analyze verify: %w", err))
	}
	if out := strings.TrimSpace(string(r.Stdout)); r.ExitCode != 0 || relevant(out, u.d) != "" {
		return Fail(fail.Errorf(fail.Failed, "", "systemd-analyze verify: %s", firstLines(relevant(out, u.d)+" "+out, 3)))
	}
	return Change(append(left, changes...), "%swrote %s; daemon-reload; verify clean", pm2Msg, unitList(changes))
}

// leavePM2 removes what up --supervisor pm2 left on a host that now gets
// systemd units: the PM2 apps (they hold the ports), PM2's daemon and
// pm2-deploylab.service, the PM2 user and its home, and the recorded
// supervisor. It returns what it removed (in check mode: would remove).
func (u *up) leavePM2(ctx context.Context, h *HostRun) ([]string, error) {
	var b strings.Builder
	b.WriteString("set -u\nact() { [ \"$DRY\" = 1 ] || \"$@\"; }\nreload=0\n")
	b.WriteString(pm2RemoveScript(u.d))
	fmt.Fprintf(&b, "if [ -e %[1]s ]; then echo removed %[2]s; act rm -rf -- %[1]s; fi\n", q(u.d.PM2Home()), u.d.PM2Home())
	fmt.Fprintf(&b, "if id -u %[1]s >/dev/null 2>&1; then echo removed user:%[1]s; act userdel %[1]s; fi\n", PM2User)
	fmt.Fprintf(&b, "act rm -f %s %s\n", q(u.d.SupervisorPath()), q(u.d.StatePath(Service{Name: SupervisorPM2})))
	b.WriteString("if [ $reload = 1 ] && [ \"$DRY\" != 1 ]; then systemctl daemon-reload; fi\nexit 0\n")
	dry := "0"
	if h.Check {
		dry = "1"
	}
	// Only when PM2 ran them: the recorded supervisor says so.
	script := fmt.Sprintf("[ \"$(cat %s 2>/dev/null)\" = %s ] || exit 0\nDRY=%s\n%s", q(u.d.SupervisorPath()), SupervisorPM2, dry, b.String())
	out, err := sh(ctx, h, "leave pm2", script)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "removed "); ok {
			removed = append(removed, c)
		}
	}
	return removed, nil
}

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

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "; ")
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
	var st serviceState
	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok {
			continue
		}
		switch k {
		case "ActiveState":
			st.activeState = v
		case "SubState":
			st.subState = v
		case "UnitFileState":
			st.unitFileState = v
		case "MainPID":
			st.mainPID, _ = strconv.Atoi(v)
		case "Applied":
			st.applied = strings.TrimSpace(v)
		}
	}
	return st
}

// service makes s enabled and running the current release with the current
// unit: it starts it if stopped, restarts it if its unit changed (or it
// cannot reload), reloads it (zero downtime) if only the binary changed.
func (u *up) service(s Service) func(ctx context.Context, h *HostRun) TaskResult {
	return func(ctx context.Context, h *HostRun) TaskResult {
		d := data(h)
		want := d.set.Hash + " " + unitSum(u.d.UnitFile(s))
		out, err := sh(ctx, h, "systemctl show", showScript(u.d, s))
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
		case d.unitChanged[s.Name] || oldUnit != unitSum(u.d.UnitFile(s)) || !s.Reload:
			action = "restart"
		case oldRelease != d.set.Hash:
			action = "reload"
		}
		if action != "" {
			changes = append(changes, action)
		}
		if len(changes) == 0 {
			return Ok("%s active, running release %s", s.Unit(), d.set.Hash)
		}
		if h.Check {
			return Change(changes, "would %s %s", strings.Join(changes, " and "), s.Unit())
		}
		var before clusterStats
		if action == "reload" {
			if before, err = u.stats(ctx, h, s); err != nil {
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
			if err := u.waitReload(ctx, h, s, before); err != nil {
				return Fail(withJournal(ctx, h, s, err))
			}
		}
		if action != "" {
			// Only record what runs once it runs.
			out, err := sh(ctx, h, "systemctl show", showScript(u.d, s))
			if err != nil {
				return Fail(err)
			}
			if st := parseShow(out); st.activeState != "active" && st.activeState != "reloading" {
				return Fail(withJournal(ctx, h, s, fmt.Errorf("%s is %s (%s) after %s", s.Unit(), st.activeState, st.subState, action)))
			}
			script := fmt.Sprintf("mkdir -p %s && printf '%%s\\n' %s > %s.new && mv -f %s.new %s",
				q(path.Dir(u.d.StatePath(s))), q(want), q(u.d.StatePath(s)), q(u.d.StatePath(s)), q(u.d.StatePath(s)))
			if _, err := sh(ctx, h, "record state", script); err != nil {
				return Fail(err)
			}
		}
		verb := map[string]string{"start": "started", "restart": "restarted", "reload": "reloaded (zero downtime)", "": ""}[action]
		msg := strings.TrimPrefix(strings.Join(nonEmpty(ifThen(st.unitFileState != "enabled", "enabled"), verb), ", "), ", ")
		return Change(changes, "%s %s, release %s", s.Unit(), msg, d.set.Hash)
	}
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

// clusterStats is the part of sumcluster's stats we use.
type clusterStats struct {
	Reloads int  `json:"reloads"`
	Ready   bool `json:"ready"`
	Workers []struct {
		State string `json:"state"`
	} `json:"workers"`
}

func (u *up) stats(ctx context.Context, h *HostRun, s Service) (clusterStats, error) {
	var st clusterStats
	sock := path.Join("/run", s.RuntimeDirectory, "stats.sock")
	out, err := sh(ctx, h, "cluster stats", u.d.BinPath(s.Program)+" stats --stats-socket "+q(sock))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("cluster stats: %w", err)
	}
	return st, nil
}

// waitReload waits until the cluster has finished a reload begun after
// before was read.
func (u *up) waitReload(ctx context.Context, h *HostRun, s Service, before clusterStats) error {
	ctx, cancel := context.WithTimeout(ctx, 2*u.verifyTimeout)
	defer cancel()
	for {
		st, err := u.stats(ctx, h, s)
		if err == nil && st.Reloads > before.Reloads && st.Ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("reload %s: %w", s.Unit(), err)
			}
			return fmt.Errorf("reload %s: not finished after %s", s.Unit(), 2*u.verifyTimeout)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// verify asks each server for / and /api/50 from the host itself.
func (u *up) verify(ctx context.Context, h *HostRun) TaskResult {
	if h.Check && h.Changed() {
		return Skip("check mode: the servers would change")
	}
	var ports []int
	for _, s := range u.d.Services {
		ports = append(ports, s.Port)
	}
	res, err := Probe(ctx, h.Exec, ports, u.verifyTimeout)
	if err != nil {
		return Fail(err)
	}
	var parts, bad []string
	for _, s := range u.d.Services {
		p := res[s.Port]
		if p.OK() {
			parts = append(parts, fmt.Sprintf("%s :%d ok", s.Name, s.Port))
		} else {
			bad = append(bad, fmt.Sprintf("%s :%d: %s", s.Name, s.Port, p.Problem()))
		}
	}
	if len(bad) > 0 {
		return Fail(fail.Errorf(fail.Failed, "see: journalctl -u deploylab-<service>", "%s", strings.Join(bad, "; ")))
	}
	return Ok("%s (/ and /api/50 answered from the host via %s)", strings.Join(parts, ", "), res[ports[0]].Via)
}

var exposureRe = regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+) (\S+)`)

// security records systemd-analyze security's exposure score of each unit.
func (u *up) security(ctx context.Context, h *HostRun) TaskResult {
	if h.Check && h.Changed(TaskUnits) {
		return Skip("check mode: the units would change")
	}
	var b strings.Builder
	for _, s := range u.d.Services {
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
	if len(parts) != len(u.d.Services) {
		return Fail(fmt.Errorf("systemd-analyze security: unexpected output: %s", firstLines(out, 2)))
	}
	r := Ok("exposure %s", strings.Join(parts, ", "))
	if worst > MaxExposure {
		r.Msg += fmt.Sprintf(" (above the %.1f goal)", MaxExposure)
	}
	r.Data = map[string]any{"exposure": scores}
	return r
}
