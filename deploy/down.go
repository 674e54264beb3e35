package deploy

import (
	"context"
	"fmt"
	"strings"

	"github.com/deploylab/deploylab/internal/fail"
)

// Down's task names, in order.
const (
	TaskDownServices = "services"
	TaskDownFiles    = "files"
	TaskDownVerify   = "verify"
)

// DownOptions configure Down.
type DownOptions struct {
	Deployment Deployment
	Forks      int
	Check      bool
	Dial       DialFunc
	Observer   Observer
	// Node, when set, removes the practice's Node deployment (up --app
	// node) instead of deploylab's Go servers.
	Node *NodeDeployment
}

// Down undoes Up on every target, whatever the supervisor: it stops and
// removes the services (systemd units, or PM2 apps and the pm2 startup unit
// and PM2 user up created), removes /opt/deploylab, reloads systemd and
// verifies nothing of deploylab is left. A second run changes nothing.
func Down(ctx context.Context, targets []Target, o DownOptions) (*Recap, error) {
	if len(targets) == 0 {
		return nil, fail.Errorf(fail.Usage, "give --host ADDRESS or -i INVENTORY", "no hosts")
	}
	if o.Node != nil {
		return Run(ctx, targets, nodeDownTasks(*o.Node), RunOptions{Forks: o.Forks, Check: o.Check, Dial: o.Dial, Observer: o.Observer,
			NewData: func(Target) any { return &nodeVerbHost{} }}), nil
	}
	d := o.Deployment
	if d.Root == "" {
		var err error
		if d, err = NewDeployment(DeploymentOptions{}); err != nil {
			return nil, err
		}
	}
	tasks := []Task{
		{TaskDownServices, func(ctx context.Context, h *HostRun) TaskResult {
			return downRun(ctx, h, "services", downServicesScript(d))
		}},
		{TaskDownFiles, func(ctx context.Context, h *HostRun) TaskResult { return downRun(ctx, h, "files", downFilesScript(d)) }},
		{TaskDownVerify, func(ctx context.Context, h *HostRun) TaskResult {
			if h.Check {
				if h.Changed() {
					return Skip("check mode: things would be removed")
				}
			}
			out, err := sh(ctx, h, "leftovers", LeftoversScript(d))
			if err != nil {
				return Fail(err)
			}
			if left := strings.Fields(out); len(left) > 0 {
				return Fail(fmt.Errorf("left on the host: %s", strings.Join(left, " ")))
			}
			return Ok("no unit, file, user or process of deploylab left")
		}},
	}
	return Run(ctx, targets, tasks, RunOptions{Forks: o.Forks, Check: o.Check, Dial: o.Dial, Observer: o.Observer}), nil
}

// downRun runs a removal script (DRY=1 in check mode) that prints one
// "removed <what>" line per thing it removed (or would remove).
func downRun(ctx context.Context, h *HostRun, what, script string) TaskResult {
	dry := "0"
	if h.Check {
		dry = "1"
	}
	out, err := sh(ctx, h, "down "+what, "DRY="+dry+"\n"+script)
	if err != nil {
		return Fail(err)
	}
	var changes []string
	for _, line := range strings.Split(out, "\n") {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "removed "); ok {
			changes = append(changes, c)
		}
	}
	if len(changes) == 0 {
		return Ok("no %s of deploylab", what)
	}
	if h.Check {
		return Change(changes, "would remove %s", strings.Join(changes, ", "))
	}
	return Change(changes, "removed %s", strings.Join(changes, ", "))
}

// downServicesScript stops and removes the services, under either
// supervisor (whichever is there: a switch between them may have left both).
func downServicesScript(d Deployment) string {
	var b strings.Builder
	b.WriteString("set -u\nact() { [ \"$DRY\" = 1 ] || \"$@\"; }\nreload=0\n")
	b.WriteString(pm2RemoveScript(d))
	for _, s := range d.Services {
		u := s.Unit()
		fmt.Fprintf(&b, "if [ -f %s ] || systemctl is-active --quiet %s; then echo removed %s; act systemctl disable --now %s >/dev/null 2>&1; act rm -f %s; reload=1; fi\n",
			q(d.UnitPath(s)), q(u), u, q(u), q(d.UnitPath(s)))
	}
	b.WriteString("if [ $reload = 1 ] && [ \"$DRY\" != 1 ]; then systemctl daemon-reload; systemctl reset-failed 'deploylab-*' 'pm2-*' >/dev/null 2>&1; fi\nexit 0\n")
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

// downFilesScript removes the deployment's directory and the PM2 user.
func downFilesScript(d Deployment) string {
	var b strings.Builder
	b.WriteString("set -u\nact() { [ \"$DRY\" = 1 ] || \"$@\"; }\n")
	fmt.Fprintf(&b, "if [ -e %s ]; then echo removed %s; act rm -rf -- %s; fi\n", q(d.Root), d.Root, q(d.Root))
	fmt.Fprintf(&b, "if id -u %s >/dev/null 2>&1; then echo removed user:%s; act userdel %s; fi\n", PM2User, PM2User, PM2User)
	b.WriteString("exit 0\n")
	return b.String()
}

// LeftoversScript prints each thing of deploylab still on the host, one a
// line (nothing when the host is as Down leaves it): unit files, loaded
// units, the root directory, runtime directories, the PM2 user and
// processes running the deployment's programs.
func LeftoversScript(d Deployment) string {
	var b strings.Builder
	fmt.Fprintf(&b, "for f in /etc/systemd/system/deploylab-*.service /etc/systemd/system/%s /run/deploylab-* %s; do [ -e \"$f\" ] && echo \"$f\"; done\n", PM2StartupUnit, q(d.Root))
	b.WriteString("systemctl list-units --all --plain --no-legend 'deploylab-*' 2>/dev/null | awk '{print \"unit:\" $1}'\n")
	fmt.Fprintf(&b, "systemctl list-units --all --plain --no-legend %s 2>/dev/null | awk '{print \"unit:\" $1}'\n", PM2StartupUnit)
	fmt.Fprintf(&b, "id -u %s >/dev/null 2>&1 && echo user:%s\n", PM2User, PM2User)
	b.WriteString("for p in /proc/[0-9]*; do e=$(readlink $p/exe 2>/dev/null) || continue; case \"$e\" in " + d.Root + "/*) echo \"process:${p#/proc/}:$e\";; esac; done\n")
	b.WriteString("exit 0\n")
	return b.String()
}
