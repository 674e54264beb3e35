package bench

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"
)

// The 4-way comparison (deploylab bench --compare): the practice's Node app
// single and under PM2's cluster mode, and deploylab's Go servers single and
// clustered, measured on the same VM with the same client and scenarios.

// Stack is one of the compared servers.
type Stack struct {
	// Label names it in the table: "Node single", "Go cluster", ...
	Label string `json:"label"`
	// Lang is "node" or "go"; Mode is ModeSingle or ModeCluster.
	Lang string `json:"lang"`
	Mode string `json:"mode"`
	Port int    `json:"port"`
	// Unit is the systemd unit whose cgroup is measured ("" for the
	// processes listening on the port and their children).
	Unit string `json:"unit,omitempty"`
}

// Stack languages.
const (
	LangNode = "node"
	LangGo   = "go"
)

// DefaultStacks are the four servers as deploylab up and up --app node
// leave them: Node on 3100/3101 (PM2), Go on 3000/3001 (systemd).
func DefaultStacks() []Stack {
	return []Stack{
		{Label: "Node single", Lang: LangNode, Mode: ModeSingle, Port: 3100},
		{Label: "Node cluster (PM2)", Lang: LangNode, Mode: ModeCluster, Port: 3101},
		{Label: "Go single", Lang: LangGo, Mode: ModeSingle, Port: 3000, Unit: "deploylab-sumserver.service"},
		{Label: "Go cluster", Lang: LangGo, Mode: ModeCluster, Port: 3001, Unit: "deploylab-sumcluster.service"},
	}
}

// ShortPlanYAML is the demo's plan: the practice's scenarios, fewer
// requests, so that the four servers are measured in about a minute.
const ShortPlanYAML = `# deploylab's short plan (deploylab demo's default; --full runs the practice's).
servers:
  - {name: single, port: 3000}
warmup: {requests: 200, concurrency: 20}
scenarios:
  - {name: api-n1000, route: /api/500000, requests: 1000, concurrency: 100}
  - {name: root-n2000, route: /, requests: 2000, concurrency: 100}
  - {name: blocking, kind: blocking, route: /api/5000000000, probe: /, probes: 4, delay: 500ms}
`

// ShortPlan returns the parsed ShortPlanYAML.
func ShortPlan() *Plan {
	p, err := ParsePlan("short plan", []byte(ShortPlanYAML))
	if err != nil {
		panic("bench: the short plan is invalid: " + err.Error())
	}
	return p
}

// Comparison is the result of Compare.
type Comparison struct {
	Stacks  []Stack
	Records []*Record
}

// stackOf is the stack a record measured (by mode, port and, when the
// record stores it, stack), or nil.
func (c *Comparison) stackOf(r *Record) *Stack {
	for i := range c.Stacks {
		if c.Stacks[i].Port == r.Server.Port && c.Stacks[i].Mode == r.Server.Mode &&
			(r.Server.Stack == "" || r.Server.Stack == c.Stacks[i].Lang) {
			return &c.Stacks[i]
		}
	}
	return nil
}

