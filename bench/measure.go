package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/remote"
)

// This file builds the shell scripts run on the host and parses what they
// print. Every script prints sections introduced by "@@name" lines, so one
// SSH round trip brings back the load generator's output and the CPU and
// cluster samples taken just before and just after it.

// userHZ is the unit of /proc/<pid>/stat's times: Linux exports them in
// USER_HZ, 100 on every architecture.
const userHZ = 100

// serverProbe is what the host told about one plan server.
type serverProbe struct {
	Server
	// Listening: something listens on the port; ListenKnown: ss could tell.
	Listening, ListenKnown bool
	// ListenPIDs are the processes holding the listening socket (needs
	// root for other users' processes).
	ListenPIDs []int
	// Unit facts (systemctl show), when the plan names a unit.
	UnitLoaded, UnitActive bool
	MainPID                int
	// CPUStat is the unit's cgroup cpu.stat path, when readable.
	CPUStat string
	// StatsCmd prints the cluster's statistics (sumcluster stats), "" when
	// the server is not deploylab's sumcluster.
	StatsCmd string
	// ExecPath is the unit's program.
	ExecPath string
}

// cpuSource returns the shell commands sampling the server's CPU, and the
// source's name ("cgroup", "procs", or "" when unknown).
func (p *serverProbe) cpuSource() (string, string) {
	switch {
	case p.CPUStat != "":
		return "echo cgroup; cat " + remote.ShellQuote(p.CPUStat) + " 2>/dev/null", "cgroup"
	case len(p.rootPIDs()) > 0:
		return "echo procs; cat /proc/[0-9]*/stat 2>/dev/null", "procs"
	}
	return "", ""
}

// rootPIDs are the processes whose trees make the server.
func (p *serverProbe) rootPIDs() []int {
	if p.MainPID > 0 {
		return []int{p.MainPID}
	}
	return p.ListenPIDs
}

// runner runs one command on the host.
type runner interface {
	Run(ctx context.Context, cmd string) (remote.Result, error)
}

// observeHost gathers, in one round trip (observe's script), the host's
// facts and what it shows of each plan server: is its port listening, who
// holds it, and (for a unit) its main PID, cgroup and command line.
func observeHost(ctx context.Context, r runner, servers []Server) (observe.Host, []serverProbe, error) {
	o := observe.Options{Parts: slices.Clone(observe.FactsParts)}
	for _, s := range servers {
		if s.Unit != "" && !slices.Contains(o.Units, s.Unit) {
			o.Units = append(o.Units, s.Unit)
		}
	}
	if len(o.Units) > 0 {
		o.Parts = append(o.Parts, observe.PartUnits)
	}
	h, err := observe.Gather(ctx, func(ctx context.Context, cmd string) ([]byte, []byte, int, error) {
		res, err := r.Run(ctx, cmd)
		return res.Stdout, res.Stderr, res.ExitCode, err
	}, o)
	if err != nil {
		return observe.Host{}, nil, err
	}
	return h, serverProbes(h, servers), nil
}

// serverProbes reads what the host showed of each server.
func serverProbes(h observe.Host, servers []Server) []serverProbe {
	probes := make([]serverProbe, len(servers))
	for i, s := range servers {
		p := &probes[i]
		p.Server = s
		p.ListenKnown = h.ListenersFrom != ""
		for _, l := range h.ListenersOn(s.Port) {
			p.Listening = true
			for _, pid := range l.PIDs {
				if !slices.Contains(p.ListenPIDs, pid) {
					p.ListenPIDs = append(p.ListenPIDs, pid)
				}
			}
		}
		// A hand-run sumcluster (not a unit) has statistics too.
		for _, pid := range p.ListenPIDs {
			prog := h.Programs[pid]
			if path.Base(prog.Exe) != "sumcluster" || p.StatsCmd != "" {
				continue
			}
			argv := strings.Fields(prog.Cmdline)
			if len(argv) == 0 {
				continue
			}
			argv[0] = prog.Exe
			p.StatsCmd = statsCommand(argv, "", s.Port)
			p.ExecPath = prog.Exe
		}
		if s.Unit == "" {
			continue
		}
		u, _ := h.Unit(s.Unit)
		p.UnitLoaded = u.Load == "loaded"
		p.UnitActive = u.Active == "active" || u.Active == "reloading"
		if p.UnitActive {
			p.MainPID = u.MainPID
			p.CPUStat = u.CPUStat
			if argv := strings.Fields(u.ExecStart); len(argv) > 0 {
				p.ExecPath = argv[0]
				if path.Base(argv[0]) == "sumcluster" {
					p.StatsCmd = statsCommand(argv, u.RuntimeDirectory, s.Port)
				}
			}
		}
	}
	return probes
}

