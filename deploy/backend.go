package deploy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/safetext"
	"github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/remote"
)

// An App is what deploylab deploys: Deployment (deploylab's Go servers,
// under systemd or PM2, app_go.go) or NodeDeployment (the practice's
// Express app under the login user's PM2, app_node.go). The verbs of this
// file (Up, Control, Ls, Logs, Down) run any App on the one engine (Run)
// through its Backend; a new app is one new file with its App and Backend.
type App interface {
	// AppName is the app's name for --app: "go" or "node".
	AppName() string
	// Deployment describes the app's services (names, ports), for
	// SelectServices and the verbs.
	Deployment() Deployment
	// backend is how the app is installed and supervised.
	backend() runner
}

// AppOptions are the user's choices an app is made with (NewApp); each app
// reads those it has, 0 and "" meaning its defaults.
type AppOptions struct {
	// Port and ClusterPort are the Go servers' ports.
	Port, ClusterPort int
	// NodePort and NodeClusterPort are the Node app's.
	NodePort, NodeClusterPort int
	// Instances is the cluster's worker count: 0 = one per CPU, -1 = CPUs-1.
	Instances int
	// Supervisor is what runs the Go servers: systemd or pm2.
	Supervisor string
}

// apps are the registered apps: each app's file registers its name and
// how it is made.
var apps = map[string]func(AppOptions) (App, error){}

func registerApp(name string, newApp func(AppOptions) (App, error)) { apps[name] = newApp }

// AppNames are the registered apps' names, sorted.
func AppNames() []string { return slices.Sorted(maps.Keys(apps)) }

// NewApp is the app named name (--app; "" is "go") made with o.
func NewApp(name string, o AppOptions) (App, error) {
	if name == "" {
		name = "go"
	}
	newApp, ok := apps[name]
	if !ok {
		return nil, fail.Errorf(fail.Usage, "use --app "+strings.Join(AppNames(), " or --app "), "unknown app %q", name)
	}
	return newApp(o)
}

// Backend installs and supervises one app under its supervisor(s), and
// gives the verbs over it. S is what its tasks learn about one host (its
// own type: the engine makes a zero S per host).
type Backend[S any] interface {
	// Deployment is the app's description (its services).
	Deployment() Deployment
	// Up are the tasks that install the app on a host and leave it
	// running, verified; a second run changes nothing.
	Up(o UpOptions) []Task[S]
	// Control are the tasks of verb (start, stop, reload, restart) on
	// svcs; timeout bounds each wait for the outcome.
	Control(verb Verb, svcs []Service, timeout time.Duration) []Task[S]
	// Ls reads svcs' state on one host (ls's rows).
	Ls(ctx context.Context, h *HostRun, s *S, svcs []Service, sample time.Duration) ([]ProcStatus, error)
	// Logs prints svcs' last o.Lines lines of one host with emit, then
	// with o.Follow the new ones until ctx is done.
	Logs(ctx context.Context, h *HostRun, svcs []Service, o LogsOptions, emit func(host, text string)) error
	// Down are the tasks that remove what Up installed, verified.
	Down() []Task[S]
}

// runner is a Backend with its state type hidden, as App returns it.
type runner interface {
	deployment() Deployment
	up(ctx context.Context, targets []Target, o UpOptions) *Recap
	taskNames() []string
	control(ctx context.Context, targets []Target, verb Verb, svcs []Service, o ControlOptions) *Recap
	ls(ctx context.Context, targets []Target, svcs []Service, o LsOptions) ([]HostStatus, *Recap)
	logs(ctx context.Context, h *HostRun, svcs []Service, o LogsOptions, emit func(host, text string)) error
	down(ctx context.Context, targets []Target, o DownOptions) *Recap
}

// engine runs a Backend's tasks with Run.
type engine[S any] struct{ b Backend[S] }

func (e engine[S]) deployment() Deployment { return e.b.Deployment() }

func (e engine[S]) up(ctx context.Context, targets []Target, o UpOptions) *Recap {
	return Run(ctx, targets, e.b.Up(o), RunOptions{Forks: o.Forks, Check: o.Check, Dial: o.Dial, Observer: o.Observer})
}

