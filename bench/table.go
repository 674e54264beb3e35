package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/deploylab/deploylab/payload/loadgen"
)

// WriteTable prints the comparison of runs, host by host: for each load
// scenario a row per server (rps, mean, p50/p90/p99, errors, the cluster's
// speedup, client and server CPU), the cluster's per-worker request counts,
// and, where the single server beats the cluster, the likely causes read
// from the figures; then the blocking experiment's waits.
func WriteTable(w io.Writer, runs []*Record) error {
	var b strings.Builder
	for i, host := range hostsOf(runs) {
		if i > 0 {
			b.WriteString("\n")
		}
		writeHost(&b, host, runsOf(runs, host))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func hostsOf(runs []*Record) []string {
	var hosts []string
	for _, r := range runs {
		if !slices.Contains(hosts, r.Host.Name) {
			hosts = append(hosts, r.Host.Name)
		}
	}
	return hosts
}

func runsOf(runs []*Record, host string) []*Record {
	var out []*Record
	for _, r := range runs {
		if r.Host.Name == host {
			out = append(out, r)
		}
	}
	return out
}

// group is one scenario's runs, by server: the mode, prefixed with the
// stack ("node single") when the host's runs are not all go.
type group struct {
	scenario Scenario
	byMode   map[string]*Record
	modes    []string
}

// serverLabel is how the report names r's server: its mode, or
// "<stack> <mode>" when stacked is set.
func serverLabel(r *Record, stacked bool) string {
	if st := r.Server.StackName(); stacked && st != "" {
		return st + " " + r.Server.Mode
	}
	return r.Server.Mode
}

// mixedStacks reports whether runs measured a stack other than go, so
// that the report names the stack of every server.
func mixedStacks(runs []*Record) bool {
	for _, r := range runs {
		if st := r.Server.StackName(); st != "" && st != LangGo {
			return true
		}
	}
	return false
}

// sibling is the label of the server of the same stack as label in mode.
func sibling(label, mode string) string {
	if i := strings.LastIndexByte(label, ' '); i >= 0 {
		return label[:i+1] + mode
	}
	return mode
}

func groups(runs []*Record, kind string) []*group {
	stacked := mixedStacks(runs)
	var out []*group
	idx := map[string]*group{}
	for _, r := range runs {
		if r.Scenario.Kind != kind {
			continue
		}
		key := r.Scenario.Name + "\x00" + r.Scenario.Describe()
		g := idx[key]
		if g == nil {
			g = &group{scenario: r.Scenario, byMode: map[string]*Record{}}
			idx[key] = g
			out = append(out, g)
		}
		label := serverLabel(r, stacked)
		if _, ok := g.byMode[label]; !ok {
			g.modes = append(g.modes, label)
		}
		g.byMode[label] = r // the latest run of a server wins
	}
	// Node before go (as bench --compare runs them), single before cluster.
	stackOrder := map[string]int{LangNode: 0, LangGo: 1, "": 2}
	order := map[string]int{ModeSingle: 0, ModeCluster: 1, ModeCustom: 2}
	for _, g := range out {
		slices.SortStableFunc(g.modes, func(a, b string) int {
			ra, rb := g.byMode[a], g.byMode[b]
			if d := stackOrder[ra.Server.StackName()] - stackOrder[rb.Server.StackName()]; stacked && d != 0 {
				return d
			}
			return order[ra.Server.Mode] - order[rb.Server.Mode]
		})
	}
	return out
}

func writeHost(b *strings.Builder, host string, runs []*Record) {
	h := runs[0].Host
	head := host
	var who []string
	if h.Student != "" {
		who = append(who, h.Student)
	}
	if h.Address != "" && h.Address != host {
		who = append(who, h.Address)
	}
	if len(who) > 0 {
		head += " (" + strings.Join(who, ", ") + ")"
	}
	var facts []string
	if h.CPUs > 0 {
		facts = append(facts, plural(h.CPUs, "CPU"))
	}
	if h.Kernel != "" {
		facts = append(facts, "Linux "+h.Kernel)
	}
	if h.Arch != "" {
		facts = append(facts, h.Arch)
	}
	var tools []string
	for _, r := range runs {
		if r.Scenario.Kind != KindLoad {
			continue
		}
		t := strings.TrimSpace(r.Tool.Name + " " + r.Tool.Version)
		if r.Tool.Cores > 0 {
			t += fmt.Sprintf(" on %s", plural(r.Tool.Cores, "core"))
		}
		if !slices.Contains(tools, t) {
			tools = append(tools, t)
		}
	}
	facts = append(facts, tools...)
	fmt.Fprintf(b, "%s: %s\n", head, strings.Join(facts, ", "))

	if load := groups(runs, KindLoad); len(load) > 0 {
		b.WriteString("\n")
		writeLoadTable(b, load)
	}
	if blk := groups(runs, KindBlocking); len(blk) > 0 {
		b.WriteString("\n")
		writeBlockingTable(b, blk)
	}
	if len(SessionsRows(runs)) > 0 {
		b.WriteString("\n")
		writeSessionsTable(b, runs)
	}
}

// table renders rows of cells with aligned columns; a row with a single
// cell starting with a space is a note printed as is.
type table struct {
	rows  [][]string
	right []bool // right-aligned columns
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }
func (t *table) note(s string)       { t.rows = append(t.rows, []string{"\x00" + s}) }

func (t *table) write(b *strings.Builder) {
	var widths []int
	for _, r := range t.rows {
		if len(r) == 1 && strings.HasPrefix(r[0], "\x00") {
			continue
		}
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, r := range t.rows {
		if len(r) == 1 && strings.HasPrefix(r[0], "\x00") {
			b.WriteString(r[0][1:])
			b.WriteString("\n")
			continue
		}
		var line strings.Builder
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				line.WriteString("  ")
			}
			if i < len(t.right) && t.right[i] {
				line.WriteString(pad + c)
			} else {
				line.WriteString(c + pad)
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteString("\n")
	}
}

func writeLoadTable(b *strings.Builder, gs []*group) {
	t := &table{right: []bool{false, false, true, true, true, true, true, true, true, true, true, true}}
	t.add("SCENARIO", "SERVER", "RPS", "MEAN", "P50", "P90", "P99", "ERRORS", "SPEEDUP", "CPU CLIENT", "CPU SERVER", "SERVER µs/REQ")
	for _, g := range gs {
		for i, server := range g.modes {
			r := g.byMode[server]
			mode := r.Server.Mode
			single := g.byMode[sibling(server, ModeSingle)]
			label := ""
			if i == 0 {
				label = g.scenario.Describe()
			}
			res := r.Result
			row := []string{label, server, fmt.Sprintf("%.0f", res.RPS)}
			if l := res.Latency; l != nil {
				row = append(row, fmtMS(l.Mean), fmtMS(l.P50), fmtMS(l.P90), fmtMS(l.P99))
			} else {
				row = append(row, "-", "-", "-", "-")
			}
			row = append(row, fmtErrors(res.Errors.Total, res.Completed))
			sp := ""
			if mode == ModeCluster && single != nil && single.Result.RPS > 0 {
				sp = fmt.Sprintf("×%.2f", res.RPS/single.Result.RPS)
			}
			row = append(row, sp)
			row = append(row, fmtCores(r.CPU.ClientCores()), fmtCores(r.CPU.ServerCores()))
			if us := r.ServerCPUPerRequestUS(); us >= 0 {
				row = append(row, fmt.Sprintf("%.0f µs", us))
			} else {
				row = append(row, "-")
			}
			t.add(row...)
			if mode == ModeCluster && len(r.Workers) > 0 {
				t.note("    " + workersLine(r.Workers))
			}
			if res.Interrupted {
				t.note("    (interrupted: figures cover the part that ran)")
			}
			if mode != ModeCluster || single == nil {
				continue
			}
			if causes := Diagnose(single, r); causes != nil {
				what := "the single server beats the cluster"
				if st := strings.TrimSuffix(server, ModeCluster); st != "" {
					what = "the " + st + "single server beats the " + st + "cluster"
				}
				t.note(fmt.Sprintf("    ! %s: %.0f vs %.0f rps. Likely causes, from the figures:", what, single.Result.RPS, res.RPS))
				for _, c := range causes {
					t.note("      - " + c.Text)
				}
			}
		}
	}
	t.write(b)
	b.WriteString("CPU: cores busy on average during the run (client: the load generator; server: all its processes).\n")
}

// workersLine shows the cluster's requests per worker and whether the load
// was balanced.
func workersLine(ws []WorkerCount) string {
	var parts []string
	var lo, hi uint64 = math.MaxUint64, 0
	var total uint64
	for _, w := range ws {
		parts = append(parts, fmt.Sprintf("#%d %d", w.Slot, w.Requests))
		lo, hi = min(lo, w.Requests), max(hi, w.Requests)
		total += w.Requests
	}
	s := "cluster workers (requests served): " + strings.Join(parts, ", ")
	switch {
	case len(ws) < 2 || total == 0:
	case lo == 0:
		s += ": unbalanced, a worker served nothing"
	case float64(hi)/float64(lo) <= 1.5:
		s += fmt.Sprintf(": balanced (max/min %.2f)", float64(hi)/float64(lo))
	default:
		s += fmt.Sprintf(": unbalanced (max/min %.2f)", float64(hi)/float64(lo))
	}
	return s
}

func writeBlockingTable(b *strings.Builder, gs []*group) {
	t := &table{right: []bool{false, false, true, false, false}}
	t.add("BLOCKING EXPERIMENT", "SERVER", "HEAVY", "EACH LIGHT REQUEST WAITED", "VERDICT")
	for _, g := range gs {
		for i, server := range g.modes {
			r := g.byMode[server]
			label := ""
			if i == 0 {
				label = g.scenario.Describe()
			}
			bl := ReadBlocking(r)
			t.add(label, server, fmtHeavy(bl), fmtWaits(bl), bl.Verdict)
			if bl.Why != "" {
				t.note("    " + bl.Why)
			}
		}
	}
	t.write(b)
}

// LightRequest is one light request of the blocking experiment.
type LightRequest struct {
	// StartUS is when it was sent, after the heavy request was (-1 when
	// the run did not record the two starts).
	StartUS float64
	// WaitUS is how long it took to be answered (or to fail).
	WaitUS float64
	Status int
	// Error is its failure's kind, "" when answered.
	Error string
	// Waited: it waited for the heavy one (see Waited).
	Waited bool
}

// Blocking is what a blocking run shows: the heavy request, each light
// request's wait when the run stored them (loadgen does, for runs of at
// most loadgen.EachMax requests), and the verdict in words.
type Blocking struct {
	// HeavyUS is the heavy request's time (-1 unknown).
	HeavyUS float64
	// Lights are the light requests in the order they were sent; nil when
	// the run did not store them (older results): then MaxWaitUS and
	// MeanWaitUS are all there is.
	Lights                []LightRequest
	MaxWaitUS, MeanWaitUS float64
	// Light is the number of light requests; WaitedN how many waited (-1
	// unknown: only the longest wait was stored).
	Light, WaitedN int
	// Failed counts the light requests that failed.
	Failed int
	// Verdict says what happened in a few words ("1 of 4 waited"); Why
	// explains it, "" when there is nothing to explain.
	Verdict, Why string
}

// Waited reports whether a light request that took waitUS waited for a
// heavy request of heavyUS: over 200 ms and over a quarter of the heavy
// request's time.
func Waited(waitUS, heavyUS float64) bool {
	return waitUS > 200_000 && (heavyUS <= 0 || waitUS > heavyUS/4)
}

// Blocked reports whether a blocking run's light requests waited for the
// heavy one: the longest wait counts (see Waited).
func Blocked(r *Record) bool {
	if r.Result == nil || r.Result.Latency == nil || r.Heavy == nil || r.Heavy.Latency == nil {
		return false
	}
	return Waited(r.Result.Latency.Max, r.Heavy.Latency.Max)
}

// ReadBlocking reads a blocking run: each light request's wait, how many
// waited and why.
func ReadBlocking(r *Record) Blocking {
	bl := Blocking{HeavyUS: -1, WaitedN: -1}
	if r.Heavy != nil && r.Heavy.Latency != nil {
		bl.HeavyUS = r.Heavy.Latency.Max
	}
	res := r.Result
	if res == nil {
		bl.Verdict = "no answer"
		return bl
	}
	bl.Light = int(res.Completed)
	bl.Failed = int(res.Errors.Total)
	if l := res.Latency; l != nil {
		bl.MaxWaitUS, bl.MeanWaitUS = l.Max, l.Mean
	}
	if len(res.Each) > 0 {
		offset := -1.0
		if r.Heavy != nil && !r.Heavy.Started.IsZero() && !res.Started.IsZero() {
			offset = float64(res.Started.Sub(r.Heavy.Started).Microseconds())
		}
		each := res.Each
		if len(each) > loadgen.EachMax {
			each = each[:loadgen.EachMax] // loadgen lists no more; a result from elsewhere might
		}
		bl.Light, bl.WaitedN = len(each), 0
		for _, q := range each {
			lr := LightRequest{StartUS: -1, WaitUS: float64(max(q.LatencyUS, 0)), Status: q.Status, Error: errorKind(q.Error)}
			if offset >= 0 {
				lr.StartUS = offset + float64(max(q.StartUS, 0))
			}
			lr.Waited = Waited(lr.WaitUS, bl.HeavyUS)
			if lr.Waited {
				bl.WaitedN++
			}
			bl.Lights = append(bl.Lights, lr)
		}
	} else if res.Latency != nil && !Waited(res.Latency.Max, bl.HeavyUS) {
		bl.WaitedN = 0 // the longest did not wait: none did
	}
	cluster := r.Server.Mode == ModeCluster
	switch {
	case res.Latency == nil:
		bl.Verdict = "no answer"
		if bl.Failed > 0 {
			bl.Verdict = fmt.Sprintf("all %d light requests failed", bl.Failed)
		}
		return bl
	case bl.WaitedN < 0 && Waited(res.Latency.Max, bl.HeavyUS):
		// Older results: only the longest wait is known.
		bl.Verdict = "blocked: a light request waited for the heavy one"
		bl.Why = "(each request's wait was not stored: bench again to see how many waited)"
	case bl.WaitedN == 0:
		bl.Verdict = "not blocked: " + allOf(bl.Light, "answered while the heavy one ran")
		if cluster && bl.Light > 0 {
			bl.Why = "another worker was free: the heavy request kept only its own worker busy"
		}
	case bl.WaitedN == bl.Light:
		bl.Verdict = "blocked: " + allOf(bl.Light, "waited for the heavy one")
		if cluster {
			bl.Why = "every worker was busy, or every light request was sent to the busy one"
		} else {
			bl.Why = "one process serves one request at a time: while it computes the heavy one, the others wait"
		}
	default:
		bl.Verdict = fmt.Sprintf("%d of %d waited", bl.WaitedN, bl.Light)
		if cluster {
			bl.Why = fmt.Sprintf("round-robin: the cluster hands each new connection to the next worker in turn, whether it is busy or not, so the %s sent to the worker computing the heavy request waited for it; the %s answered at once. That is the lesson, not a failure: a scheduler that picks the least busy worker would make none wait",
				pluralWord(bl.WaitedN, "one", "ones"), otherN(bl.Light-bl.WaitedN))
		}
	}
	if bl.Failed > 0 {
		bl.Verdict += fmt.Sprintf("; %d failed", bl.Failed)
	}
	return bl
}

// errorKind keeps a stored failure kind printable: loadgen's kinds are
// short lower-case words; anything else (a result from elsewhere) is
// "error".
func errorKind(k string) string {
	if k == "" {
		return ""
	}
	if len(k) > 16 {
		return "error"
	}
	for _, c := range k {
		if c < 'a' || c > 'z' {
			return "error"
		}
	}
	return k
}

func allOf(n int, what string) string {
	switch n {
	case 1:
		return "the light request " + what
	case 2:
		return "both light requests " + what
	}
	return fmt.Sprintf("all %d light requests %s", n, what)
}

func pluralWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func otherN(n int) string {
	if n == 1 {
		return "other one"
	}
	return fmt.Sprintf("other %d", n)
}

// fmtHeavy is the heavy request's time, "-" when unknown.
func fmtHeavy(bl Blocking) string {
	if bl.HeavyUS < 0 {
		return "-"
	}
	return fmtMS(bl.HeavyUS)
}

// fmtWaits lists each light request's wait (longest first would hide the
// order; they are in the order they were sent), or the longest and mean
// when the run did not store them.
func fmtWaits(bl Blocking) string {
	if len(bl.Lights) == 0 {
		if bl.MaxWaitUS == 0 && bl.MeanWaitUS == 0 {
			return "-"
		}
		return fmt.Sprintf("up to %s (mean %s)", fmtMS(bl.MaxWaitUS), fmtMS(bl.MeanWaitUS))
	}
	const show = 8
	var parts []string
	for i, l := range bl.Lights {
		if i == show {
			parts = append(parts, fmt.Sprintf("… (%d more)", len(bl.Lights)-show))
			break
		}
		w := fmtMS(l.WaitUS)
		if l.Error != "" {
			w += " (" + l.Error + ")"
		}
		parts = append(parts, w)
	}
	return strings.Join(parts, ", ")
}

func blockingVerdict(r *Record) string {
	return ReadBlocking(r).Verdict
}

// fmtMS formats microseconds as milliseconds (or seconds from 1 s).
func fmtMS(us float64) string {
	ms := us / 1000
	switch {
	case ms >= 10_000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case ms >= 1000:
		return fmt.Sprintf("%.2f s", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	case ms >= 10:
		return fmt.Sprintf("%.1f ms", ms)
	}
	return fmt.Sprintf("%.2f ms", ms)
}

func fmtErrors(n, of int64) string {
	if n == 0 {
		return "0"
	}
	if of == 0 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d (%.1f%%)", n, 100*float64(n)/float64(of))
}

func fmtCores(c float64) string {
	if c < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", c)
}

func plural(n int, what string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", what)
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// ScenarioGroup is one scenario's runs on one host, one per server, the
// way the table shows them.
type ScenarioGroup struct {
	Scenario Scenario
	// Servers are the servers' labels in report order (Node before Go,
	// single before cluster): the mode, after the stack ("node single")
	// when the runs measured a stack other than go.
	Servers []string
	// Runs is each server's latest run, by label.
	Runs map[string]*Record
}

// Single is the run of the single server of the same stack as label, or
// nil.
func (g ScenarioGroup) Single(label string) *Record {
	return g.Runs[sibling(label, ModeSingle)]
}

// Groups returns runs' scenarios of kind (KindLoad or KindBlocking) for
// one host's runs, in run order.
func Groups(runs []*Record, kind string) []ScenarioGroup {
	var out []ScenarioGroup
	for _, g := range groups(runs, kind) {
		out = append(out, ScenarioGroup{Scenario: g.scenario, Servers: g.modes, Runs: g.byMode})
	}
	return out
}

// Hosts returns the hosts of runs in order of first appearance, and
// HostRuns one host's runs.
func Hosts(runs []*Record) []string { return hostsOf(runs) }

// HostRuns returns host's runs, in order.
func HostRuns(runs []*Record, host string) []*Record { return runsOf(runs, host) }

// FmtMS formats microseconds as the tables do ("4.20 ms", "3.20 s").
func FmtMS(us float64) string { return fmtMS(us) }

// WriteList writes stored runs one line each, as bench ls lists them: id,
// time, host, stack, server, scenario, tool, rps and p99 (for the blocking
// experiment, how long the short request waited) and errors.
func WriteList(w io.Writer, runs []*Record) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tWHEN\tHOST\tSTACK\tSERVER\tSCENARIO\tTOOL\tRPS\tP99\tERRORS")
	for _, x := range runs {
		p99 := "-"
		if l := x.Result.Latency; l != nil {
			p99 = fmt.Sprintf("%.1f ms", l.P99/1000)
		}
		if x.Scenario.Kind == KindBlocking && x.Result.Latency != nil {
			p99 = fmt.Sprintf("waited %.1f ms", x.Result.Latency.Max/1000)
		}
		stack := x.Server.StackName()
		if stack == "" {
			stack = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%s\t%d\n", x.ID, x.At.Local().Format("2006-01-02 15:04"), x.Host.Name,
			stack, x.Server.Mode, x.Scenario.Describe(), strings.TrimSpace(x.Tool.Name+" "+x.Tool.Version), x.Result.RPS, p99, x.Result.Errors.Total)
	}
	return tw.Flush()
}
