package deploy

import (
	"context"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// This file holds PM2's verbs for what Up deployed: reload, restart, stop
// and start of the services, on many hosts at once through the engine.

// Verb is a control verb.
type Verb string

// The control verbs.
const (
	VerbReload  Verb = "reload"
	VerbRestart Verb = "restart"
	VerbStop    Verb = "stop"
	VerbStart   Verb = "start"
)

// ServiceAliases map the names a user may give to service names.
var ServiceAliases = map[string]string{
	"single":  "sumserver",
	"cluster": "sumcluster",
}

// SelectServices returns the services named by arg: "" or "all" for every
// service, "single" or "cluster" (or a service's own name) for one.
func (d Deployment) SelectServices(arg string) ([]Service, error) {
	if arg == "" || arg == "all" {
		return d.Services, nil
	}
	name := arg
	if n, ok := ServiceAliases[arg]; ok {
		name = n
	}
	if s, ok := d.Service(name); ok {
		return []Service{s}, nil
	}
	if s, ok := d.Service("node-" + arg); ok {
		return []Service{s}, nil
	}
	return nil, fail.Errorf(fail.Usage, "name single, cluster or all (or leave it out for all)", "unknown service %q", arg)
}

// ControlOptions configure Control.
type ControlOptions struct {
	Deployment Deployment
	// Services are those to act on; nil means all of the deployment's.
	Services []Service
	Forks    int
	Dial     DialFunc
	Observer Observer
	// Timeout bounds the wait for a reload or a start; 0 means 30s.
	Timeout time.Duration
	// Node, when set, controls the practice's Node apps (up --app node)
	// with the login user's PM2; Services are then the Node deployment's.
	Node *NodeDeployment
}

// Control applies verb to the services on every target: one task per
// service, named after it. The clustered server reloads with zero downtime
// (SIGHUP, waiting until its master says the new workers are ready); a
// service without a reload is restarted and the task says so. Under PM2
// (the host's recorded supervisor) the same verbs go to pm2. With o.Node
// they go to the Node apps of up --app node, as PM2's own verbs.
func Control(ctx context.Context, targets []Target, verb Verb, o ControlOptions) (*Recap, error) {
	switch verb {
	case VerbReload, VerbRestart, VerbStop, VerbStart:
	default:
		return nil, fail.Errorf(fail.Usage, "use reload, restart, stop or start", "unknown verb %q", verb)
	}
	if len(targets) == 0 {
		return nil, fail.Errorf(fail.Usage, "give --host ADDRESS or -i INVENTORY", "no hosts")
	}
	d := o.Deployment
	if o.Node != nil {
		d = o.Node.Deployment()
	}
	if d.Root == "" {
		var err error
		if d, err = NewDeployment(DeploymentOptions{}); err != nil {
			return nil, err
		}
	}
	svcs := o.Services
	if svcs == nil {
		svcs = d.Services
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Node != nil {
		n := *o.Node
		tasks := []Task{{"pm2", nodeDaemon(n, verb)}}
		for _, s := range svcs {
			// Tasks are named single and cluster (the line says which app).
			tasks = append(tasks, Task{strings.TrimPrefix(s.Name, "node-"), func(ctx context.Context, h *HostRun) TaskResult {
				return nodeControl(ctx, h, n, s, verb, o.Timeout)
			}})
		}
		return Run(ctx, targets, tasks, RunOptions{Forks: o.Forks, Dial: o.Dial, Observer: o.Observer,
			NewData: func(Target) any { return &nodeVerbHost{} }}), nil
	}
	u := &up{d: d, verifyTimeout: o.Timeout}
	tasks := []Task{{"supervisor", detectSupervisor(d)}}
	for _, s := range svcs {
		tasks = append(tasks, Task{s.Name, func(ctx context.Context, h *HostRun) TaskResult {
			if h.Data.(*verbHost).supervisor == SupervisorPM2 {
				return pm2Control(ctx, h, d, s, verb)
			}
			return u.control(ctx, h, s, verb)
		}})
	}
	return Run(ctx, targets, tasks, RunOptions{Forks: o.Forks, Dial: o.Dial, Observer: o.Observer,
		NewData: func(Target) any { return &verbHost{} }}), nil
}

// verbHost is what the verbs learn about a host.
type verbHost struct {
	supervisor string
}

// supervisorScript prints the supervisor recorded by up ("systemd" when
// none is: deployments made before PM2 support).
func supervisorScript(d Deployment) string {
	return fmt.Sprintf("cat %s 2>/dev/null || echo %s", q(d.SupervisorPath()), SupervisorSystemd)
}

// SupervisorPath is the state file naming the supervisor up used.
func (d Deployment) SupervisorPath() string { return path.Join(d.Root, "state", "supervisor") }

func detectSupervisor(d Deployment) func(ctx context.Context, h *HostRun) TaskResult {
	return func(ctx context.Context, h *HostRun) TaskResult {
		out, err := sh(ctx, h, "read supervisor", supervisorScript(d))
		if err != nil {
			return Fail(err)
		}
		sup := strings.TrimSpace(out)
		if sup != SupervisorSystemd && sup != SupervisorPM2 {
			sup = SupervisorSystemd
		}
		h.Data.(*verbHost).supervisor = sup
		return Ok("%s", sup)
	}
}

func (u *up) control(ctx context.Context, h *HostRun, s Service, verb Verb) TaskResult {
	out, err := sh(ctx, h, "systemctl show", showScript(u.d, s))
	if err != nil {
		return Fail(err)
	}
	st := parseShow(out)
	if st.unitFileState == "" || st.unitFileState == "not-found" {
		if _, err := sh(ctx, h, "find unit", "test -f "+q(u.d.UnitPath(s))); err != nil {
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
		if before, err = u.stats(ctx, h, s); err != nil {
			action, note = "restart", " (no statistics from the master: restarted)"
		}
	}
	if _, err := sh(ctx, h, action+" "+s.Unit(), "systemctl "+action+" "+q(s.Unit())); err != nil {
		return Fail(withJournal(ctx, h, s, err))
	}
	if action == "reload" {
		if err := u.waitReload(ctx, h, s, before); err != nil {
			return Fail(withJournal(ctx, h, s, err))
		}
	}
	out, err = sh(ctx, h, "systemctl show", showScript(u.d, s))
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