func (e engine[S]) taskNames() []string { return TaskNamesOf(e.b.Up(UpOptions{})) }

func (e engine[S]) control(ctx context.Context, targets []Target, verb Verb, svcs []Service, o ControlOptions) *Recap {
	return Run(ctx, targets, e.b.Control(verb, svcs, o.Timeout), RunOptions{Forks: o.Forks, Dial: o.Dial, Observer: o.Observer})
}

func (e engine[S]) ls(ctx context.Context, targets []Target, svcs []Service, o LsOptions) ([]HostStatus, *Recap) {
	var mu sync.Mutex
	got := map[string][]ProcStatus{}
	task := Task[S]{"ls", func(ctx context.Context, h *HostRun, s *S) TaskResult {
		rows, err := e.b.Ls(ctx, h, s, svcs, o.Sample)
		if err != nil {
			return Fail(err)
		}
		mu.Lock()
		got[h.Name] = rows
		mu.Unlock()
		return Ok("%d services", len(rows))
	}}
	rc := Run(ctx, targets, []Task[S]{task}, RunOptions{Forks: o.Forks, Dial: o.Dial})
	res := make([]HostStatus, len(targets))
	for i, t := range targets {
		rep := rc.Hosts[i]
		res[i] = HostStatus{Host: t.Name, Address: t.Host.Address, Services: got[t.Name],
			Error: rep.Error, Hint: rep.Hint, err: rep.err}
	}
	return res, rc
}

func (e engine[S]) logs(ctx context.Context, h *HostRun, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	return e.b.Logs(ctx, h, svcs, o, emit)
}

func (e engine[S]) down(ctx context.Context, targets []Target, o DownOptions) *Recap {
	return Run(ctx, targets, e.b.Down(), RunOptions{Forks: o.Forks, Check: o.Check, Dial: o.Dial, Observer: o.Observer})
}

// backendOf is app's backend; no app is deploylab's Go servers with the
// defaults.
func backendOf(app App) runner {
	if app == nil {
		app = Deployment{}
	}
	return app.backend()
}

// UpOptions configure Up.
type UpOptions struct {
	// App is what to deploy; nil means deploylab's Go servers with the
	// defaults (NewDeployment).
	App App
	// Forks is how many hosts run at once; 0 means 10.
	Forks int
	// Check: report what would change, change nothing.
	Check bool
	// Build gets the Go payload; nil means payload.Build with its defaults.
	Build BuildFunc
	// Dial connects to a host; nil means remote.Dial.
	Dial DialFunc
	// Observer follows the run.
	Observer Observer
	// VerifyTimeout bounds the wait for the servers to answer after a
	// (re)start; 0 means 30s.
	VerifyTimeout time.Duration
}

// Up deploys o.App to every target and verifies it over HTTP from each
// host; a second run changes nothing. Its error is only for a run that
// could not start; per-host failures are in the recap (see Recap.Err).
func Up(ctx context.Context, targets []Target, o UpOptions) (*Recap, error) {
	b := backendOf(o.App)
	if err := checkTargets(targets); err != nil {
		return nil, err
	}
	if o.VerifyTimeout <= 0 {
		o.VerifyTimeout = 30 * time.Second
	}
	return b.up(ctx, targets, o), nil
}

// TaskNames are Up's task names for app, in order.
func TaskNames(app App) []string { return backendOf(app).taskNames() }

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
	// App is what to act on; nil means deploylab's Go servers.
	App App
	// Services are those to act on; nil means all of the app's.
	Services []Service
	Forks    int
	Dial     DialFunc
	Observer Observer
	// Timeout bounds the wait for a reload or a start; 0 means 30s.
	Timeout time.Duration
}

