package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/bench/loadtestfmt"
	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/payload/loadgen"
	"github.com/deploylab/deploylab/remote"
)

// Tools that can generate the load on the host.
const (
	// ToolLoadgen is deploylab's load generator, uploaded to the host.
	ToolLoadgen = "loadgen"
	// ToolLoadtest is npm's loadtest, the practice's tool, when installed
	// on the host.
	ToolLoadtest = "loadtest"
)

// DefaultRequestTimeout bounds each request of a run whose scenario sets
// no timeout, so a server that hangs cannot hang the bench.
const DefaultRequestTimeout = 60 * time.Second

// Target is one host to bench.
type Target struct {
	// Name, Address and Student are recorded with every result.
	Name, Address, Student string
	// Remote says how to connect.
	Remote remote.Host
}

// Options say how to run a plan.
type Options struct {
	Plan *Plan
	// Tool is ToolLoadgen (default) or ToolLoadtest. Warm-ups and the
	// blocking experiment always use loadgen.
	Tool string
	// Loadgen returns the loadgen binary for the host's GOARCH (amd64,
	// arm64, ...), e.g. from payload.Binaries. Required.
	Loadgen func(ctx context.Context, goarch string) ([]byte, error)
	// Sumcluster returns the sumcluster binary for the host's GOARCH: the
	// sessions scenario runs its own clusters (required only by plans with
	// a sessions scenario).
	Sumcluster func(ctx context.Context, goarch string) ([]byte, error)
	// Dial connects to a target; nil means remote.Dial(ctx, t.Remote).
	Dial func(ctx context.Context, t Target) (remote.Executor, error)
	// Store receives every finished run as soon as it finishes. Required.
	Store *Store
	// Forks is how many hosts run at once; 0 means 10.
	Forks int
	// Timeout bounds each host's whole bench (0: the run's default, see
	// fleet.WithDefaults).
	Timeout time.Duration
	// Progress is told what happens; nil means nothing is shown.
	Progress Progress
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// TargetsOf are the bench targets of a run's hosts.
func TargetsOf(ts []fleet.Target) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		out[i] = Target{Name: t.Name, Address: t.Host.Address, Student: t.Student, Remote: t.Host}
	}
	return out
}

// HostResult is what one host did.
type HostResult struct {
	Target  Target
	Records []*Record
	Err     error
}

// Outcome is the result of Run: every host's runs, in target order.
type Outcome struct {
	Batch string
	Hosts []HostResult
}

// Records returns every stored run, host by host.
func (o *Outcome) Records() []*Record {
	var out []*Record
	for _, h := range o.Hosts {
		out = append(out, h.Records...)
	}
	return out
}

// Err summarises the hosts' errors: nil when all succeeded; the error of
// the only host; or one error counting the failed hosts, of kind
// Unreachable if one was unreachable (the others were done), Interrupted
// if the run was cancelled, Failed otherwise.
func (o *Outcome) Err() error {
	var errs []HostResult
	for _, h := range o.Hosts {
		if h.Err != nil {
			errs = append(errs, h)
		}
	}
	switch {
	case len(errs) == 0:
		return nil
	case len(o.Hosts) == 1:
		return errs[0].Err
	}
	kind := fail.Failed
	for _, h := range errs {
		switch fail.KindOf(h.Err) {
		case fail.Interrupted:
			kind = fail.Interrupted
		case fail.Unreachable, fail.Auth:
			if kind != fail.Interrupted {
				kind = fail.Unreachable
			}
		}
	}
	return fail.Errorf(kind, "", "%d of %d hosts failed", len(errs), len(o.Hosts))
}

