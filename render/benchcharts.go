package render

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/payload/loadgen"
)

// The bench charts. Each takes one host's scenario (bench.Groups) and
// draws every server measured in it. Bars and their value axes start at 0;
// the latency percentiles are on a logarithmic axis (they span decades).

const (
	chartW = 640.0
	plotL  = 72.0 // left margin: the value axis's labels
	plotR  = 20.0
)

func fval(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// chartName makes a file name from parts: lower case, [a-z0-9-].
func chartName(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if b.Len() > 0 {
			b.WriteByte('-')
		}
		dash := false
		for _, c := range strings.ToLower(p) {
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
				b.WriteRune(c)
				dash = false
			default:
				if !dash && b.Len() > 0 {
					b.WriteByte('-')
					dash = true
				}
			}
		}
	}
	return strings.Trim(b.String(), "-")
}

// speedup is the cluster's rps over its stack's single server's, "" when
// label is not a cluster or has no single to compare with.
func speedup(g bench.ScenarioGroup, label string) string {
	r := g.Runs[label]
	single := g.Single(label)
	if r.Server.Mode != bench.ModeCluster || single == nil || single.Result == nil || single.Result.RPS <= 0 {
		return ""
	}
	return fmt.Sprintf("×%.2f", r.Result.RPS/single.Result.RPS)
}

// rpsChart: requests per second per server as bars from 0, the cluster's
// speedup over the single server written on its bar.
func rpsChart(host string, g bench.ScenarioGroup) Chart {
	title := "Requests per second — " + g.Scenario.Describe()
	const h = 330.0
	top, ph := 56.0, h-56-56
	pw := chartW - plotL - plotR
	vmax := 0.0
	for _, l := range g.Servers {
		vmax = max(vmax, g.Runs[l].Result.RPS)
	}
	s := newSVG(chartW, h, "rps", title)
	p := s.valueAxis(plotL, top, pw, ph, vmax, "requests/s")
	slot := pw / float64(len(g.Servers))
	bw := min(slot*0.6, 110)
	for i, label := range g.Servers {
		r := g.Runs[label]
		v := r.Result.RPS
		x := plotL + slot*float64(i) + (slot-bw)/2
		y := p.y(v)
		s.rect(x, y, bw, p.y(0)-y, palette[i%len(palette)], "class", "bar", "data-value", fval(v), "data-series", label)
		s.text(x+bw/2, y-6, "middle", fmt.Sprintf("%.0f", v), "class", "value")
		if sp := speedup(g, label); sp != "" {
			if p.y(0)-y > 30 {
				s.text(x+bw/2, y+20, "middle", sp, "class", "speedup", "fill", "#fff", "font-weight", "bold", "font-size", "15")
			} else {
				s.text(x+bw/2, y-22, "middle", sp, "class", "speedup", "font-weight", "bold", "font-size", "15")
			}
		}
		s.text(x+bw/2, top+ph+18, "middle", label, "class", "category")
		if e := r.Result.Errors.Total; e > 0 {
			s.text(x+bw/2, top+ph+34, "middle", fmt.Sprintf("%d errors", e), "fill", colWaited)
		}
	}
	return Chart{Name: chartName(host, g.Scenario.Name, "rps"), Kind: "rps", Title: title, SVG: s.String()}
}

// percentiles are the latency chart's x positions.
var percentiles = []struct {
	name string
	get  func(l *latency) (float64, bool)
}{
	{"p50", func(l *latency) (float64, bool) { return l.P50, true }},
	{"p90", func(l *latency) (float64, bool) { return l.P90, true }},
	{"p95", func(l *latency) (float64, bool) { return l.P95, true }},
	{"p99", func(l *latency) (float64, bool) { return l.P99, true }},
	{"p99.9", func(l *latency) (float64, bool) {
		if l.P999 == nil {
			return 0, false
		}
		return *l.P999, true
	}},
}

// fmtDur formats microseconds for an axis: 100 µs, 1 ms, 1 s.
func fmtDur(us float64) string {
	switch {
	case us >= 1e6:
		return fmtTick(us/1e6) + " s"
	case us >= 1e3:
		return fmtTick(us/1e3) + " ms"
	}
	return fmtTick(us) + " µs"
}