// Control applies verb to the services on every target, with the app's
// supervisor: one task per service, after one that finds the supervisor
// (the Go servers: the one up recorded) or makes sure it runs (the Node
// app: PM2's daemon). A reload is zero-downtime where the service can
// (the clustered servers); a service without one is restarted and the
// task says so.
func Control(ctx context.Context, targets []Target, verb Verb, o ControlOptions) (*Recap, error) {
	switch verb {
	case VerbReload, VerbRestart, VerbStop, VerbStart:
	default:
		return nil, fail.Errorf(fail.Usage, "use reload, restart, stop or start", "unknown verb %q", verb)
	}
	if len(targets) == 0 {
		return nil, fail.Errorf(fail.Usage, "give --host ADDRESS or -i INVENTORY", "no hosts")
	}
	b := backendOf(o.App)
	svcs := o.Services
	if svcs == nil {
		svcs = b.deployment().Services
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return b.control(ctx, targets, verb, svcs, o), nil
}

// LsOptions configure Ls.
type LsOptions struct {
	// App is what to list; nil means deploylab's Go servers.
	App      App
	Services []Service
	Forks    int
	Dial     DialFunc
	// Sample is the CPU sampling interval; 0 means 250ms.
	Sample time.Duration
}

// Ls reads the services' state on every target, in target order, and the
// recap of the run (whose Err says which hosts could not be read).
func Ls(ctx context.Context, targets []Target, o LsOptions) ([]HostStatus, *Recap) {
	b := backendOf(o.App)
	svcs := o.Services
	if svcs == nil {
		svcs = b.deployment().Services
	}
	if o.Sample <= 0 {
		o.Sample = 250 * time.Millisecond
	}
	return b.ls(ctx, targets, svcs, o)
}

// MonitOptions configure Monit.
type MonitOptions struct {
	LsOptions
	// Count is how many snapshots to take; 0 means until ctx ends.
	Count int
	// Interval is the time between snapshots, counted from each one's
	// start; at least 100ms.
	Interval time.Duration
}

// Monit reads the targets as Ls does every Interval, Count times, and gives
// each snapshot to show (i counts from 0), like pm2 monit. Cancelling ctx
// ends it, which is not an error; show's error ends it with that error.
func Monit(ctx context.Context, targets []Target, o MonitOptions, show func(i int, hosts []HostStatus) error) error {
	if o.Count < 0 {
		return fail.Errorf(fail.Usage, "give a count of 1 or more (0: until Ctrl-C)", "--count %d is negative", o.Count)
	}
	if o.Interval < 100*time.Millisecond {
		return fail.Errorf(fail.Usage, "give an interval of 100ms or more", "--interval %s is too short", o.Interval)
	}
	return fleet.Every(ctx, o.Count, o.Interval, func(ctx context.Context, i int) error {
		hosts, _ := Ls(ctx, targets, o.LsOptions)
		if ctx.Err() != nil {
			return nil
		}
		return show(i, hosts)
	})
}

// LogsOptions configure Logs.
type LogsOptions struct {
	// App is whose logs to print; nil means deploylab's Go servers.
	App      App
	Services []Service
	// Lines is how many past lines to print per host (journalctl -n); 0
	// means 50.
	Lines int
	// Follow keeps printing new lines until ctx is done.
	Follow bool
	// Poll is how often Follow asks for new lines; 0 means 1s.
	Poll time.Duration
	Dial DialFunc
	// Prefix puts "host | " before each line (for several hosts).
	Prefix bool
}

// Logs prints the services' last lines of each target to w, from their
// supervisor (the journal under systemd, PM2's log files under PM2). With
// Follow it then polls every host for lines after the last one seen, until
// ctx is cancelled, which is not an error.
func Logs(ctx context.Context, targets []Target, w io.Writer, o LogsOptions) error {
	b := backendOf(o.App)
	if len(targets) == 0 {
		return fail.Errorf(fail.Usage, "give --host ADDRESS or -i INVENTORY", "no hosts")
	}
	svcs := o.Services
	if svcs == nil {
		svcs = b.deployment().Services
	}
	if o.Lines <= 0 {
		o.Lines = 50
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	dial := o.Dial
	if dial == nil {
		dial = func(ctx context.Context, h remote.Host) (remote.Executor, error) { return remote.Dial(ctx, h) }
	}
	var mu sync.Mutex
	emit := func(host, text string) {
		mu.Lock()
		defer mu.Unlock()
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			if line == "" {
				continue
			}
			// The host's log lines: escaped (no terminal sequences).
			if o.Prefix {
				fmt.Fprintf(w, "%s | %s\n", host, safetext.Line(line))
			} else {
				fmt.Fprintln(w, safetext.Line(line))
			}
		}
	}
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, err := dial(ctx, t.Host)
			if err != nil {
				errs[i] = err
				return
			}
			defer ex.Close()
			errs[i] = b.logs(ctx, &HostRun{Name: t.Name, Exec: ex}, svcs, o, emit)
		}()
	}
	wg.Wait()
	if o.Follow && ctx.Err() != nil {
		return nil
	}
	var bad []error
	for i, err := range errs {
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", targets[i].Name, err))
		}
	}
	if len(bad) == 1 {
		return bad[0]
	}
	if len(bad) > 1 {
		return fail.New(fail.KindOf(bad[0]), fail.HintOf(bad[0]), fmt.Errorf("%d of %d hosts: %w", len(bad), len(targets), bad[0]))
	}
	return nil
}