var (
	timesRe    = regexp.MustCompile(`(\d+)m([\d.]+)s`)
	sectionsRe = regexp.MustCompile(`^@@(\S+)(?: (.*))?$`)
)

// runSections runs a sectioned script (runScript, blockingScript,
// sessionsScript) on the host: its sections, and the measuring command's
// exit status from the "exit" section. A script that did not reach its
// "end" section is an error naming the run.
func (h *hostRun) runSections(ctx context.Context, name, script string) (secs map[string][]byte, code int, stderr []byte, err error) {
	res, err := h.exec.Run(ctx, script)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("run %s: %w", name, err)
	}
	secs = sections(res.Stdout)
	if _, ok := secs["end"]; !ok {
		return nil, 0, nil, fmt.Errorf("run %s: the script stopped early (exit status %d): %s", name, res.ExitCode, firstLine(res.Stderr))
	}
	code, _ = strconv.Atoi(strings.TrimSpace(string(secs["exit"])))
	return secs, code, res.Stderr, nil
}

// sections splits a script's output into its "@@name [arg]" sections,
// keyed "name" or "name arg".
func sections(out []byte) map[string][]byte {
	secs := map[string][]byte{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := sectionsRe.FindStringSubmatch(line); m != nil {
			cur = m[1]
			if m[2] != "" {
				cur += " " + m[2]
			}
			if _, ok := secs[cur]; !ok {
				secs[cur] = []byte{}
			}
			continue
		}
		if cur == "" {
			continue
		}
		secs[cur] = append(append(secs[cur], line...), '\n')
	}
	return secs
}

// statsCommand is "sumcluster stats" for the master started with argv.
func statsCommand(argv []string, runtimeDir string, port int) string {
	sock := ""
	for i, a := range argv {
		if v, ok := strings.CutPrefix(a, "--stats-socket="); ok {
			sock = v
		} else if (a == "--stats-socket" || a == "-stats-socket") && i+1 < len(argv) {
			sock = argv[i+1]
		}
	}
	if sock == "" && runtimeDir != "" {
		sock = path.Join("/run", strings.Fields(runtimeDir)[0], "stats.sock")
	}
	cmd := remote.ShellQuote(argv[0]) + " stats"
	if sock != "" {
		return cmd + " --stats-socket " + remote.ShellQuote(sock)
	}
	return cmd + " --port " + strconv.Itoa(port)
}

// runSpec is one measured run for runScript.
type runSpec struct {
	// Command is the load generator's command line.
	Command string
	// CPU samples the server ("" when unknown); Stats prints the cluster's
	// statistics ("" when none).
	CPU, Stats string
}

