package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/payload"
	"github.com/deploylab/deploylab/remote"
)

// This file is the Go app: deploylab's own servers (the payload's single
// and clustered sum servers), built here per architecture, uploaded as an
// immutable release and run by one of the Go supervisors (goSupervisor:
// systemd in sup_systemd.go, PM2 in sup_pm2.go).

// Deployment says what deploylab installs on a host and where: it is the
// Go app (an App). Up installs it; the other verbs (down, restart, ls, ...)
// find things through it.
//
// On the host:
//
//	/opt/deploylab/releases/<hash>/   one directory per payload, immutable
//	/opt/deploylab/current            -> releases/<hash>, switched by rename
//	/opt/deploylab/bin/<program>      hard links to current's programs
//	/opt/deploylab/state/<service>    what the running service was started with
//	/etc/systemd/system/deploylab-<service>.service
//
// The units run /opt/deploylab/bin/<program>, not current/<program>: a
// process's /proc/self/exe names the resolved file, so the cluster master,
// which re-executes its own path for new workers on a reload, must be started
// from a path that is not a symlink and that a new binary replaces by
// rename. Then SIGHUP brings up workers running the new binary.
type Deployment struct {
	// Root is where releases live: /opt/deploylab.
	Root string
	// Supervisor is what up runs the services with: "systemd" or "pm2" (a
	// registered goSupervisor). The verbs use the one up recorded on the
	// host.
	Supervisor string
	// Services are the servers, in start order.
	Services []Service
	// KeepReleases is how many releases to keep (the current one included).
	KeepReleases int
}

// Service is one supervised server.
type Service struct {
	// Name names the unit (deploylab-<Name>.service) and the state file.
	Name string
	// Program is the payload program it runs.
	Program     string
	Description string
	// Port is the TCP port it serves HTTP on (all addresses).
	Port int
	// Args are extra arguments after --port.
	Args []string
	// Notify: the program reports READY=1 over sd_notify (Type=notify).
	Notify bool
	// Reload: SIGHUP makes the program replace its workers with the binary
	// now at its path, without dropping a request; a new binary is then
	// reloaded rather than restarted.
	Reload bool
	// RuntimeDirectory is the name of the service's /run directory ("" for
	// none); the server keeps its statistics socket (stats.sock) there.
	RuntimeDirectory string
}

// Default root and ports.
const (
	DefaultRoot        = "/opt/deploylab"
	DefaultPort        = 3000
	DefaultClusterPort = 3001
)

// DeploymentOptions are the user's choices for NewDeployment.
type DeploymentOptions struct {
	// Port and ClusterPort are the servers' ports; 0 means the defaults.
	Port, ClusterPort int
	// Instances is the cluster's worker count: 0 = one per CPU, -1 = CPUs-1.
	Instances int
	// Supervisor: "" or "systemd".
	Supervisor string
}