// latencyChart: each server's latency percentiles (p50 … p99.9, from the
// load generator's HDR histogram) as a curve on a logarithmic axis.
func latencyChart(host string, g bench.ScenarioGroup) (Chart, bool) {
	title := "Latency percentiles — " + g.Scenario.Describe()
	lo, hi := math.Inf(1), 0.0
	for _, l := range g.Servers {
		if lat := g.Runs[l].Result.Latency; lat != nil {
			for _, pc := range percentiles {
				if v, ok := pc.get(lat); ok && v > 0 {
					lo, hi = min(lo, v), max(hi, v)
				}
			}
		}
	}
	if hi == 0 {
		return Chart{}, false
	}
	const h = 330.0
	top, ph := 56.0, h-56-60
	pw := chartW - plotL - plotR
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi <= dlo {
		dhi = dlo + 1
	}
	yOf := func(v float64) float64 { return top + ph - ph*(math.Log10(v)-dlo)/(dhi-dlo) }
	s := newSVG(chartW, h, "latency", title)
	s.open("g", "class", "axis", "data-axis", "y", "data-scale", "log", "data-min", fval(math.Pow(10, dlo)), "data-max", fval(math.Pow(10, dhi)))
	for d := dlo; d <= dhi; d++ {
		y := yOf(math.Pow(10, d))
		s.line(plotL, y, plotL+pw, y, colGrid)
		s.text(plotL-6, y+4, "end", fmtDur(math.Pow(10, d)), "class", "tick")
	}
	s.line(plotL, top, plotL, top+ph, colAxis)
	s.line(plotL, top+ph, plotL+pw, top+ph, colAxis)
	s.text(8, top-10, "start", "latency (log scale)", "fill", colMuted)
	s.close("g")
	step := pw / float64(len(percentiles))
	xOf := func(i int) float64 { return plotL + step*(float64(i)+0.5) }
	for i, pc := range percentiles {
		s.text(xOf(i), top+ph+18, "middle", pc.name, "class", "category")
	}
	for si, label := range g.Servers {
		lat := g.Runs[label].Result.Latency
		if lat == nil {
			continue
		}
		col := palette[si%len(palette)]
		var xs, ys []float64
		s.open("g", "class", "series", "data-series", label)
		for i, pc := range percentiles {
			v, ok := pc.get(lat)
			if !ok || v <= 0 {
				continue
			}
			xs, ys = append(xs, xOf(i)), append(ys, yOf(v))
		}
		s.polyline(xs, ys, col, "data-points", strconv.Itoa(len(xs)))
		for i, pc := range percentiles {
			if v, ok := pc.get(lat); ok && v > 0 {
				s.circle(xOf(i), yOf(v), 4, col, "class", "pt", "data-value", fval(v), "data-name", pc.name)
			}
		}
		s.close("g")
	}
	s.legend(plotL, h-14, g.Servers, palette)
	return Chart{Name: chartName(host, g.Scenario.Name, "latency"), Kind: "latency", Title: title, SVG: s.String()}, true
}

// maxTimelinePoints bounds a drawn timeline: longer ones (a stored result
// may come from anywhere) are merged into wider intervals.
const maxTimelinePoints = 600

// timelineOf is a run's timeline as (interval, counts), merged to at most
// maxTimelinePoints intervals; ok is false when there is none.
func timelineOf(r *bench.Record) (float64, []int64, bool) {
	tl := r.Result.Timeline
	if tl == nil || !(tl.IntervalS > 0) || len(tl.Completed) == 0 {
		return 0, nil, false
	}
	k := (len(tl.Completed) + maxTimelinePoints - 1) / maxTimelinePoints
	out := make([]int64, (len(tl.Completed)+k-1)/k)
	for i, n := range tl.Completed {
		out[i/k] += max(n, 0)
	}
	return tl.IntervalS * float64(k), out, true
}

// timelineChart: each server's requests per second over its run, from the
// load generator's timeline, so that a stall or a warm-up shows.
func timelineChart(host string, g bench.ScenarioGroup) (Chart, bool) {
	title := "Throughput over the run — " + g.Scenario.Describe()
	tmax, vmax := 0.0, 0.0
	any := false
	for _, l := range g.Servers {
		iv, counts, ok := timelineOf(g.Runs[l])
		if !ok {
			continue
		}
		any = true
		tmax = max(tmax, iv*float64(len(counts)))
		for _, n := range counts {
			vmax = max(vmax, float64(n)/iv)
		}
	}
	if !any {
		return Chart{}, false
	}
	const h = 330.0
	top, ph := 56.0, h-56-60
	pw := chartW - plotL - plotR
	s := newSVG(chartW, h, "timeline", title)
	p := s.valueAxis(plotL, top, pw, ph, vmax, "requests/s")
	ttop, tstep := niceMax(tmax)
	xOf := func(t float64) float64 { return plotL + pw*t/ttop }
	for t := 0.0; t <= ttop*(1+1e-9); t += tstep {
		s.text(xOf(t), top+ph+16, "middle", fmtTick(t)+" s", "class", "tick")
	}
	var names []string
	for si, label := range g.Servers {
		iv, counts, ok := timelineOf(g.Runs[label])
		if !ok {
			continue
		}
		var xs, ys []float64
		for i, n := range counts {
			xs = append(xs, xOf(iv*(float64(i)+0.5)))
			ys = append(ys, p.y(float64(n)/iv))
		}
		s.polyline(xs, ys, palette[si%len(palette)], "class", "series", "data-series", label,
			"data-points", strconv.Itoa(len(xs)), "data-interval-s", fval(iv))
		names = append(names, label)
	}
	s.legend(plotL, h-14, names, palette)
	return Chart{Name: chartName(host, g.Scenario.Name, "timeline"), Kind: "timeline", Title: title, SVG: s.String()}, true
}