// runScript runs spec.Command between two samples of CPU and cluster
// statistics. The load generator's stdout is the "run" section; its exit
// status "exit"; the shell's children's CPU times, before and after the
// command, "times before" and "times after".
func runScript(spec runSpec) string {
	var b strings.Builder
	b.WriteString("export LC_ALL=C\nsample() {\n")
	b.WriteString("  echo \"@@stat $1\"; head -n 1 /proc/stat; cat /proc/uptime\n")
	if spec.CPU != "" {
		b.WriteString("  echo \"@@cpu $1\"; " + spec.CPU + "\n")
	}
	if spec.Stats != "" {
		b.WriteString("  echo \"@@stats $1\"; " + spec.Stats + " 2>/dev/null\n")
	}
	b.WriteString("}\nsample before\necho '@@times before'\ntimes\necho @@run\n")
	b.WriteString(spec.Command + "\n")
	b.WriteString("rc=$?\necho @@exit\necho $rc\necho '@@times after'\ntimes\nsample after\necho @@end\n")
	return "sh -c " + remote.ShellQuote(b.String())
}

// blockingScript runs one heavy request and, delay later, probes
// concurrent light ones, all with loadgen. The probes' result is the "run"
// section, the heavy request's "heavy".
func blockingScript(loadgenPath, heavyURL, probeURL string, probes int, delay time.Duration) string {
	l := remote.ShellQuote(loadgenPath)
	var b strings.Builder
	b.WriteString("export LC_ALL=C\n")
	b.WriteString("tmp=$(mktemp) || exit 1\ntrap 'rm -f \"$tmp\"' EXIT\n")
	fmt.Fprintf(&b, "%s -q --json -n 1 -c 1 --timeout 300000 %s >\"$tmp\" 2>/dev/null &\nhp=$!\n", l, remote.ShellQuote(heavyURL))
	fmt.Fprintf(&b, "sleep %s\n", strconv.FormatFloat(delay.Seconds(), 'f', 3, 64))
	fmt.Fprintf(&b, "echo @@run\n%s -q --json -n %d -c %d --timeout 300000 %s\nrc=$?\necho @@exit\necho $rc\n", l, probes, probes, remote.ShellQuote(probeURL))
	b.WriteString("wait $hp; he=$?\necho @@heavy\ncat \"$tmp\"\necho @@heavyexit\necho $he\necho @@end\n")
	return "sh -c " + remote.ShellQuote(b.String())
}

// sample is one side of a run: machine CPU, uptime, server CPU, stats.
type sample struct {
	uptime     float64 // seconds
	machBusy   float64 // seconds of CPU, all CPUs
	server     float64 // seconds; -1 unknown
	stats      *clusterStats
	statsError string
}

// parseSample reads the "stat", "cpu" and "stats" sections named side.
func parseSample(secs map[string][]byte, side string, roots []int) sample {
	s := sample{server: -1}
	lines := strings.Split(strings.TrimSpace(string(secs["stat "+side])), "\n")
	if len(lines) >= 2 {
		f := strings.Fields(lines[0])
		if len(f) > 4 && f[0] == "cpu" {
			var total, idle float64
			for i, v := range f[1:] {
				n, _ := strconv.ParseFloat(v, 64)
				if i >= 8 { // guest and guest_nice are already in user and nice
					break
				}
				total += n
				if i == 3 || i == 4 { // idle, iowait
					idle += n
				}
			}
			s.machBusy = (total - idle) / userHZ
		}
		if u := strings.Fields(lines[1]); len(u) > 0 {
			s.uptime, _ = strconv.ParseFloat(u[0], 64)
		}
	}
	if cpu, ok := secs["cpu "+side]; ok {
		s.server = parseServerCPU(cpu, roots)
	}
	if st, ok := secs["stats "+side]; ok {
		var cs clusterStats
		if err := json.Unmarshal(st, &cs); err == nil {
			s.stats = &cs
		} else if s.statsError = firstLine(st); s.statsError == "" {
			s.statsError = "sumcluster stats printed nothing (its socket could not be read)"
		}
	}
	return s
}