// Compare runs opts.Plan's scenarios against the stacks on every target:
// first the Node pair, then the Go pair (each a bench Run with the plan's
// servers replaced), so that every server is measured by the same client
// on the same host. A nil stacks means DefaultStacks.
func Compare(ctx context.Context, targets []Target, stacks []Stack, opts Options) (*Comparison, error) {
	if stacks == nil {
		stacks = DefaultStacks()
	}
	base := opts.Plan
	if base == nil {
		base = DefaultPlan()
	}
	c := &Comparison{Stacks: stacks}
	var langs []string
	for _, s := range stacks {
		if !contains(langs, s.Lang) {
			langs = append(langs, s.Lang)
		}
	}
	// The sessions scenario runs clusters of its own: once, after the
	// stacks' passes, not once per stack.
	var perStack, sess []Scenario
	for _, s := range base.Scenarios {
		if s.Kind == KindSessions {
			sess = append(sess, s)
		} else {
			perStack = append(perStack, s)
		}
	}
	var plans []*Plan
	var names []string
	total := 0
	for _, lang := range langs {
		if len(perStack) == 0 {
			break
		}
		p := *base
		p.Servers = nil
		p.Scenarios = perStack
		for _, s := range stacks {
			if s.Lang == lang {
				p.Servers = append(p.Servers, Server{Name: s.Mode, Port: s.Port, Unit: s.Unit, Stack: s.Lang})
			}
		}
		plans = append(plans, &p)
		names = append(names, lang)
		total += PlanRuns(&p)
	}
	if len(sess) > 0 {
		p := &Plan{Source: base.Source, Scenarios: sess}
		plans = append(plans, p)
		names = append(names, "sessions")
		total += PlanRuns(p)
	}
	// One count per host over the passes: "[16/16]", not "[16/8]".
	inner := opts.Progress
	if inner == nil {
		inner = nopProgress{}
	}
	prog := newPasses(inner, total)
	opts.Progress = prog
	for i, lang := range names {
		prog.pass(i == len(names)-1)
		o := opts
		o.Plan = plans[i]
		if i > 0 {
			// A distinct batch (IDs are per second) for the second pair.
			now := o.Now
			if now == nil {
				now = time.Now
			}
			o.Now = func() time.Time { return now().Add(time.Duration(i) * time.Second) }
		}
		out, err := Run(ctx, targets, o)
		if out != nil {
			c.Records = append(c.Records, out.Records()...)
		}
		if err != nil {
			prog.finish(fmt.Errorf("stopped after the %s servers", lang))
			return c, fmt.Errorf("%s servers: %w", lang, err)
		}
	}
	prog.finish(nil)
	return c, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// WriteComparison prints, host by host, one table per load scenario with
// the four servers (rps, p50, p99, errors, server CPU per request, speedup
// against Node single), the speedups the practice asks about, and the
// blocking experiment for all four.
func WriteComparison(w io.Writer, c *Comparison) error {
	var b strings.Builder
	for i, host := range hostsOf(c.Records) {
		if i > 0 {
			b.WriteString("\n")
		}
		c.writeHost(&b, host, runsOf(c.Records, host))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cmpGroup is one scenario: per scenario, the record of each stack.
type cmpGroup struct {
	scenario Scenario
	byStack  map[string]*Record
}

func (c *Comparison) groups(runs []*Record, kind string) []*cmpGroup {
	var out []*cmpGroup
	idx := map[string]*cmpGroup{}
	for _, r := range runs {
		st := c.stackOf(r)
		if r.Scenario.Kind != kind || st == nil {
			continue
		}
		key := r.Scenario.Name + "\x00" + r.Scenario.Describe()
		g := idx[key]
		if g == nil {
			g = &cmpGroup{scenario: r.Scenario, byStack: map[string]*Record{}}
			idx[key] = g
			out = append(out, g)
		}
		g.byStack[st.Label] = r
	}
	return out
}

func (c *Comparison) writeHost(b *strings.Builder, host string, runs []*Record) {
	h := runs[0].Host
	head := host
	if h.Address != "" && h.Address != host {
		head += " (" + h.Address + ")"
	}
	var facts []string
	if h.CPUs > 0 {
		facts = append(facts, plural(h.CPUs, "CPU"))
	}
	if h.Kernel != "" {
		facts = append(facts, "Linux "+h.Kernel)
	}
	var tools []string
	for _, r := range runs {
		if r.Scenario.Kind != KindLoad {
			continue
		}
		t := strings.TrimSpace(r.Tool.Name + " " + r.Tool.Version)
		if !contains(tools, t) {
			tools = append(tools, t)
		}
	}
	facts = append(facts, "client: "+strings.Join(tools, ", ")+" on the host itself")
	fmt.Fprintf(b, "%s: %s\n", head, strings.Join(facts, ", "))

	byLabel := map[string]Stack{}
	for _, s := range c.Stacks {
		byLabel[s.Label] = s
	}
	for _, g := range c.groups(runs, KindLoad) {
		fmt.Fprintf(b, "\n%s\n", g.scenario.Describe())
		t := &table{right: []bool{false, true, true, true, true, true, true}}
		t.add("SERVER", "RPS", "P50", "P99", "ERRORS", "SERVER µs/REQ", "VS NODE SINGLE")
		base := g.byStack[c.Stacks[0].Label]
		for _, s := range c.Stacks {
			r := g.byStack[s.Label]
			if r == nil {
				t.add(s.Label, "-", "-", "-", "-", "-", "not measured")
				continue
			}
			res := r.Result
			row := []string{s.Label, fmt.Sprintf("%.0f", res.RPS)}
			if l := res.Latency; l != nil {
				row = append(row, fmtMS(l.P50), fmtMS(l.P99))
			} else {
				row = append(row, "-", "-")
			}
			row = append(row, fmtErrors(res.Errors.Total, res.Completed))
			if us := r.ServerCPUPerRequestUS(); us >= 0 {
				row = append(row, fmt.Sprintf("%.0f µs", us))
			} else {
				row = append(row, "-")
			}
			row = append(row, ratio(res.RPS, base))
			t.add(row...)
		}
		t.write(b)
		var sp []string
		for _, lang := range []string{LangNode, LangGo} {
			single, cluster := c.pick(g, lang, ModeSingle), c.pick(g, lang, ModeCluster)
			if single != nil && cluster != nil && single.Result.RPS > 0 {
				sp = append(sp, fmt.Sprintf("%s ×%.2f", langName(lang), cluster.Result.RPS/single.Result.RPS))
			}
		}
		var gn []string
		for _, mode := range []string{ModeSingle, ModeCluster} {
			n, g2 := c.pick(g, LangNode, mode), c.pick(g, LangGo, mode)
			if n != nil && g2 != nil && n.Result.RPS > 0 {
				gn = append(gn, fmt.Sprintf("%s ×%.2f", mode, g2.Result.RPS/n.Result.RPS))
			}
		}
		if len(sp) > 0 {
			fmt.Fprintf(b, "speedup of the cluster over the single server: %s\n", strings.Join(sp, ", "))
		}
		if len(gn) > 0 {
			fmt.Fprintf(b, "speedup of Go over Node: %s\n", strings.Join(gn, ", "))
		}
		for _, lang := range []string{LangNode, LangGo} {
			single, cluster := c.pick(g, lang, ModeSingle), c.pick(g, lang, ModeCluster)
			causes := Diagnose(single, cluster)
			if causes == nil {
				continue
			}
			fmt.Fprintf(b, "! %s single beats %s: %.0f vs %.0f rps. Likely causes, from the figures:\n",
				langName(lang), c.labelOf(lang, ModeCluster), single.Result.RPS, cluster.Result.RPS)
			for _, cause := range causes {
				fmt.Fprintf(b, "  - %s\n", cause.Text)
			}
		}
	}
	if blk := c.groups(runs, KindBlocking); len(blk) > 0 {
		for _, g := range blk {
			fmt.Fprintf(b, "\nBLOCKING EXPERIMENT: %s\n", g.scenario.Describe())
			t := &table{right: []bool{false, true, false, false}}
			t.add("SERVER", "HEAVY", "EACH LIGHT REQUEST WAITED", "VERDICT")
			for _, s := range c.Stacks {
				r := g.byStack[s.Label]
				if r == nil {
					t.add(s.Label, "-", "-", "not measured")
					continue
				}
				bl := ReadBlocking(r)
				t.add(s.Label, fmtHeavy(bl), fmtWaits(bl), bl.Verdict)
				if bl.Why != "" {
					t.note("  " + bl.Why)
				}
			}
			t.write(b)
		}
	}
	if len(SessionsRows(runs)) > 0 {
		b.WriteString("\n")
		writeSessionsTable(b, runs)
	}
	b.WriteString("RPS: requests per second; P50/P99: latency percentiles; SERVER µs/REQ: the server's CPU time per request\n")
	b.WriteString("(Go: its unit's cgroup; Node: the listening processes' trees, PM2's daemon included).\n")
}

func (c *Comparison) pick(g *cmpGroup, lang, mode string) *Record {
	for _, s := range c.Stacks {
		if s.Lang == lang && s.Mode == mode {
			return g.byStack[s.Label]
		}
	}
	return nil
}

// labelOf is the label of the stack of lang in mode.
func (c *Comparison) labelOf(lang, mode string) string {
	for _, s := range c.Stacks {
		if s.Lang == lang && s.Mode == mode {
			return s.Label
		}
	}
	return langName(lang) + " " + mode
}

func langName(lang string) string {
	if lang == LangGo {
		return "Go"
	}
	return "Node"
}

func ratio(rps float64, base *Record) string {
	if base == nil || base.Result == nil || base.Result.RPS <= 0 {
		return "-"
	}
	return fmt.Sprintf("×%.2f", rps/base.Result.RPS)
}