// workersChart: requests served by each cluster worker during the run
// (balance), from 0.
func workersChart(host string, g bench.ScenarioGroup) (Chart, bool) {
	title := "Requests per cluster worker — " + g.Scenario.Describe()
	type bar struct {
		label string
		v     float64
		col   string
	}
	var bars []bar
	var groups []string
	for si, l := range g.Servers {
		r := g.Runs[l]
		if len(r.Workers) == 0 {
			continue
		}
		groups = append(groups, l)
		for _, w := range r.Workers {
			bars = append(bars, bar{fmt.Sprintf("%s #%d", l, w.Slot), float64(w.Requests), palette[si%len(palette)]})
		}
	}
	if len(bars) == 0 {
		return Chart{}, false
	}
	const h = 330.0
	top, ph := 56.0, h-56-56
	pw := chartW - plotL - plotR
	vmax := 0.0
	for _, b := range bars {
		vmax = max(vmax, b.v)
	}
	s := newSVG(chartW, h, "workers", title)
	p := s.valueAxis(plotL, top, pw, ph, vmax, "requests")
	slot := pw / float64(len(bars))
	bw := min(slot*0.7, 80)
	for i, b := range bars {
		x := plotL + slot*float64(i) + (slot-bw)/2
		y := p.y(b.v)
		s.rect(x, y, bw, p.y(0)-y, b.col, "class", "bar", "data-value", fval(b.v), "data-series", b.label)
		s.text(x+bw/2, y-6, "middle", fmt.Sprintf("%.0f", b.v), "class", "value")
		s.text(x+bw/2, top+ph+18, "middle", b.label, "class", "category", "font-size", "11")
	}
	return Chart{Name: chartName(host, g.Scenario.Name, "workers"), Kind: "workers", Title: title, SVG: s.String()}, true
}

// cpuChart: the client's and the server's CPU use (cores busy on average)
// per server, from 0, with the host's CPUs marked.
func cpuChart(host string, g bench.ScenarioGroup) (Chart, bool) {
	title := "CPU: client vs server — " + g.Scenario.Describe()
	vmax, cpus := 0.0, 0
	known := false
	for _, l := range g.Servers {
		r := g.Runs[l]
		if c := r.CPU.ClientCores(); c >= 0 {
			vmax, known = max(vmax, c), true
		}
		if c := r.CPU.ServerCores(); c >= 0 {
			vmax, known = max(vmax, c), true
		}
		cpus = max(cpus, r.Host.CPUs)
	}
	if !known {
		return Chart{}, false
	}
	vmax = max(vmax, float64(cpus))
	const h = 330.0
	top, ph := 56.0, h-56-60
	pw := chartW - plotL - plotR
	s := newSVG(chartW, h, "cpu", title)
	p := s.valueAxis(plotL, top, pw, ph, vmax, "cores")
	if cpus > 0 {
		y := p.y(float64(cpus))
		s.line(plotL, y, plotL+pw, y, colWaited, "stroke-dasharray", "6 4", "class", "cpus")
		s.text(plotL+pw-4, y-5, "end", fmt.Sprintf("the host's %d CPUs", cpus), "fill", colWaited)
	}
	slot := pw / float64(len(g.Servers))
	bw := min(slot*0.35, 60)
	cols := []string{"#9467bd", "#17becf"}
	for i, l := range g.Servers {
		r := g.Runs[l]
		x0 := plotL + slot*float64(i) + slot/2 - bw
		for j, v := range []float64{r.CPU.ClientCores(), r.CPU.ServerCores()} {
			x := x0 + bw*float64(j)
			series := []string{"client", "server"}[j]
			if v < 0 {
				s.text(x+bw/2, p.y(0)-6, "middle", "?", "class", "unknown", "data-series", l+" "+series)
				continue
			}
			y := p.y(v)
			s.rect(x, y, bw-2, p.y(0)-y, cols[j], "class", "bar", "data-value", fval(v), "data-series", l+" "+series)
			s.text(x+bw/2, y-6, "middle", fmt.Sprintf("%.2f", v), "class", "value", "font-size", "11")
		}
		s.text(plotL+slot*(float64(i)+0.5), top+ph+18, "middle", l, "class", "category")
	}
	s.legend(plotL, h-14, []string{"client (load generator)", "server (all its processes)"}, cols)
	return Chart{Name: chartName(host, g.Scenario.Name, "cpu"), Kind: "cpu", Title: title, SVG: s.String()}, true
}

