package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
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
	t := &table{right: []bool{false, false, true, true, true, false}}
	t.add("BLOCKING EXPERIMENT", "SERVER", "HEAVY", "WAIT MAX", "WAIT MEAN", "VERDICT")
	for _, g := range gs {
		for i, server := range g.modes {
			r := g.byMode[server]
			label := ""
			if i == 0 {
				label = g.scenario.Describe()
			}
			heavy := "-"
			if r.Heavy != nil && r.Heavy.Latency != nil {
				heavy = fmtMS(r.Heavy.Latency.Max)
			}
			wmax, wmean := "-", "-"
			if l := r.Result.Latency; l != nil {
				wmax, wmean = fmtMS(l.Max), fmtMS(l.Mean)
			}
			t.add(label, server, heavy, wmax, wmean, blockingVerdict(r))
		}
	}
	t.write(b)
}

// Blocked reports whether a blocking run's light requests waited for the
// heavy one: their longest wait is over a quarter of the heavy request's
// time and over 200 ms.
func Blocked(r *Record) bool {
	if r.Result == nil || r.Result.Latency == nil || r.Heavy == nil || r.Heavy.Latency == nil {
		return false
	}
	wait := r.Result.Latency.Max
	return wait > 200_000 && wait > r.Heavy.Latency.Max/4
}

func blockingVerdict(r *Record) string {
	switch {
	case r.Result == nil || r.Result.Latency == nil:
		return "no answer"
	case r.Result.Errors.Total > 0:
		return fmt.Sprintf("%d of %d light requests failed", r.Result.Errors.Total, r.Result.Completed)
	case Blocked(r):
		return "blocked: the light requests waited for the heavy one"
	}
	return "not blocked: answered while the heavy one ran"
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