// Down's task names shared by the apps.
const (
	TaskDownFiles  = "files"
	TaskDownVerify = "verify"
)

// DownOptions configure Down.
type DownOptions struct {
	// App is what to remove; nil means deploylab's Go servers.
	App      App
	Forks    int
	Check    bool
	Dial     DialFunc
	Observer Observer
}

// Down undoes Up on every target: it stops and removes the app's services
// and what Up added for them, and verifies nothing of it is left. A second
// run changes nothing.
func Down(ctx context.Context, targets []Target, o DownOptions) (*Recap, error) {
	if len(targets) == 0 {
		return nil, fail.Errorf(fail.Usage, "give --host ADDRESS or -i INVENTORY", "no hosts")
	}
	return backendOf(o.App).down(ctx, targets, o), nil
}

// Helpers the backends share.

// sh runs a script as root and returns its stdout; a non-zero exit is an
// error carrying the script's last stderr line.
func sh(ctx context.Context, h *HostRun, what, script string) (string, error) {
	r, err := h.Exec.RunSudo(ctx, script)
	if err != nil {
		return string(r.Stdout), fmt.Errorf("%s: %w", what, err)
	}
	return string(r.Stdout), scriptErr(what, r)
}

// userSh runs a script as the login user with node's usual PATH.
func userSh(ctx context.Context, h *HostRun, what, script string) (string, error) {
	r, err := h.Exec.Run(ctx, "sh -c "+q("export PATH=\"$PATH:/usr/local/bin:/usr/bin:/bin\"\n"+script))
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
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

// observeFacts gathers the host's facts, listeners and tools in one round
// trip (observe's script) into h.Facts, for the later tasks.
func observeFacts(ctx context.Context, h *HostRun) (*observe.Host, error) {
	f, err := observe.Gather(ctx, runFunc(h.Exec), observe.Options{Parts: observe.FactsParts})
	if err != nil {
		return nil, err
	}
	h.Facts = f
	return &h.Facts, nil
}

// runFunc is ex's Run for observe.
func runFunc(ex remote.Executor) observe.RunFunc {
	return func(ctx context.Context, cmd string) ([]byte, []byte, int, error) {
		r, err := ex.Run(ctx, cmd)
		return r.Stdout, r.Stderr, r.ExitCode, err
	}
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

// verifyPorts asks each named port for / and /api/50 from the host itself
// (retrying until timeout): the parts that answered ("name :port ok"), the
// problems of those that did not, and the client used.
func verifyPorts(ctx context.Context, h *HostRun, names []string, ports []int, timeout time.Duration) (ok, bad []string, via string, err error) {
	res, err := Probe(ctx, h.Exec, ports, timeout)
	if err != nil {
		return nil, nil, "", err
	}
	for i, name := range names {
		p := res[ports[i]]
		if p.OK() {
			ok = append(ok, fmt.Sprintf("%s :%d ok", name, ports[i]))
		} else {
			bad = append(bad, fmt.Sprintf("%s :%d: %s", name, ports[i], p.Problem()))
		}
	}
	return ok, bad, res[ports[0]].Via, nil
}

func kv(out, key string) string {
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"="); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "; ")
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
