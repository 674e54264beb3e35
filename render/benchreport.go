package render

import (
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/internal/atomicfile"
)

// BenchOptions say what a bench report shows besides the runs.
type BenchOptions struct {
	// Title heads the page; "" means "deploylab bench".
	Title string
	// Version is deploylab's version line, shown at the foot.
	Version string
	// Generated is when the report was made; zero leaves it out (goldens).
	Generated time.Time
	// Live adds the inline script that reloads the report when the live
	// server says a run finished (see Live).
	Live bool
}

// BenchReport is a bench report: one section per host, with its charts.
type BenchReport struct {
	opts BenchOptions
	// Runs is the number of runs shown.
	Runs   int
	Hosts  []hostSection
	Charts []Chart
}

type hostSection struct {
	Name   string
	Facts  []string
	Tools  []string
	Loads  []loadSection
	Blocks []blockSection
	// Sessions are the stateful cluster's runs (bench --plan sessions),
	// one row per mode, and what they measured.
	Sessions         []bench.SessionsRow
	SessionsDescribe string
}

type loadSection struct {
	Describe  string
	Rows      []loadRow
	Charts    []Chart
	Workers   []string
	Diagnosis []diagnosis
	Notes     []string
}

type loadRow struct {
	Server, RPS, Mean, P50, P90, P99, P999, Errors, Speedup, Client, ServerCPU, PerReq string
}

type diagnosis struct {
	What   string
	Causes []string
	Win    bool
}

type blockSection struct {
	Describe string
	Chart    Chart
	Rows     []blockRow
}

type blockRow struct {
	Server, Heavy, Waits, Verdict, Why string
	Waited                             int
}