// Run runs opts.Plan on every target (up to opts.Forks at once; on each
// host the scenarios one after the other, each against every server) and
// stores each finished run. Cancelling ctx stops the runs in progress; the
// finished ones are kept. The error is Outcome.Err, or a usage error
// before anything ran.
func Run(ctx context.Context, targets []Target, opts Options) (*Outcome, error) {
	if opts.Plan == nil {
		opts.Plan = DefaultPlan()
	}
	switch opts.Tool {
	case "":
		opts.Tool = ToolLoadgen
	case ToolLoadgen, ToolLoadtest:
	default:
		return nil, fail.Errorf(fail.Usage, "use --tool loadgen (default) or --tool loadtest", "unknown tool %q", opts.Tool)
	}
	if opts.Store == nil || opts.Loadgen == nil {
		return nil, errors.New("bench: Options.Store and Options.Loadgen are required")
	}
	if len(targets) == 0 {
		return nil, fail.Errorf(fail.Usage, "give --host or -i", "no hosts to bench")
	}
	if opts.Forks <= 0 {
		opts.Forks = 10
	}
	if opts.Progress == nil {
		opts.Progress = nopProgress{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Dial == nil {
		opts.Dial = func(ctx context.Context, t Target) (remote.Executor, error) {
			return remote.Dial(ctx, t.Remote)
		}
	}
	out := &Outcome{Batch: opts.Now().UTC().Format("20060102-150405"), Hosts: make([]HostResult, len(targets))}
	for i, t := range targets {
		out.Hosts[i].Target = t
	}
	fleet.Each(ctx, len(targets), fleet.Options{Forks: opts.Forks, Timeout: opts.Timeout, Name: func(i int) string { return targets[i].Name }},
		func(ctx context.Context, i int) ([]*Record, error) {
			h := &hostRun{opts: &opts, target: targets[i], batch: out.Batch}
			err := h.run(ctx)
			return h.records, err
		}, func(r fleet.Result[[]*Record]) {
			// Each run was stored as it finished (Store.Save); this is the
			// host's end.
			t := targets[r.Index]
			err := r.Err
			if err != nil && ctx.Err() != nil && fail.KindOf(err) == fail.Failed {
				err = fail.New(fail.Interrupted, "", err)
			}
			out.Hosts[r.Index].Records, out.Hosts[r.Index].Err = r.Value, err
			opts.Progress.HostDone(t.Name, err)
		})
	opts.Progress.Wait()
	return out, out.Err()
}

// hostRun is the bench of one host.
type hostRun struct {
	opts                          *Options
	target                        Target
	batch                         string
	exec                          remote.Executor
	info                          HostInfo
	facts                         observe.Host
	loadgen                       string // path on the host
	sumcluster                    string // path on the host, when a sessions scenario needs it
	loadtestPath, loadtestVersion string
	probes                        []serverProbe
	records                       []*Record
}

// errorf makes a host error: "alu01: ...".
// ErrNotDeployed is in the error of a host where nothing listens on a
// planned server's port (errors.Is): the servers are not deployed there.
var ErrNotDeployed = errors.New("a server to bench is not deployed")

// notDeployedErr says which servers do not listen; it is ErrNotDeployed.
type notDeployedErr string

func (e notDeployedErr) Error() string        { return string(e) }
func (e notDeployedErr) Is(target error) bool { return target == ErrNotDeployed }

func (h *hostRun) errorf(kind fail.Kind, hint, format string, args ...any) error {
	return fail.Errorf(kind, hint, "%s: %s", h.target.Name, fmt.Sprintf(format, args...))
}

func (h *hostRun) wrap(err error) error {
	if err == nil {
		return nil
	}
	if strings.HasPrefix(err.Error(), h.target.Name+":") {
		return err
	}
	return fmt.Errorf("%s: %w", h.target.Name, err)
}

func (h *hostRun) run(ctx context.Context) error {
	exec, err := h.opts.Dial(ctx, h.target)
	if err != nil {
		return h.wrap(err)
	}
	h.exec = exec
	defer exec.Close()
	if err := h.setup(ctx); err != nil {
		return h.wrap(err)
	}
	steps := planSteps(h.opts.Plan, h.probes)
	h.opts.Progress.HostStart(h.target.Name, len(steps))
	for _, st := range steps {
		if err := ctx.Err(); err != nil {
			return h.wrap(fail.New(fail.Interrupted, "", err))
		}
		h.opts.Progress.StepStart(h.target.Name, st.label)
		var rec *Record
		var err error
		switch {
		case st.warmup:
			err = h.warmup(ctx, st.scenario, st.probe)
		case st.scenario.Kind == KindBlocking:
			rec, err = h.blocking(ctx, st.scenario, st.probe)
		case st.scenario.Kind == KindSessions:
			rec, err = h.sessions(ctx, st.scenario, st.mode)
		default:
			rec, err = h.load(ctx, st.scenario, st.probe)
		}
		if err == nil && rec != nil {
			err = h.opts.Store.Save(rec)
			if err == nil {
				h.records = append(h.records, rec)
			}
		}
		h.opts.Progress.StepDone(h.target.Name, st.label, rec, err)
		if err != nil {
			return h.wrap(err)
		}
	}
	return nil
}

// step is one run a host makes: a warm-up or a scenario against a server.
type step struct {
	label    string
	scenario Scenario
	probe    *serverProbe // nil: a full URL, or a sessions scenario
	warmup   bool
	mode     string // a sessions scenario's mode
}

// planSteps lists the runs plan makes on a host with these servers: a
// warm-up per server, then each scenario against every server (a full-URL
// scenario once).
func planSteps(plan *Plan, probes []serverProbe) []step {
	var steps []step
	needServers := false
	for _, s := range plan.Scenarios {
		if s.Kind != KindSessions && strings.HasPrefix(s.Route, "/") {
			needServers = true
		}
	}
	if needServers && plan.Warmup.Requests > 0 {
		route := plan.Warmup.Route
		for _, s := range plan.Scenarios {
			if route == "" && s.Kind == KindLoad && strings.HasPrefix(s.Route, "/") {
				route = s.Route
			}
		}
		if route == "" {
			route = "/"
		}
		for i := range probes {
			w := Scenario{Name: "warmup", Kind: KindLoad, Route: route, Requests: plan.Warmup.Requests, Concurrency: plan.Warmup.Concurrency}
			steps = append(steps, step{label: probes[i].label() + " warm-up", scenario: w, probe: &probes[i], warmup: true})
		}
	}
	for _, s := range plan.Scenarios {
		if s.Kind == KindSessions {
			for _, m := range s.Modes {
				steps = append(steps, step{label: s.Name + " " + m, scenario: s, mode: m})
			}
			continue
		}
		if !strings.HasPrefix(s.Route, "/") {
			steps = append(steps, step{label: s.Name, scenario: s})
			continue
		}
		for i := range probes {
			steps = append(steps, step{label: s.Name + " " + probes[i].label(), scenario: s, probe: &probes[i]})
		}
	}
	return steps
}

// label names the server in progress lines: its mode, after its stack
// when the plan gives one (bench --compare: "node single").
func (p *serverProbe) label() string {
	if p.Stack != "" {
		return p.Stack + " " + p.Name
	}
	return p.Name
}

// PlanRuns is the number of runs (warm-ups included) plan makes on a host
// where all its servers answer.
func PlanRuns(plan *Plan) int {
	probes := make([]serverProbe, len(plan.Servers))
	for i, s := range plan.Servers {
		probes[i].Server = s
	}
	return len(planSteps(plan, probes))
}

// setup gathers facts, installs loadgen and checks the servers.
func (h *hostRun) setup(ctx context.Context) error {
	f, probes, err := observeHost(ctx, h.exec, h.opts.Plan.Servers)
	if err != nil {
		return err
	}
	h.facts = f
	h.info = HostInfo{
		Name: h.target.Name, Address: h.target.Address, Student: h.target.Student,
		CPUs: f.CPUs, Kernel: f.Kernel, Arch: f.Arch, OS: f.OSName, MemTotal: f.MemTotal,
	}
	if f.Arch == "" {
		return h.errorf(fail.Failed, "loadgen runs on amd64, arm64, 386, arm, riscv64, ppc64le and s390x hosts", "machine %q is not supported", f.Machine)
	}
	bin, err := h.opts.Loadgen(ctx, f.Arch)
	if err != nil {
		return fmt.Errorf("loadgen for %s: %w", f.Arch, err)
	}
	home := f.Home
	if home == "" || home == "/" {
		home = "/tmp"
	}
	h.loadgen = path.Join(home, ".cache/deploylab/bin/loadgen")
	if _, err := h.exec.WriteFile(ctx, h.loadgen, bin, 0o755); err != nil {
		return fmt.Errorf("upload loadgen: %w", err)
	}
	for _, s := range h.opts.Plan.Scenarios {
		if s.Kind != KindSessions || h.sumcluster != "" {
			continue
		}
		if h.opts.Sumcluster == nil {
			return errors.New("a sessions scenario needs Options.Sumcluster")
		}
		bin, err := h.opts.Sumcluster(ctx, f.Arch)
		if err != nil {
			return fmt.Errorf("sumcluster for %s: %w", f.Arch, err)
		}
		h.sumcluster = sumclusterPath(home)
		if _, err := h.exec.WriteFile(ctx, h.sumcluster, bin, 0o755); err != nil {
			return fmt.Errorf("upload sumcluster: %w", err)
		}
	}
	if h.opts.Tool == ToolLoadtest {
		t, ok := f.UserTool("loadtest")
		if !ok {
			return h.errorf(fail.Failed, "install it on the host (sudo npm install -g loadtest) or use --tool loadgen", "loadtest is not installed (not on the PATH)")
		}
		h.loadtestPath, h.loadtestVersion = t.Path, t.Version
	}
	if len(h.opts.Plan.Servers) == 0 {
		return nil
	}
	h.probes = probes
	if f.Sudo == "nopasswd" {
		// The cluster's runtime directory may be closed to other users
		// (RuntimeDirectoryMode=0750): read the statistics as root then.
		for i := range h.probes {
			if c := h.probes[i].StatsCmd; c != "" {
				h.probes[i].StatsCmd = "{ " + c + " 2>/dev/null || sudo -n " + c + "; }"
			}
		}
	}
	needServers := false
	for _, s := range h.opts.Plan.Scenarios {
		if s.Kind != KindSessions && strings.HasPrefix(s.Route, "/") {
			needServers = true
		}
	}
	if !needServers {
		return nil
	}
	var missing []string
	for _, p := range h.probes {
		switch {
		case p.ListenKnown && !p.Listening:
			what := fmt.Sprintf("nothing listens on port %d (%s server)", p.Port, p.Name)
			if p.UnitLoaded && !p.UnitActive {
				what += ", " + p.Unit + " is not running"
			}
			missing = append(missing, what)
		}
	}
	if len(missing) > 0 {
		hint := fmt.Sprintf("deploy the servers first: deploylab up --host %s (or -i inventory --limit %s)", h.target.Address, h.target.Name)
		if len(missing) == len(h.probes) {
			return fail.Errorf(fail.Failed, hint, "%s: %w", h.target.Name, notDeployedErr("no deployment: "+strings.Join(missing, "; ")))
		}
		return fail.Errorf(fail.Failed, hint+", or bench the other one with --server", "%s: %w", h.target.Name, notDeployedErr(strings.Join(missing, "; ")))
	}
	return nil
}

// serverURL is the URL of route on probe's server, or route itself.
func serverURL(route string, p *serverProbe) string {
	if p == nil {
		return route
	}
	return "http://127.0.0.1:" + strconv.Itoa(p.Port) + route
}

// loadgenCmd is loadgen's command line for a load scenario.
func (h *hostRun) loadgenCmd(s Scenario, u string) string {
	timeout := time.Duration(s.Timeout)
	if timeout == 0 {
		timeout = DefaultRequestTimeout
	}
	cmd := fmt.Sprintf("%s -q --json -n %d -c %d", remote.ShellQuote(h.loadgen), s.Requests, s.Concurrency)
	if s.KeepAlive {
		cmd += " -k"
	}
	cmd += fmt.Sprintf(" --timeout %d %s", timeout.Milliseconds(), remote.ShellQuote(u))
	return cmd
}

// loadtestCmd is npm loadtest's command line, as the practice runs it.
func (h *hostRun) loadtestCmd(s Scenario, u string) string {
	cmd := fmt.Sprintf("%s -n %d -c %d", remote.ShellQuote(h.loadtestPath), s.Requests, s.Concurrency)
	if s.KeepAlive {
		cmd += " -k"
	}
	if s.Timeout > 0 {
		cmd += fmt.Sprintf(" --timeout %d", time.Duration(s.Timeout).Milliseconds())
	}
	return cmd + " " + remote.ShellQuote(u)
}

// warmup runs a discarded load against the server and checks it answers.
func (h *hostRun) warmup(ctx context.Context, s Scenario, p *serverProbe) error {
	u := serverURL(s.Route, p)
	res, err := h.exec.Run(ctx, "sh -c "+remote.ShellQuote(h.loadgenCmd(s, u)))
	if err != nil {
		return fmt.Errorf("warm-up %s: %w", u, err)
	}
	r, err := decodeLoadgen(res.Stdout, res.Stderr, res.ExitCode)
	if err != nil {
		return fmt.Errorf("warm-up %s: %w", u, err)
	}
	return h.checkAnswered(r, u, p)
}

// checkAnswered refuses a result in which no request got an answer.
func (h *hostRun) checkAnswered(r *loadgen.Result, u string, p *serverProbe) error {
	if r.Completed > 0 && r.OK+r.Errors.Status > 0 {
		return nil
	}
	why := "no request got an answer"
	for _, k := range []string{"connect", "timeout", "read", "write", "protocol", "other"} {
		if s := r.ErrorSamples[k]; s != "" {
			why += " (" + s + ")"
			break
		}
	}
	if p == nil {
		return h.errorf(fail.Failed, "check the URL: it is requested from the host itself", "%s is unreachable from the host: %s", u, why)
	}
	return h.errorf(fail.Failed, fmt.Sprintf("is the %s server running? deploylab up --host %s deploys it", p.Name, h.target.Address), "%s is unreachable from the host: %s", u, why)
}

// decodeLoadgen reads loadgen --json's output.
func decodeLoadgen(stdout, stderr []byte, code int) (*loadgen.Result, error) {
	var r loadgen.Result
	if err := json.Unmarshal(stdout, &r); err != nil || r.Schema != loadgen.Schema {
		msg := firstLine(stderr)
		if msg == "" {
			msg = firstLine(stdout)
		}
		return nil, fmt.Errorf("loadgen failed (exit status %d): %s", code, msg)
	}
	return &r, nil
}

// newRecord starts a record for a run of s against p.
func (h *hostRun) newRecord(s Scenario, p *serverProbe, u string) *Record {
	rec := &Record{
		Schema:   Schema,
		Batch:    h.batch,
		At:       h.opts.Now().UTC(),
		Host:     h.info,
		Scenario: s,
		Server:   ServerInfo{Mode: ModeCustom, URL: u},
	}
	if p != nil {
		rec.Server.Mode, rec.Server.Port, rec.Server.Unit = p.Name, p.Port, p.Unit
		rec.Server.Stack = stackOrGo(p.Stack)
	} else if pu, err := url.Parse(u); err == nil {
		port, _ := strconv.Atoi(pu.Port())
		rec.Server.Port = port
		for _, sv := range h.opts.Plan.Servers {
			host := pu.Hostname()
			if sv.Port == port && (host == "localhost" || host == "127.0.0.1" || host == "::1") {
				rec.Server.Mode, rec.Server.Stack = sv.Name, stackOrGo(sv.Stack)
			}
		}
	}
	return rec
}

// load measures one load scenario against one server.
func (h *hostRun) load(ctx context.Context, s Scenario, p *serverProbe) (*Record, error) {
	u := serverURL(s.Route, p)
	rec := h.newRecord(s, p, u)
	spec := runSpec{Command: h.loadgenCmd(s, u)}
	if h.opts.Tool == ToolLoadtest {
		spec.Command = h.loadtestCmd(s, u)
	}
	var roots []int
	source := ""
	if p != nil {
		spec.CPU, source = p.cpuSource()
		roots = p.rootPIDs()
		spec.Stats = p.StatsCmd
	}
	secs, code, stderr, err := h.runSections(ctx, s.Name, runScript(spec))
	if err != nil {
		return nil, err
	}
	var r *loadgen.Result
	if h.opts.Tool == ToolLoadtest {
		r, err = loadtestfmt.Parse(secs["run"], h.loadtestVersion)
		if err != nil {
			return nil, fmt.Errorf("loadtest (exit status %d): %w: %s", code, err, firstLine(stderr))
		}
		rec.Tool = ToolInfo{Name: ToolLoadtest, Version: h.loadtestVersion, Cores: r.Cores, Path: h.loadtestPath}
		if r.Cores == 0 && majorVersion(h.loadtestVersion) >= 7 {
			// loadtest 7+ runs on half the CPUs unless --cores says otherwise.
			rec.Tool.Cores = max(1, h.info.CPUs/2)
			rec.Notes = append(rec.Notes, fmt.Sprintf("loadtest did not print its cores; %d assumed (its default: half the CPUs)", rec.Tool.Cores))
		}
	} else {
		r, err = decodeLoadgen(secs["run"], stderr, code)
		if err != nil {
			return nil, err
		}
		rec.Tool = ToolInfo{Name: r.Tool.Name, Version: r.Tool.Version, Cores: r.Cores, Path: h.loadgen}
	}
	rec.Result = r
	if err := h.checkAnswered(r, u, p); err != nil {
		return nil, err
	}
	before, after := parseSample(secs, "before", roots), parseSample(secs, "after", roots)
	cpu := &CPU{WallS: round3(after.uptime - before.uptime), MachineS: round3(after.machBusy - before.machBusy), CPUs: h.info.CPUs}
	t0, ok0 := parseTimes(secs["times before"])
	t1, ok1 := parseTimes(secs["times after"])
	if ok0 && ok1 {
		cpu.ClientS = round3(t1 - t0)
	}
	if before.server >= 0 && after.server >= 0 {
		v := round3(after.server - before.server)
		cpu.ServerS, cpu.ServerSource = &v, source
	} else if p != nil {
		rec.Notes = append(rec.Notes, "server CPU not measured: its processes could not be found (deploy with deploylab up, or give sudo rights to see who listens)")
	}
	if cpu.WallS > 0 {
		rec.CPU = cpu
	}
	if p != nil && p.StatsCmd != "" {
		if after.stats == nil {
			rec.Notes = append(rec.Notes, "cluster statistics unavailable: "+after.statsError)
		} else {
			rec.Workers = workerCounts(before.stats, after.stats)
			rec.Server.Workers = len(after.stats.Workers)
		}
	}
	return rec, nil
}

// blocking runs the browser-tab experiment against one server.
func (h *hostRun) blocking(ctx context.Context, s Scenario, p *serverProbe) (*Record, error) {
	heavyURL, probeURL := serverURL(s.Route, p), serverURL(s.Probe, p)
	rec := h.newRecord(s, p, heavyURL)
	secs, code, stderr, err := h.runSections(ctx, s.Name, blockingScript(h.loadgen, heavyURL, probeURL, s.Probes, time.Duration(s.Delay)))
	if err != nil {
		return nil, err
	}
	probes, err := decodeLoadgen(secs["run"], stderr, code)
	if err != nil {
		return nil, fmt.Errorf("blocking probes: %w", err)
	}
	if err := h.checkAnswered(probes, probeURL, p); err != nil {
		return nil, err
	}
	hcode, _ := strconv.Atoi(strings.TrimSpace(string(secs["heavyexit"])))
	heavy, err := decodeLoadgen(secs["heavy"], nil, hcode)
	if err != nil {
		return nil, fmt.Errorf("blocking heavy request: %w", err)
	}
	rec.Tool = ToolInfo{Name: probes.Tool.Name, Version: probes.Tool.Version, Cores: probes.Cores, Path: h.loadgen}
	rec.Result, rec.Heavy = probes, heavy
	return rec, nil
}

func majorVersion(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(strings.TrimPrefix(v, "v"), ".", 2)[0])
	return n
}

func round3(v float64) float64 {
	return float64(int64(v*1000+copysignHalf(v))) / 1000
}

func copysignHalf(v float64) float64 {
	if v < 0 {
		return -0.5
	}
	return 0.5
}

// stackOrGo is a plan server's stack, go when the plan does not say.
func stackOrGo(s string) string {
	if s == "" {
		return LangGo
	}
	return s
}