// parseServerCPU sums a server's CPU seconds from a "cgroup" (cpu.stat)
// or "procs" (every /proc/<pid>/stat) sample; -1 when it cannot.
func parseServerCPU(b []byte, roots []int) float64 {
	kind, rest, _ := strings.Cut(string(b), "\n")
	switch kind {
	case "cgroup":
		for _, line := range strings.Split(rest, "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err == nil {
					return n / 1e6
				}
			}
		}
	case "procs":
		return procTreeCPU(rest, roots)
	}
	return -1
}

// procStat is the part of /proc/<pid>/stat a CPU sum needs.
type procStat struct {
	pid, ppid int
	ticks     float64 // utime + stime + cutime + cstime
}

// parseProcStat reads one /proc/<pid>/stat line; the command name may
// hold spaces and parentheses, so fields are counted after the last ")".
func parseProcStat(line string) (procStat, bool) {
	open := strings.IndexByte(line, '(')
	end := strings.LastIndexByte(line, ')')
	if open < 1 || end < open {
		return procStat{}, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil {
		return procStat{}, false
	}
	f := strings.Fields(line[end+1:])
	// f[0] is field 3 (state): ppid is field 4, utime..cstime 14..17.
	if len(f) < 15 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	var t float64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseFloat(v, 64)
		t += n
	}
	return procStat{pid: pid, ppid: ppid, ticks: t}, true
}

// procTreeCPU sums the CPU seconds of roots and all their descendants.
// Time of reaped children is in their parent's cutime/cstime; live ones
// are counted on their own.
func procTreeCPU(stats string, roots []int) float64 {
	if len(roots) == 0 {
		return -1
	}
	var all []procStat
	children := map[int][]int{}
	byPID := map[int]procStat{}
	for _, line := range strings.Split(stats, "\n") {
		if p, ok := parseProcStat(line); ok {
			all = append(all, p)
			byPID[p.pid] = p
			children[p.ppid] = append(children[p.ppid], p.pid)
		}
	}
	seen := map[int]bool{}
	queue := append([]int(nil), roots...)
	var ticks float64
	found := false
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		p, ok := byPID[pid]
		if !ok {
			continue
		}
		found = true
		ticks += p.ticks
		queue = append(queue, children[pid]...)
	}
	if !found {
		return -1
	}
	return ticks / userHZ
}

// parseTimes reads the shell's "times" output: the second line is the
// children's user and system time.
func parseTimes(b []byte) (float64, bool) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 {
		return 0, false
	}
	m := timesRe.FindAllStringSubmatch(lines[1], -1)
	if len(m) < 2 {
		return 0, false
	}
	var t float64
	for _, x := range m[:2] {
		min, _ := strconv.ParseFloat(x[1], 64)
		sec, _ := strconv.ParseFloat(x[2], 64)
		t += min*60 + sec
	}
	return t, true
}

// clusterStats is the part of sumcluster's statistics bench reads.
type clusterStats struct {
	PID       int    `json:"pid"`
	Instances int    `json:"instances"`
	Schedule  string `json:"schedule"`
	Served    uint64 `json:"served"`
	Workers   []struct {
		Slot   int    `json:"slot"`
		ID     int    `json:"id"`
		PID    int    `json:"pid"`
		Served uint64 `json:"served"`
	} `json:"workers"`
}

// workerCounts computes each worker's requests between two samples.
// Workers are matched by ID (a respawned worker has a new one).
func workerCounts(before, after *clusterStats) []WorkerCount {
	if after == nil {
		return nil
	}
	prev := map[int]uint64{}
	if before != nil {
		for _, w := range before.Workers {
			prev[w.ID] = w.Served
		}
	}
	out := make([]WorkerCount, 0, len(after.Workers))
	for _, w := range after.Workers {
		wc := WorkerCount{Slot: w.Slot, ID: w.ID, PID: w.PID, Before: prev[w.ID], After: w.Served}
		if w.Served >= wc.Before {
			wc.Requests = w.Served - wc.Before
		}
		out = append(out, wc)
	}
	return out
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