// BuildBench lays out the report of runs (any hosts, any scenarios): the
// same grouping as deploylab bench's table, with a chart per view.
func BuildBench(runs []*bench.Record, o BenchOptions) *BenchReport {
	rep := &BenchReport{opts: o, Runs: len(runs)}
	for _, host := range bench.Hosts(runs) {
		hr := bench.HostRuns(runs, host)
		hs := hostSection{Name: host, Facts: hostFacts(hr[0].Host)}
		for _, r := range hr {
			t := strings.TrimSpace(r.Tool.Name + " " + r.Tool.Version)
			if r.Tool.Cores > 0 {
				t += fmt.Sprintf(" on %d core%s", r.Tool.Cores, plural(r.Tool.Cores))
			}
			if t != "" && !contains(hs.Tools, t) {
				hs.Tools = append(hs.Tools, t)
			}
		}
		for _, g := range bench.Groups(hr, bench.KindLoad) {
			hs.Loads = append(hs.Loads, loadOf(host, g))
		}
		for _, g := range bench.Groups(hr, bench.KindBlocking) {
			hs.Blocks = append(hs.Blocks, blockOf(host, g))
		}
		hs.Sessions = bench.SessionsRows(hr)
		for _, r := range hr {
			if r.Scenario.Kind == bench.KindSessions {
				sc := r.Scenario
				hs.SessionsDescribe = fmt.Sprintf("%d users × %d GET /me on %d workers, fresh connections, kill -9 and recycle of a worker mid-run", sc.Users, sc.Gets, sc.Workers)
			}
		}
		for _, l := range hs.Loads {
			rep.Charts = append(rep.Charts, l.Charts...)
		}
		for _, b := range hs.Blocks {
			rep.Charts = append(rep.Charts, b.Chart)
		}
		rep.Hosts = append(rep.Hosts, hs)
	}
	return rep
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func hostFacts(h bench.HostInfo) []string {
	var f []string
	if h.Student != "" {
		f = append(f, h.Student)
	}
	if h.Address != "" && h.Address != h.Name {
		f = append(f, h.Address)
	}
	if h.CPUs > 0 {
		f = append(f, fmt.Sprintf("%d CPU%s", h.CPUs, plural(h.CPUs)))
	}
	if h.MemTotal > 0 {
		f = append(f, fmt.Sprintf("%.1f GiB of memory", float64(h.MemTotal)/(1<<30)))
	}
	if h.OS != "" {
		f = append(f, h.OS)
	}
	if h.Kernel != "" {
		f = append(f, "Linux "+h.Kernel)
	}
	if h.Arch != "" {
		f = append(f, h.Arch)
	}
	return f
}

func cores(c float64) string {
	if c < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", c)
}

func loadOf(host string, g bench.ScenarioGroup) loadSection {
	ls := loadSection{Describe: g.Scenario.Describe()}
	for _, label := range g.Servers {
		r := g.Runs[label]
		res := r.Result
		row := loadRow{Server: label, RPS: fmt.Sprintf("%.0f", res.RPS), Mean: "-", P50: "-", P90: "-", P99: "-", P999: "-",
			Errors: fmt.Sprint(res.Errors.Total), Speedup: speedup(g, label),
			Client: cores(r.CPU.ClientCores()), ServerCPU: cores(r.CPU.ServerCores()), PerReq: "-"}
		if l := res.Latency; l != nil {
			row.Mean, row.P50, row.P90, row.P99 = bench.FmtMS(l.Mean), bench.FmtMS(l.P50), bench.FmtMS(l.P90), bench.FmtMS(l.P99)
			if l.P999 != nil {
				row.P999 = bench.FmtMS(*l.P999)
			}
		}
		if us := r.ServerCPUPerRequestUS(); us >= 0 {
			row.PerReq = fmt.Sprintf("%.0f µs", us)
		}
		ls.Rows = append(ls.Rows, row)
		if len(r.Workers) > 0 {
			var parts []string
			for _, w := range r.Workers {
				parts = append(parts, fmt.Sprintf("#%d %d", w.Slot, w.Requests))
			}
			ls.Workers = append(ls.Workers, label+": "+strings.Join(parts, ", "))
		}
		if res.Interrupted {
			ls.Notes = append(ls.Notes, label+": interrupted, the figures cover the part that ran")
		}
		single := g.Single(label)
		if r.Server.Mode != bench.ModeCluster || single == nil || single.Result.RPS <= 0 {
			continue
		}
		stack := strings.TrimSuffix(label, bench.ModeCluster)
		if causes := bench.Diagnose(single, r); causes != nil {
			d := diagnosis{What: fmt.Sprintf("The %ssingle server beats the %scluster: %.0f vs %.0f requests/s. Likely causes, from the figures:", stack, stack, single.Result.RPS, res.RPS)}
			for _, c := range causes {
				d.Causes = append(d.Causes, c.Text)
			}
			ls.Diagnosis = append(ls.Diagnosis, d)
		} else {
			what := fmt.Sprintf("The %scluster served ×%.2f the requests per second of the %ssingle server (%.0f vs %.0f)", stack, res.RPS/single.Result.RPS, stack, res.RPS, single.Result.RPS)
			if w := max(r.Server.Workers, len(r.Workers)); w > 1 {
				what += fmt.Sprintf(": its %d workers share the work over the host's CPUs", w)
			}
			ls.Diagnosis = append(ls.Diagnosis, diagnosis{What: what + ".", Win: true})
		}
	}
	ls.Charts = append(ls.Charts, rpsChart(host, g))
	if c, ok := latencyChart(host, g); ok {
		ls.Charts = append(ls.Charts, c)
	}
	if c, ok := timelineChart(host, g); ok {
		ls.Charts = append(ls.Charts, c)
	}
	if c, ok := workersChart(host, g); ok {
		ls.Charts = append(ls.Charts, c)
	}
	if c, ok := cpuChart(host, g); ok {
		ls.Charts = append(ls.Charts, c)
	}
	return ls
}

func blockOf(host string, g bench.ScenarioGroup) blockSection {
	bs := blockSection{Describe: g.Scenario.Describe(), Chart: blockingChart(host, g)}
	for _, label := range g.Servers {
		bl := bench.ReadBlocking(g.Runs[label])
		row := blockRow{Server: label, Heavy: "-", Verdict: bl.Verdict, Why: bl.Why, Waited: bl.WaitedN}
		if bl.HeavyUS >= 0 {
			row.Heavy = bench.FmtMS(bl.HeavyUS)
		}
		var waits []string
		for _, l := range bl.Lights {
			waits = append(waits, bench.FmtMS(l.WaitUS))
		}
		row.Waits = strings.Join(waits, ", ")
		if len(waits) == 0 && bl.MaxWaitUS > 0 {
			row.Waits = "up to " + bench.FmtMS(bl.MaxWaitUS)
		}
		bs.Rows = append(bs.Rows, row)
	}
	return bs
}

// WriteHTML writes the report as one self-contained HTML page: inline CSS
// and SVG, no script (but the live page's), nothing fetched.
func (r *BenchReport) WriteHTML(w io.Writer) error {
	return benchTmpl.ExecuteTemplate(w, "page", r.data())
}

// WriteFragment writes only the report's body (the live page swaps it in).
func (r *BenchReport) WriteFragment(w io.Writer) error {
	return benchTmpl.ExecuteTemplate(w, "body", r.data())
}

func (r *BenchReport) data() map[string]any {
	title := r.opts.Title
	if title == "" {
		title = "deploylab bench"
	}
	gen := ""
	if !r.opts.Generated.IsZero() {
		gen = r.opts.Generated.UTC().Format("2006-01-02 15:04 UTC")
	}
	return map[string]any{"Title": title, "Version": r.opts.Version, "Generated": gen, "Live": r.opts.Live, "R": r}
}

// WriteFile writes the report to path atomically.
func (r *BenchReport) WriteFile(path string) error {
	var b strings.Builder
	if err := r.WriteHTML(&b); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, []byte(b.String()), 0o644)
}