// NewDeployment describes the practice's deployment: the single server on
// Port and the clustered server on ClusterPort.
func NewDeployment(o DeploymentOptions) (Deployment, error) {
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.ClusterPort == 0 {
		o.ClusterPort = DefaultClusterPort
	}
	if o.Supervisor == "" {
		o.Supervisor = SupervisorSystemd
	}
	for _, p := range []struct {
		flag string
		v    int
	}{{"--port", o.Port}, {"--cluster-port", o.ClusterPort}} {
		if p.v < 1 || p.v > 65535 {
			return Deployment{}, fail.Errorf(fail.Usage, "use a port from 1 to 65535 (1024 and up: the servers run unprivileged)", "%s %d is out of range", p.flag, p.v)
		}
		if p.v < 1024 {
			return Deployment{}, fail.Errorf(fail.Usage, "use a port from 1024 to 65535", "%s %d is a privileged port: the servers run unprivileged", p.flag, p.v)
		}
	}
	if o.Port == o.ClusterPort {
		return Deployment{}, fail.Errorf(fail.Usage, "give the single and the clustered server different ports", "--port and --cluster-port are both %d", o.Port)
	}
	if o.Instances < -1 || o.Instances > 256 {
		return Deployment{}, fail.Errorf(fail.Usage, "use 0 (one per CPU), -1 (CPUs-1) or a count up to 256", "--instances %d is out of range", o.Instances)
	}
	if _, ok := goSupervisors[o.Supervisor]; !ok {
		// The default first, then the others.
		names := append([]string{SupervisorSystemd}, slices.DeleteFunc(slices.Sorted(maps.Keys(goSupervisors)), func(n string) bool { return n == SupervisorSystemd })...)
		return Deployment{}, fail.Errorf(fail.Usage, "use --supervisor "+strings.Join(names, " or --supervisor "), "supervisor %q is not supported", o.Supervisor)
	}
	return Deployment{
		Root:         DefaultRoot,
		Supervisor:   o.Supervisor,
		KeepReleases: 3,
		Services: []Service{
			{
				Name:        payload.Sumserver,
				Program:     payload.Sumserver,
				Description: "deploylab single sum server",
				Port:        o.Port,
				// Its statistics socket (requests served, for ls).
				RuntimeDirectory: "deploylab-sumserver",
			},
			{
				Name:             payload.Sumcluster,
				Program:          payload.Sumcluster,
				Description:      "deploylab clustered sum server",
				Port:             o.ClusterPort,
				Args:             []string{"--instances", strconv.Itoa(o.Instances)},
				Notify:           true,
				Reload:           true,
				RuntimeDirectory: "deploylab-sumcluster",
			},
		},
	}, nil
}

// Paths on the host.

// ReleaseDir is the directory of the release hash.
func (d Deployment) ReleaseDir(hash string) string { return path.Join(d.Root, "releases", hash) }

// Current is the symlink to the current release.
func (d Deployment) Current() string { return path.Join(d.Root, "current") }

// BinPath is the stable path a service's program runs from.
func (d Deployment) BinPath(program string) string { return path.Join(d.Root, "bin", program) }

// StatePath records what a service was last started or reloaded with.
func (d Deployment) StatePath(s Service) string { return path.Join(d.Root, "state", s.Name) }

// SupervisorPath is the state file naming the supervisor up used.
func (d Deployment) SupervisorPath() string { return path.Join(d.Root, "state", "supervisor") }