// blockingChart: the blocking experiment as a timeline, per server: the
// heavy request as one long bar from 0, and each light request as its own
// bar from when it was sent, red when it waited for the heavy one.
func blockingChart(host string, g bench.ScenarioGroup) Chart {
	title := "Blocking experiment — " + g.Scenario.Describe()
	const rowH, gap = 20.0, 14.0
	delayUS := float64(time.Duration(g.Scenario.Delay).Microseconds())
	type lane struct {
		label  string
		bl     bench.Blocking
		lights []bench.LightRequest
		exact  bool
	}
	var lanes []lane
	tmax, rows := 0.0, 0
	for _, l := range g.Servers {
		bl := bench.ReadBlocking(g.Runs[l])
		ln := lane{label: l, bl: bl, lights: bl.Lights, exact: true}
		if len(ln.lights) == 0 && bl.MaxWaitUS > 0 {
			// An older result: only the longest wait is known.
			ln.lights = []bench.LightRequest{{StartUS: delayUS, WaitUS: bl.MaxWaitUS, Waited: bl.WaitedN != 0}}
			ln.exact = false
		}
		for i := range ln.lights {
			if ln.lights[i].StartUS < 0 {
				ln.lights[i].StartUS = delayUS
			}
			tmax = max(tmax, ln.lights[i].StartUS+ln.lights[i].WaitUS)
		}
		tmax = max(tmax, bl.HeavyUS)
		rows += 2 + len(ln.lights)
		lanes = append(lanes, ln)
	}
	labelW := 150.0
	top := 50.0
	h := top + float64(rows)*rowH + float64(len(lanes))*gap + 50
	pw := chartW - labelW - plotR
	ttop, tstep := niceMax(tmax / 1e6)
	xOf := func(us float64) float64 { return labelW + pw*us/1e6/ttop }
	s := newSVG(chartW, h, "blocking", title)
	bottom := h - 44
	s.open("g", "class", "axis", "data-axis", "x", "data-min", "0", "data-zero-x", num(xOf(0)))
	for t := 0.0; t <= ttop*(1+1e-9); t += tstep {
		x := xOf(t * 1e6)
		s.line(x, top, x, bottom, colGrid)
		s.text(x, bottom+16, "middle", fmtTick(t)+" s", "class", "tick")
	}
	s.line(labelW, bottom, labelW+pw, bottom, colAxis)
	s.close("g")
	y := top
	for _, ln := range lanes {
		s.open("g", "class", "lane", "data-series", ln.label, "data-lights", strconv.Itoa(len(ln.lights)))
		s.text(8, y+14, "start", ln.label, "font-weight", "bold")
		s.text(labelW+4, y+14, "start", ln.bl.Verdict, "fill", colMuted, "font-size", "11")
		y += rowH
		if ln.bl.HeavyUS >= 0 {
			s.text(labelW-6, y+14, "end", "heavy request")
			s.rect(xOf(0), y+3, xOf(ln.bl.HeavyUS)-xOf(0), rowH-6, colHeavy, "class", "heavy", "data-value", fval(ln.bl.HeavyUS), "data-start", "0")
			s.text(xOf(ln.bl.HeavyUS)+4, y+14, "start", bench.FmtMS(ln.bl.HeavyUS), "font-size", "11")
		}
		y += rowH
		for i, l := range ln.lights {
			col := colQuick
			if l.Waited {
				col = colWaited
			}
			name := fmt.Sprintf("light #%d", i+1)
			if !ln.exact {
				name = "longest light"
			}
			s.text(labelW-6, y+14, "end", name)
			x0 := xOf(l.StartUS)
			s.rect(x0, y+3, max(xOf(l.StartUS+l.WaitUS)-x0, 2), rowH-6, col, "class", "light", "data-value", fval(l.WaitUS), "data-start", fval(l.StartUS), "data-waited", strconv.FormatBool(l.Waited))
			what := "waited " + bench.FmtMS(l.WaitUS)
			if !l.Waited {
				what = "answered in " + bench.FmtMS(l.WaitUS)
			}
			s.text(max(xOf(l.StartUS+l.WaitUS), x0+2)+4, y+14, "start", what, "font-size", "11")
			y += rowH
		}
		s.close("g")
		y += gap
	}
	s.legend(labelW, h-10, []string{"heavy request", "light: waited", "light: answered at once"}, []string{colHeavy, colWaited, colQuick})
	return Chart{Name: chartName(host, g.Scenario.Name, "blocking"), Kind: "blocking", Title: title, SVG: s.String()}
}

// latency is the load generator's latency summary.
type latency = loadgen.Latency