// WriteCharts writes each chart as dir/<name>.svg and returns the paths.
func WriteCharts(dir string, charts []Chart) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("charts: %w", err)
	}
	var out []string
	for _, c := range charts {
		p := filepath.Join(dir, c.Name+".svg")
		if err := atomicfile.WriteFile(p, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n"+c.SVG), 0o644); err != nil {
			return out, fmt.Errorf("charts: %w", err)
		}
		out = append(out, p)
	}
	return out, nil
}

// svgHTML marks a chart's SVG, built with every text escaped, as safe.
func svgHTML(c Chart) template.HTML { return template.HTML(c.SVG) } //nolint:gosec // built by svgDoc, which escapes every value

var benchTmpl = template.Must(template.New("root").Funcs(template.FuncMap{"svg": svgHTML}).Parse(pageCSS + benchPage))

const benchPage = `{{define "page"}}<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<link rel="icon" href="data:,">
<style>{{template "css"}}</style>
</head>
<body>
<main id="report">{{template "body" .}}</main>
{{if .Live}}<script>
(function () {
  var es = new EventSource("/events");
  es.addEventListener("update", function () {
    fetch("/fragment").then(function (r) { return r.text(); }).then(function (t) {
      document.getElementById("report").innerHTML = t;
      document.body.setAttribute("data-updates", String(Number(document.body.getAttribute("data-updates") || "0") + 1));
    });
  });
  es.addEventListener("done", function () { es.close(); document.body.setAttribute("data-done", "true"); });
})();
</script>{{end}}
</body>
</html>
{{end}}{{define "body"}}<header id="runs" data-runs="{{.R.Runs}}">
<h1>{{.Title}}</h1>
<p class="meta">{{if .Generated}}{{.Generated}} · {{end}}{{if .Version}}{{.Version}}{{end}}{{if .Live}} · <span class="live">live: updates as each run finishes</span>{{end}}</p>
</header>
{{if not .R.Hosts}}<p class="empty">No run has finished yet.</p>{{end}}
{{range .R.Hosts}}<section class="host">
<h2>{{.Name}}</h2>
<p class="facts">{{range $i, $f := .Facts}}{{if $i}} · {{end}}{{$f}}{{end}}{{if .Tools}} · load generator on the host itself: {{range $i, $t := .Tools}}{{if $i}}, {{end}}{{$t}}{{end}}{{end}}</p>
{{range .Loads}}<section class="scenario">
<h3>{{.Describe}}</h3>
<table class="figures">
<thead><tr><th>server</th><th>rps</th><th>speedup</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>errors</th><th>CPU client</th><th>CPU server</th><th>server µs/req</th></tr></thead>
<tbody>{{range .Rows}}<tr><td>{{.Server}}</td><td>{{.RPS}}</td><td>{{.Speedup}}</td><td>{{.Mean}}</td><td>{{.P50}}</td><td>{{.P90}}</td><td>{{.P99}}</td><td>{{.P999}}</td><td>{{.Errors}}</td><td>{{.Client}}</td><td>{{.ServerCPU}}</td><td>{{.PerReq}}</td></tr>
{{end}}</tbody>
</table>
{{range .Diagnosis}}<div class="diagnosis{{if .Win}} win{{end}}"><p>{{.What}}</p>{{if .Causes}}<ul>{{range .Causes}}<li>{{.}}</li>{{end}}</ul>{{end}}</div>
{{end}}{{range .Notes}}<p class="note">{{.}}</p>{{end}}
<div class="charts">{{range .Charts}}<figure class="chart" data-kind="{{.Kind}}" data-name="{{.Name}}">{{svg .}}</figure>
{{end}}</div>
{{if .Workers}}<p class="workers">Requests served per cluster worker: {{range $i, $w := .Workers}}{{if $i}}; {{end}}{{$w}}{{end}}</p>{{end}}
</section>
{{end}}{{range .Blocks}}<section class="scenario blocking">
<h3>Blocking experiment: {{.Describe}}</h3>
<p class="lesson">One heavy request, then, while it computes, a few light ones. A server that handles one request at a time makes every light request wait; a cluster answers them from its other workers — except that Node's cluster (and PM2's) hands connections round-robin, so a light request sent to the busy worker waits too; a scheduler that picks the least busy worker makes none wait.</p>
<figure class="chart" data-kind="{{.Chart.Kind}}" data-name="{{.Chart.Name}}">{{svg .Chart}}</figure>
<table class="figures">
<thead><tr><th>server</th><th>heavy request</th><th>each light request waited</th><th>verdict</th></tr></thead>
<tbody>{{range .Rows}}<tr><td>{{.Server}}</td><td>{{.Heavy}}</td><td>{{.Waits}}</td><td class="verdict">{{.Verdict}}{{if .Why}}<br><span class="why">{{.Why}}</span>{{end}}</td></tr>
{{end}}</tbody>
</table>
</section>
{{end}}{{if .Sessions}}<section class="scenario sessions">
<h3>Sessions: {{.SessionsDescribe}}</h3>
<p class="lesson">A server that keeps its users' tokens in memory breaks under a cluster: the next request lands on another worker, which does not know the token. The master can relay every new and revoked token to the other workers (and hand the whole set to a new worker), or the server can keep no state at all with signed tokens, which a logout cannot revoke before they expire.</p>
<table class="figures">
<thead><tr><th>mode</th><th>lost follow-ups</th><th>lost at once</th><th>new token p50</th><th>p99</th><th>logout p99</th><th>leaks after logout</th><th>GET /me rps</th></tr></thead>
<tbody>{{range .Sessions}}<tr><td>{{.Mode}}</td><td>{{.Lost}}</td><td>{{.Early}}</td><td>{{.PropP50}}</td><td>{{.PropP99}}</td><td>{{.Logout}}</td><td>{{.Leaks}}</td><td>{{.RPS}}</td></tr>
{{end}}</tbody>
</table>
{{range .Sessions}}<div class="diagnosis"><p>{{.Explanation}}</p></div>
{{end}}</section>
{{end}}</section>
{{end}}<footer><p>Made by {{if .Version}}{{.Version}}{{else}}deploylab{{end}}. Figures from the results stored by deploylab bench (one JSON file per run). rps: requests per second; pNN: latency percentiles from the load generator's HDR histogram; CPU: cores busy on average during the run.</p></footer>
{{end}}`