// Service returns the service named name.
func (d Deployment) Service(name string) (Service, bool) {
	for _, s := range d.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

func init() {
	registerApp("go", func(o AppOptions) (App, error) {
		return NewDeployment(DeploymentOptions{Port: o.Port, ClusterPort: o.ClusterPort, Instances: o.Instances, Supervisor: o.Supervisor})
	})
}

// AppName is "go".
func (d Deployment) AppName() string { return "go" }

// Deployment is d itself (an App describes itself as a Deployment).
func (d Deployment) Deployment() Deployment { return d }

func (d Deployment) backend() runner {
	if d.Root == "" {
		d, _ = NewDeployment(DeploymentOptions{})
	}
	return engine[goHost]{goBackend{d}}
}

// goSupervisor is what differs between the supervisors of the Go servers:
// systemd (sup_systemd.go) and PM2 (sup_pm2.go). Each registers itself in
// goSupervisors; a new supervisor is one new file.
type goSupervisor interface {
	// up are Up's tasks that make the services run the release just
	// switched to: those before verify and those after it.
	up(d Deployment, o UpOptions) (before, after []Task[goHost])
	// control applies verb to s (on a host where this supervisor runs
	// the servers); timeout bounds the wait for a reload.
	control(ctx context.Context, h *HostRun, d Deployment, s Service, verb Verb, timeout time.Duration) TaskResult
	// lsHead is ls's shell run once per host; it may print "@@head" and
	// one line, which lsRow gets.
	lsHead(d Deployment) string
	// lsService is ls's shell for s: it prints the supervisor's view of s
	// as KEY=VALUE lines and sets mp (main pid) and sock (stats socket).
	lsService(d Deployment, s Service) string
	// lsRow fills ps's status, pid, restarts and uptime from what
	// lsService printed (read as a systemd unit's show), the head line and
	// the host's uptime.
	lsRow(ps *ProcStatus, s Service, show observe.Unit, head string, uptime float64)
	// logs prints svcs' logs (see Backend.Logs).
	logs(ctx context.Context, h *HostRun, d Deployment, svcs []Service, o LogsOptions, emit func(host, text string)) error
	// down is down's shell removing the services (with act, DRY and
	// reload: see downServicesScript) and, after the deployment's
	// directory, the supervisor's own files; each prints "removed <what>".
	down(d Deployment) (services, files string)
	// leftovers is shell printing each thing of the supervisor left.
	leftovers(d Deployment) string
	// leave is shell that, when up moves the servers to another
	// supervisor, removes what this one left (it prints "removed <what>";
	// DRY=1 only reports); "" when the other's up task does it.
	leave(d Deployment) string
}

// goSupervisors are the registered supervisors of the Go servers, by name.
var goSupervisors = map[string]goSupervisor{}

// goSupervisorNames are their names in registration order (file order).
var goSupervisorNames []string

func registerGoSupervisor(name string, s goSupervisor) {
	goSupervisors[name] = s
	goSupervisorNames = append(goSupervisorNames, name)
}

// goHost is what the Go app's tasks learn about one host.
type goHost struct {
	// set is the payload for the host's architecture.
	set *payload.Set
	// sup is the supervisor: the one up uses, or (for the verbs) the one
	// up recorded on the host.
	sup goSupervisor
}

// goBackend installs and supervises the Go servers.
type goBackend struct{ d Deployment }

func (g goBackend) Deployment() Deployment { return g.d }

// Up's task names, in order (the services' tasks are named after them).
const (
	TaskFacts    = "facts"
	TaskPayload  = "payload"
	TaskUpload   = "upload"
	TaskRelease  = "release"
	TaskUnits    = "units"
	TaskVerify   = "verify"
	TaskSecurity = "security"
)

// BuildFunc returns the payload for an architecture.
type BuildFunc func(ctx context.Context, goarch string) (*payload.Set, error)

// Up: facts, payload (built here for the host's architecture), upload,
// release switch, the supervisor's tasks (systemd: units, one task per
// service, and after verify the security score; PM2: one pm2 task),
// verify over HTTP from the host.
func (g goBackend) Up(o UpOptions) []Task[goHost] {
	build := o.Build
	if build == nil {
		build = func(ctx context.Context, goarch string) (*payload.Set, error) {
			return payload.Build(ctx, payload.Options{GOARCH: goarch})
		}
	}
	cache := newBuildCache(build)
	sup := goSupervisors[g.d.Supervisor]
	before, after := sup.up(g.d, o)
	tasks := []Task[goHost]{
		{TaskFacts, func(ctx context.Context, h *HostRun, st *goHost) TaskResult {
			st.sup = sup
			return g.facts(ctx, h)
		}},
		{TaskPayload, func(ctx context.Context, h *HostRun, st *goHost) TaskResult {
			return g.payload(ctx, h, st, cache)
		}},
		{TaskUpload, g.upload},
		{TaskRelease, g.release},
	}
	tasks = append(tasks, before...)
	tasks = append(tasks, Task[goHost]{TaskVerify, func(ctx context.Context, h *HostRun, _ *goHost) TaskResult {
		return g.verify(ctx, h, o.VerifyTimeout)
	}})
	return append(tasks, after...)
}

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

// facts gathers the host's facts and checks it can take the deployment.
func (g goBackend) facts(ctx context.Context, h *HostRun) TaskResult {
	f, err := observeFacts(ctx, h)
	if err != nil {
		return Fail(err)
	}
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
	for _, s := range g.d.Services {
		for _, p := range f.Holders(s.Port) {
			if p.Name != s.Program {
				return Fail(fail.Errorf(fail.Failed,
					"stop it (e.g. pm2 delete all, or systemctl stop its unit) or deploy to another port with --port/--cluster-port",
					"port %d (for %s) is in use by %s (pid %d)", s.Port, s.Name, p.Name, p.PID))
			}
		}
	}
	return Ok("%s", desc)
}

// payload gets the payload for the host's architecture (built once per
// architecture and run, on this machine).
func (g goBackend) payload(ctx context.Context, h *HostRun, st *goHost, cache *buildCache) TaskResult {
	set, err := cache.get(ctx, h.Facts.Arch)
	if err != nil {
		return Fail(err)
	}
	st.set = set
	r := Ok("%s release %s (%d programs, %s, %s)", set.GOARCH, set.Hash, len(set.Binaries), mib(set.Size()), set.Origin)
	r.Data = map[string]any{"release": set.Hash, "arch": set.GOARCH, "origin": string(set.Origin)}
	return r
}

// upload puts the release's binaries in releases/<hash>/, skipping those
// already there.
func (g goBackend) upload(ctx context.Context, h *HostRun, st *goHost) TaskResult {
	set := st.set
	dir := g.d.ReleaseDir(set.Hash)
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
func (g goBackend) release(ctx context.Context, h *HostRun, st *goHost) TaskResult {
	set := st.set
	dry := "0"
	if h.Check {
		dry = "1"
	}
	args := []string{g.d.Root, set.Hash, strconv.Itoa(g.d.KeepReleases), dry}
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

// verify asks each server for / and /api/50 from the host itself.
func (g goBackend) verify(ctx context.Context, h *HostRun, timeout time.Duration) TaskResult {
	if h.Check && h.Changed() {
		return Skip("check mode: the servers would change")
	}
	var names []string
	var ports []int
	for _, s := range g.d.Services {
		names, ports = append(names, s.Name), append(ports, s.Port)
	}
	parts, bad, via, err := verifyPorts(ctx, h, names, ports, timeout)
	if err != nil {
		return Fail(err)
	}
	if len(bad) > 0 {
		return Fail(fail.Errorf(fail.Failed, "see: journalctl -u deploylab-<service>", "%s", strings.Join(bad, "; ")))
	}
	return Ok("%s (/ and /api/50 answered from the host via %s)", strings.Join(parts, ", "), via)
}

// recordState is shell that writes content to the state file p
// atomically.
func recordState(p, content string) string {
	return fmt.Sprintf("mkdir -p %s && printf '%%s\\n' %s > %s.new && mv -f %s.new %s", q(path.Dir(p)), q(content), q(p), q(p), q(p))
}

// clusterStats is the part of sumcluster's stats we use.
type clusterStats struct {
	Reloads int  `json:"reloads"`
	Ready   bool `json:"ready"`
	Workers []struct {
		State string `json:"state"`
	} `json:"workers"`
}

// readStats reads the cluster's statistics from its socket sock.
func readStats(ctx context.Context, h *HostRun, d Deployment, s Service, sock string) (clusterStats, error) {
	var st clusterStats
	out, err := sh(ctx, h, "cluster stats", q(d.BinPath(s.Program))+" stats --stats-socket "+q(sock))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("cluster stats: %w", err)
	}
	return st, nil
}

// waitReload waits until the cluster (statistics at sock) has finished a
// reload begun after before was read, or timeout passes.
func waitReload(ctx context.Context, h *HostRun, d Deployment, s Service, sock string, before clusterStats, timeout time.Duration, name string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st, err := readStats(ctx, h, d, s, sock)
		if err == nil && st.Reloads > before.Reloads && st.Ready {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("reload %s: %w", name, err)
			}
			return fmt.Errorf("reload %s: not finished after %s", name, timeout)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// The verbs: the first task reads the supervisor up recorded on the host.

// supervisorScript prints the supervisor recorded by up ("systemd" when
// none is: deployments made before PM2 support).
func supervisorScript(d Deployment) string {
	return fmt.Sprintf("cat %s 2>/dev/null || echo %s", q(d.SupervisorPath()), SupervisorSystemd)
}

// recorded is the supervisor named by supervisorScript's output, and its
// name (systemd for anything unknown).
func recorded(out string) (goSupervisor, string) {
	name := strings.TrimSpace(out)
	if _, ok := goSupervisors[name]; !ok {
		name = SupervisorSystemd
	}
	return goSupervisors[name], name
}

// Control: a "supervisor" task reads the recorded supervisor, then one task
// per service applies verb with it.
func (g goBackend) Control(verb Verb, svcs []Service, timeout time.Duration) []Task[goHost] {
	tasks := []Task[goHost]{{"supervisor", func(ctx context.Context, h *HostRun, st *goHost) TaskResult {
		out, err := sh(ctx, h, "read supervisor", supervisorScript(g.d))
		if err != nil {
			return Fail(err)
		}
		var name string
		st.sup, name = recorded(out)
		return Ok("%s", name)
	}}}
	for _, s := range svcs {
		tasks = append(tasks, Task[goHost]{s.Name, func(ctx context.Context, h *HostRun, st *goHost) TaskResult {
			return st.sup.control(ctx, h, g.d, s, verb, timeout)
		}})
	}
	return tasks
}

// Logs prints the logs from the recorded supervisor.
func (g goBackend) Logs(ctx context.Context, h *HostRun, svcs []Service, o LogsOptions, emit func(host, text string)) error {
	out, err := sh(ctx, h, "read supervisor", supervisorScript(g.d))
	if err != nil {
		return err
	}
	sup, _ := recorded(out)
	return sup.logs(ctx, h, g.d, svcs, o, emit)
}

// Ls reads the services in one round trip: the recorded supervisor's view,
// /proc and the cluster's statistics (see lsScript).
func (g goBackend) Ls(ctx context.Context, h *HostRun, _ *goHost, svcs []Service, sample time.Duration) ([]ProcStatus, error) {
	out, err := sh(ctx, h, "ls", lsScript(g.d, svcs, sample))
	if err != nil {
		return nil, err
	}
	return parseLs(out, svcs, sample)
}

// lsScript prints "@@supervisor <name>", the clock ticks, page size and
// uptime, the supervisor's head; per service "@@svc <name>", the
// supervisor's view and the cluster's stats JSON; then for each process
// two /proc/<pid>/stat samples and statm.
func lsScript(d Deployment, svcs []Service, sample time.Duration) string {
	// cases runs each supervisor's shell for its name; unknown names are
	// systemd's (deployments made before PM2 support record none): its
	// branch (*) comes last.
	names := slices.DeleteFunc(slices.Clone(goSupervisorNames), func(n string) bool { return n == SupervisorSystemd })
	names = append(names, SupervisorSystemd)
	cases := func(part func(goSupervisor) string) string {
		var b strings.Builder
		b.WriteString("case \"$sup\" in\n")
		for _, name := range names {
			pat := name
			if name == SupervisorSystemd {
				pat = "*"
			}
			fmt.Fprintf(&b, "%s)\n%s\n;;\n", pat, part(goSupervisors[name]))
		}
		return b.String() + "esac\n"
	}
	var b strings.Builder
	b.WriteString("sup=$(" + supervisorScript(d) + ")\necho \"@@supervisor $sup\"\n")
	b.WriteString("echo \"@@clk $(getconf CLK_TCK) $(getconf PAGESIZE)\"\necho \"@@uptime $(cut -d' ' -f1 /proc/uptime)\"\n")
	b.WriteString(cases(func(s goSupervisor) string { return s.lsHead(d) }))
	b.WriteString("pids=\n")
	for _, s := range svcs {
		fmt.Fprintf(&b, "echo '@@svc %s'\nmp=0 sock=\n", s.Name)
		b.WriteString(cases(func(sup goSupervisor) string { return sup.lsService(d, s) }))
		b.WriteString("echo \"MainPID=$mp\"\n")
		if s.RuntimeDirectory != "" {
			fmt.Fprintf(&b, "echo @@stats; [ \"${mp:-0}\" != 0 ] && %s stats --stats-socket \"$sock\" 2>/dev/null | tr -d '\\n'; echo\n",
				q(d.BinPath(s.Program)))
			fmt.Fprintf(&b, "wp=$([ \"${mp:-0}\" != 0 ] && %s stats --stats-socket \"$sock\" 2>/dev/null | grep -o '\"pid\": *[0-9]*' | grep -o '[0-9]*$' | tr '\\n' ' ')\n",
				q(d.BinPath(s.Program)))
		} else {
			b.WriteString("wp=\n")
		}
		fmt.Fprintf(&b, "[ \"${mp:-0}\" != 0 ] && pids=\"$pids %s:$mp\"; for p in $wp; do pids=\"$pids %s:$p\"; done\n", s.Name, s.Name)
	}
	b.WriteString(`stat() { for sp in $pids; do p=${sp#*:}; printf '%s %s ' "$1" "$sp"; cat /proc/$p/stat 2>/dev/null | sed 's/.*) //' | tr '\n' ' '; echo; done; }
stat @@stat1
sleep ` + strconv.FormatFloat(sample.Seconds(), 'f', 3, 64) + `
stat @@stat2
for sp in $pids; do p=${sp#*:}; printf '@@statm %s ' "$sp"; cat /proc/$p/statm 2>/dev/null; echo; done
exit 0
`)
	return b.String()
}

// Down's task names for the Go servers (files and verify are shared).
const TaskDownServices = "services"

// Down stops and removes the services under every supervisor (whichever
// is there: a switch between them may have left both), removes
// /opt/deploylab and what the supervisors added, and verifies nothing of
// deploylab is left.
func (g goBackend) Down() []Task[goHost] {
	d := g.d
	return []Task[goHost]{
		{TaskDownServices, func(ctx context.Context, h *HostRun, _ *goHost) TaskResult {
			return downRun(ctx, h, "services", downServicesScript(d))
		}},
		{TaskDownFiles, func(ctx context.Context, h *HostRun, _ *goHost) TaskResult {
			return downRun(ctx, h, "files", downFilesScript(d))
		}},
		{TaskDownVerify, func(ctx context.Context, h *HostRun, _ *goHost) TaskResult {
			if h.Check && h.Changed() {
				return Skip("check mode: things would be removed")
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

// downServicesScript stops and removes the services under every
// supervisor. act runs its command unless DRY=1; a part sets reload=1 when
// systemd must reload.
func downServicesScript(d Deployment) string {
	var b strings.Builder
	b.WriteString("set -u\nact() { [ \"$DRY\" = 1 ] || \"$@\"; }\nreload=0\n")
	for _, name := range goSupervisorNames {
		svc, _ := goSupervisors[name].down(d)
		b.WriteString(svc)
	}
	b.WriteString("if [ $reload = 1 ] && [ \"$DRY\" != 1 ]; then systemctl daemon-reload; systemctl reset-failed 'deploylab-*' 'pm2-*' >/dev/null 2>&1; fi\nexit 0\n")
	return b.String()
}

// downFilesScript removes the deployment's directory, then what the
// supervisors added outside it.
func downFilesScript(d Deployment) string {
	var b strings.Builder
	b.WriteString("set -u\nact() { [ \"$DRY\" = 1 ] || \"$@\"; }\n")
	fmt.Fprintf(&b, "if [ -e %s ]; then echo removed %s; act rm -rf -- %s; fi\n", q(d.Root), d.Root, q(d.Root))
	for _, name := range goSupervisorNames {
		_, files := goSupervisors[name].down(d)
		b.WriteString(files)
	}
	b.WriteString("exit 0\n")
	return b.String()
}

// LeftoversScript prints each thing of deploylab still on the host, one a
// line (nothing when the host is as Down leaves it): the supervisors'
// leftovers (unit files, loaded units, the PM2 user), the root directory,
// runtime directories and processes running the deployment's programs.
func LeftoversScript(d Deployment) string {
	var b strings.Builder
	fmt.Fprintf(&b, "for f in /run/deploylab-* %s; do [ -e \"$f\" ] && echo \"$f\"; done\n", q(d.Root))
	for _, name := range goSupervisorNames {
		b.WriteString(goSupervisors[name].leftovers(d))
	}
	b.WriteString("for p in /proc/[0-9]*; do e=$(readlink $p/exe 2>/dev/null) || continue; case \"$e\" in " + d.Root + "/*) echo \"process:${p#/proc/}:$e\";; esac; done\n")
	b.WriteString("exit 0\n")
	return b.String()
}