const pageCSS = `{{define "css"}}
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", Arial, Helvetica, sans-serif; margin: 0 auto; max-width: 1360px; padding: 16px 24px; color: #222; background: #fff; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 20px; border-bottom: 2px solid #1f77b4; padding-bottom: 4px; margin-top: 28px; }
h3 { font-size: 16px; margin: 20px 0 8px; }
.meta, .facts, .note, footer { color: #555; font-size: 13px; }
table.figures { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
table.figures th, table.figures td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.figures th:first-child, table.figures td:first-child, td.verdict { text-align: left; }
table.figures thead th { background: #f0f4f8; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 8px 0; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { max-width: 100%; height: auto; border: 1px solid #e4e4e4; }
.diagnosis { border-left: 4px solid #d62728; background: #fdf3f3; padding: 6px 12px; margin: 8px 0; font-size: 14px; }
.diagnosis.win { border-color: #2ca02c; background: #f2f9f2; }
.diagnosis p { margin: 4px 0; }
.why { color: #555; font-size: 12px; }
.lesson { font-size: 14px; max-width: 900px; }
.live { color: #d62728; font-weight: bold; }
.cell-pass { background: #c8e6c9; } .cell-partial { background: #fff3b0; } .cell-fail { background: #f4c7c3; } .cell-error { background: #d9d9d9; } .cell-manual { background: #fff; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; }
  section.host + section.host, section.student { break-before: page; page-break-before: always; }
  section.scenario { break-inside: auto; }
  a { color: inherit; text-decoration: none; }
}
{{end}}`
