package render

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/internal/need"
)

// These tests open the reports in a real headless Chromium (Debian's
// chromium, installed by scripts/install-deps.sh) and check what a reader
// sees: no console error, every chart drawn with the right number of bars
// and points, bars proportional to their values on axes from 0, the blocking
// timeline to scale, a PDF of several pages, the live page updating.

// browserCtx starts Chromium for one test; without it the test ends as
// internal/need says (skipped under -short, a failure in CI).
func browserCtx(t *testing.T) context.Context {
	t.Helper()
	exe := Chromium()
	if exe == "" {
		need.Missing(t, "no Chromium: apt-get install chromium, or scripts/install-deps.sh")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	bctx, stop := Browser(ctx, exe, t.TempDir())
	t.Cleanup(func() { stop(); cancel() })
	return bctx
}

// consoleLog collects the page's console errors and exceptions.
type consoleLog struct {
	mu   sync.Mutex
	msgs []string
}

func watchConsole(ctx context.Context) *consoleLog {
	c := &consoleLog{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				c.mu.Lock()
				c.msgs = append(c.msgs, m.String())
				c.mu.Unlock()
			}
		}
	}()
	return c
}

func (c *consoleLog) errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.msgs...)
}

// artifactDir is where screenshots and PDFs are kept after the test:
// $DEPLOYLAB_ARTIFACTS, or deploylab-artifacts in the temporary directory.
func artifactDir(t *testing.T) string {
	d := os.Getenv("DEPLOYLAB_ARTIFACTS")
	if d == "" {
		d = filepath.Join(os.TempDir(), "deploylab-artifacts")
	}
	d = filepath.Join(d, "render")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// seen is what the page shows of one chart, measured by the browser.
type seen struct {
	Kind, Name string
	Width      float64
	AxisMin    string
	ZeroY      *float64
	ZeroX      *float64
	LowestTick string
	Bars       []struct {
		V, Y, H float64
		Series  string
	}
	Points int
	Lines  []struct {
		N, Got int
		Series string
	}
	Heavy, Light []struct {
		V, Start, X, W float64
		Waited         bool
	}
}

const inspectJS = `(() => {
  const num = (s) => s === undefined ? null : parseFloat(s);
  return JSON.stringify([...document.querySelectorAll('main svg[data-chart]')].map(svg => {
    const ay = svg.querySelector('g.axis[data-axis="y"]');
    const ax = svg.querySelector('g.axis[data-axis="x"]');
    const ticks = ay ? [...ay.querySelectorAll('text.tick')] : [];
    const lowest = ticks.length ? ticks.reduce((a, b) => a.getBBox().y > b.getBBox().y ? a : b).textContent : '';
    const box = (r) => { const b = r.getBBox(); return {V: parseFloat(r.dataset.value), Start: num(r.dataset.start) || 0, X: b.x, W: b.width, Y: b.y, H: b.height, Series: r.dataset.series || '', Waited: r.dataset.waited === 'true'}; };
    return {
      Kind: svg.dataset.chart,
      Name: (svg.closest('figure') || {dataset: {}}).dataset.name || '',
      Width: svg.getBoundingClientRect().width,
      AxisMin: (ay || ax) ? (ay || ax).dataset.min : '',
      ZeroY: ay && ay.dataset.zeroY !== undefined ? parseFloat(ay.dataset.zeroY) : null,
      ZeroX: ax && ax.dataset.zeroX !== undefined ? parseFloat(ax.dataset.zeroX) : null,
      LowestTick: lowest,
      Bars: [...svg.querySelectorAll('rect.bar')].map(box),
      Points: svg.querySelectorAll('circle.pt').length,
      Lines: [...svg.querySelectorAll('polyline[data-points]')].map(p => ({N: parseInt(p.dataset.points), Got: p.points.numberOfItems, Series: p.dataset.series || p.parentNode.dataset.series || ''})),
      Heavy: [...svg.querySelectorAll('rect.heavy')].map(box),
      Light: [...svg.querySelectorAll('rect.light')].map(box),
    };
  }));
})()`

func inspect(t *testing.T, ctx context.Context) []seen {
	t.Helper()
	js, err := chromedp.Run(ctx, chromedp.Evaluate[string](inspectJS))
	if err != nil {
		t.Fatalf("inspect the page: %v", err)
	}
	var out []seen
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// proportional checks that every bar's height is its value times one
// scale, and that bars stand on the zero line.
func proportional(t *testing.T, c seen) {
	t.Helper()
	if c.AxisMin != "0" || c.LowestTick != "0" || c.ZeroY == nil {
		t.Errorf("%s: value axis from %q (lowest tick %q), want 0", c.Name, c.AxisMin, c.LowestTick)
		return
	}
	scale := 0.0
	for _, b := range c.Bars {
		if b.V > 0 {
			scale = max(scale, b.H/b.V)
		}
	}
	for _, b := range c.Bars {
		if math.Abs(b.H-b.V*scale) > 0.6 {
			t.Errorf("%s: bar %s of %v is %v high, want %v (proportional)", c.Name, b.Series, b.V, b.H, b.V*scale)
		}
		if math.Abs(b.Y+b.H-*c.ZeroY) > 0.6 {
			t.Errorf("%s: bar %s ends at %v, the axis's 0 is at %v", c.Name, b.Series, b.Y+b.H, *c.ZeroY)
		}
	}
}

// expected counts what each chart of runs must show.
func expected(runs []*bench.Record) map[string]func(*testing.T, seen) {
	want := map[string]func(*testing.T, seen){}
	for _, host := range bench.Hosts(runs) {
		hr := bench.HostRuns(runs, host)
		for _, g := range bench.Groups(hr, bench.KindLoad) {
			g := g
			n := len(g.Servers)
			want[chartName(host, g.Scenario.Name, "rps")] = func(t *testing.T, c seen) {
				if len(c.Bars) != n {
					t.Errorf("%s: %d bars, want %d", c.Name, len(c.Bars), n)
				}
				for i, b := range c.Bars {
					if r := g.Runs[g.Servers[i]]; b.V != r.Result.RPS || b.Series != g.Servers[i] {
						t.Errorf("%s: bar %d = %s %v, want %s %v", c.Name, i, b.Series, b.V, g.Servers[i], r.Result.RPS)
					}
				}
				proportional(t, c)
			}
			points := 0
			timelines := map[string]int{}
			workers, cpuBars := 0, 0
			for _, l := range g.Servers {
				r := g.Runs[l]
				for _, pc := range percentiles {
					if v, ok := pc.get(r.Result.Latency); ok && v > 0 {
						points++
					}
				}
				if tl := r.Result.Timeline; tl != nil {
					timelines[l] = len(tl.Completed)
				}
				workers += len(r.Workers)
				if r.CPU.ClientCores() >= 0 {
					cpuBars++
				}
				if r.CPU.ServerCores() >= 0 {
					cpuBars++
				}
			}
			want[chartName(host, g.Scenario.Name, "latency")] = func(t *testing.T, c seen) {
				if c.Points != points || len(c.Lines) != n {
					t.Errorf("%s: %d points on %d curves, want %d on %d", c.Name, c.Points, len(c.Lines), points, n)
				}
			}
			want[chartName(host, g.Scenario.Name, "timeline")] = func(t *testing.T, c seen) {
				if len(c.Lines) != len(timelines) {
					t.Errorf("%s: %d lines, want %d", c.Name, len(c.Lines), len(timelines))
				}
				for _, l := range c.Lines {
					if l.N != timelines[l.Series] || l.Got != l.N {
						t.Errorf("%s: %s has %d points (drawn %d), want %d", c.Name, l.Series, l.N, l.Got, timelines[l.Series])
					}
				}
				if c.AxisMin != "0" || c.LowestTick != "0" {
					t.Errorf("%s: axis from %q", c.Name, c.AxisMin)
				}
			}
			want[chartName(host, g.Scenario.Name, "workers")] = func(t *testing.T, c seen) {
				if len(c.Bars) != workers {
					t.Errorf("%s: %d bars, want %d", c.Name, len(c.Bars), workers)
				}
				proportional(t, c)
			}
			want[chartName(host, g.Scenario.Name, "cpu")] = func(t *testing.T, c seen) {
				if len(c.Bars) != cpuBars {
					t.Errorf("%s: %d bars, want %d", c.Name, len(c.Bars), cpuBars)
				}
				proportional(t, c)
			}
		}
		for _, g := range bench.Groups(hr, bench.KindBlocking) {
			g := g
			want[chartName(host, g.Scenario.Name, "blocking")] = func(t *testing.T, c seen) {
				lights, waited := 0, 0
				for _, l := range g.Servers {
					bl := bench.ReadBlocking(g.Runs[l])
					lights += len(bl.Lights)
					if bl.WaitedN > 0 {
						waited += bl.WaitedN
					}
				}
				if len(c.Heavy) != len(g.Servers) || len(c.Light) != lights {
					t.Errorf("%s: %d heavy and %d light bars, want %d and %d", c.Name, len(c.Heavy), len(c.Light), len(g.Servers), lights)
				}
				n := 0
				for _, l := range c.Light {
					if l.Waited {
						n++
					}
				}
				if n != waited {
					t.Errorf("%s: %d light bars marked waited, want %d", c.Name, n, waited)
				}
				if c.AxisMin != "0" || c.ZeroX == nil {
					t.Fatalf("%s: time axis from %q", c.Name, c.AxisMin)
				}
				// To scale: width = time × one scale; heavy bars start at 0,
				// light ones when they were sent.
				scale := 0.0
				for _, h := range c.Heavy {
					scale = max(scale, h.W/h.V)
					if math.Abs(h.X-*c.ZeroX) > 0.6 {
						t.Errorf("%s: heavy bar starts at %v, time 0 is at %v", c.Name, h.X, *c.ZeroX)
					}
				}
				for _, b := range append(c.Heavy, c.Light...) {
					if w := max(b.V*scale, 2); math.Abs(b.W-w) > 0.6 {
						t.Errorf("%s: a bar of %v µs is %v wide, want %v", c.Name, b.V, b.W, w)
					}
					if x := *c.ZeroX + b.Start*scale; math.Abs(b.X-x) > 0.6 {
						t.Errorf("%s: a bar sent at %v µs starts at %v, want %v", c.Name, b.Start, b.X, x)
					}
				}
			}
		}
	}
	return want
}

func checkCharts(t *testing.T, got []seen, runs []*bench.Record, nCharts int) {
	t.Helper()
	if len(got) != nCharts {
		t.Errorf("the page shows %d charts, the report has %d", len(got), nCharts)
	}
	want := expected(runs)
	shown := map[string]bool{}
	for _, c := range got {
		shown[c.Name] = true
		if c.Width < 100 {
			t.Errorf("%s is %v px wide: not drawn", c.Name, c.Width)
		}
		check, ok := want[c.Name]
		if !ok {
			t.Errorf("unexpected chart %s", c.Name)
			continue
		}
		check(t, c)
	}
	for name := range want {
		if !shown[name] && !strings.HasSuffix(name, "-workers") && !strings.HasSuffix(name, "-timeline") && !strings.HasSuffix(name, "-cpu") {
			t.Errorf("chart %s missing", name)
		}
	}
}

var pdfPage = regexp.MustCompile(`/Type\s*/Page[^s]`)

func TestBenchReportInBrowser(t *testing.T) {
	ctx := browserCtx(t)
	runs := compareRuns()
	rep := BuildBench(runs, BenchOptions{Version: "deploylab test", Generated: time.Now()})
	dir := t.TempDir()
	path := filepath.Join(dir, "informe.html")
	if err := rep.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1400, 1000),
		chromedp.Navigate(FileURL(path)),
		chromedp.WaitVisible(chromedp.CSS("footer")),
	); err != nil {
		t.Fatal(err)
	}
	checkCharts(t, inspect(t, ctx), runs, len(rep.Charts))

	// The lesson is written out, not only drawn.
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 of 4 waited", "round-robin", "Likely causes", "2 CPUs", "loadgen 0.1.0", "deploylab test", "Ana García <script>alert(1)</script>"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page does not say %q", want)
		}
	}

	pdf, err := chromedp.Run(ctx, chromedp.PrintToPDF(chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(pdf, []byte("%PDF-")) {
		t.Fatalf("print to PDF gave %q…", pdf[:min(len(pdf), 16)])
	}
	if n := len(pdfPage.FindAll(pdf, -1)); n < 2 {
		t.Errorf("the PDF has %d pages, want several", n)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	art := artifactDir(t)
	for name, b := range map[string][]byte{"bench-report.png": shot, "bench-report.pdf": pdf} {
		if err := os.WriteFile(filepath.Join(art, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot and PDF kept in %s", art)
	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// TestConsoleWatchWorks: the console check catches an error (so that its
// silence in the other tests means something).
func TestConsoleWatchWorks(t *testing.T) {
	ctx := browserCtx(t)
	path := filepath.Join(t.TempDir(), "bad.html")
	if err := os.WriteFile(path, []byte(`<!DOCTYPE html><title>x</title><p id="p">x</p><script>console.error("broken chart")</script>`), 0o644); err != nil {
		t.Fatal(err)
	}
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(FileURL(path)), chromedp.WaitVisible(chromedp.ID("p"))); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(console.errors()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if errs := console.errors(); len(errs) != 1 || !strings.Contains(errs[0], "broken chart") {
		t.Errorf("console errors = %q, want the page's one", errs)
	}
}

// TestChartPNGs: --charts writes each chart as SVG and PNG (drawn by
// Chromium), the PNG at twice the SVG's size.
func TestChartPNGs(t *testing.T) {
	browserCtx(t) // skips or fails without Chromium, as the others
	rep := BuildBench(compareRuns(), BenchOptions{})
	dir := t.TempDir()
	svgs, err := WriteCharts(dir, rep.Charts[:2])
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pngs, err := WritePNGs(ctx, svgs)
	if err != nil {
		t.Fatal(err)
	}
	if len(pngs) != 2 {
		t.Fatalf("%d PNGs", len(pngs))
	}
	for _, p := range pngs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || len(b) < 24 {
			t.Fatalf("%s is not a PNG", p)
		}
		w := int(b[16])<<24 | int(b[17])<<16 | int(b[18])<<8 | int(b[19])
		if w != 2*int(chartW) {
			t.Errorf("%s is %d px wide, want %d", filepath.Base(p), w, 2*int(chartW))
		}
	}
}

// TestLivePageUpdates: the live page starts empty and shows each run as it
// is added (server-sent events), then stops listening when told the bench
// is over.
func TestLivePageUpdates(t *testing.T) {
	ctx := browserCtx(t)
	l, err := NewLive("127.0.0.1:0", nil, BenchOptions{Version: "deploylab test"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(l.URL()), chromedp.WaitVisible(chromedp.CSS("p.empty"))); err != nil {
		t.Fatal(err)
	}
	runs := compareRuns()
	// The page must have subscribed before the first update.
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`true`, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		t.Fatal(err)
	}
	waitSubscribed(t, l)
	steps := []int{1, 2, 9, len(runs)}
	added := 0
	for i, upto := range steps {
		for ; added < upto; added++ {
			l.StepDone("alu01", "x", runs[added], nil)
		}
		want := len(BuildBench(runs[:upto], BenchOptions{}).Charts)
		expr := fmt.Sprintf(`document.getElementById('runs').dataset.runs === '%d' && document.querySelectorAll('main svg[data-chart]').length === %d && Number(document.body.dataset.updates || 0) >= %d`, upto, want, i+1)
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main svg[data-chart]').length`))
			t.Fatalf("after %d runs the page shows %d charts, want %d: %v", upto, n, want, err)
		}
	}
	checkCharts(t, inspect(t, ctx), runs, len(BuildBench(runs, BenchOptions{}).Charts))
	l.Finish()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.body.dataset.done === 'true'`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Errorf("the page was not told the bench is over: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil {
		_ = os.WriteFile(filepath.Join(artifactDir(t), "live-page.png"), shot, 0o644)
	}
	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}

// waitSubscribed waits until a page listens for the live page's events.
func waitSubscribed(t *testing.T, l *Live) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		n := len(l.subs)
		l.mu.Unlock()
		if n > 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the page did not subscribe to the live events")
}

// TestClassReportInBrowser: the class report loads without console errors;
// the distribution charts count every student, their bars proportional
// from 0; each cell of the class table opens that student's evidence; what
// a VM printed stays text.
func TestClassReportInBrowser(t *testing.T) {
	ctx := browserCtx(t)
	r, rows, manual := classRows(t)
	rep := BuildClass(r, rows, manual, ClassOptions{Version: "deploylab test", Generated: time.Now()})
	path := filepath.Join(t.TempDir(), "clase.html")
	if err := rep.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	console := watchConsole(ctx)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1300, 1000),
		chromedp.Navigate(FileURL(path)),
		chromedp.WaitVisible(chromedp.CSS("footer")),
	); err != nil {
		t.Fatal(err)
	}
	charts := inspect(t, ctx)
	if len(charts) != 2 {
		t.Fatalf("%d charts, want 2", len(charts))
	}
	for _, c := range charts {
		switch c.Kind {
		case "marks":
			if len(c.Bars) != 10 {
				t.Errorf("marks: %d bars, want 10 bands", len(c.Bars))
			}
			sum := 0.0
			for _, b := range c.Bars {
				sum += b.V
			}
			if int(sum) != len(rows) {
				t.Errorf("marks: the bands count %v students, want %d", sum, len(rows))
			}
			proportional(t, c)
		case "criteria":
			// One segment per state present; each criterion's segments add
			// up to the class, on the same scale, from 0.
			per := map[string]float64{}
			width := map[string]float64{}
			for _, b := range c.Bars {
				per[b.Series] += b.V
			}
			js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll('svg[data-chart="criteria"] rect.seg')].map(r => [r.dataset.series, r.getBBox().x, r.getBBox().width]))`))
			if err != nil {
				t.Fatal(err)
			}
			var segs [][3]any
			if err := json.Unmarshal([]byte(js), &segs); err != nil {
				t.Fatal(err)
			}
			start := map[string]float64{}
			for _, s := range segs {
				id, x, w := s[0].(string), s[1].(float64), s[2].(float64)
				if _, ok := start[id]; !ok {
					start[id] = x
				}
				width[id] += w
			}
			if len(per) != len(r.Criteria) {
				t.Errorf("criteria: %d criteria drawn, want %d", len(per), len(r.Criteria))
			}
			for id, n := range per {
				if int(n) != len(rows) {
					t.Errorf("criteria: %s counts %v students, want %d", id, n, len(rows))
				}
				if math.Abs(width[id]-width[r.Criteria[0].ID]) > 0.6 {
					t.Errorf("criteria: %s is %v wide, %s %v: not one scale", id, width[id], r.Criteria[0].ID, width[r.Criteria[0].ID])
				}
				if c.ZeroX == nil || math.Abs(start[id]-*c.ZeroX) > 0.6 {
					t.Errorf("criteria: %s starts at %v, 0 is at %v", id, start[id], c.ZeroX)
				}
			}
		default:
			t.Errorf("unexpected chart %s", c.Kind)
		}
	}
	// The class table: one row per student, one cell per criterion, each a
	// link to an element that exists and shows the evidence.
	js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify([...document.querySelectorAll('table.class tbody tr')].map(tr => [...tr.querySelectorAll('td.cell a')].map(a => { const el = document.getElementById(a.getAttribute('href').slice(1)); return el ? el.dataset.state + '|' + a.closest('td').dataset.state : 'missing'; })))`))
	if err != nil {
		t.Fatal(err)
	}
	var table [][]string
	if err := json.Unmarshal([]byte(js), &table); err != nil {
		t.Fatal(err)
	}
	if len(table) != len(rows) {
		t.Fatalf("%d rows in the class table, want %d", len(table), len(rows))
	}
	for i, cells := range table {
		if len(cells) != len(r.Criteria) {
			t.Errorf("row %d has %d cells, want %d", i, len(cells), len(r.Criteria))
		}
		for _, c := range cells {
			if a, b, _ := strings.Cut(c, "|"); a != b {
				t.Errorf("row %d: a cell opens %q", i, c)
			}
		}
	}
	// Click a failed cell: the page goes to that student's evidence.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-student="s2"] td.cell-fail a`))); err != nil {
		t.Fatal(err)
	}
	target, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector(':target') || {id: ''}).id + ' ' + (document.querySelector(':target .fix') ? 'fix' : '') + ' ' + (document.querySelector(':target .evidence') || {textContent: ''}).textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(target, "s2-") || !strings.Contains(target, " fix ") || !strings.Contains(target, "<img src=x") {
		t.Errorf("clicking Bea's failed cell shows %q", target)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if imgs, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('main img, main script').length`)); imgs != 0 || title == "pwned" {
		t.Errorf("a VM's text became markup (%d elements, title %q)", imgs, title)
	}
	pdf, err := chromedp.Run(ctx, chromedp.PrintToPDF(chromedp.PDFPreferCSSPageSize(), chromedp.PDFPrintBackground()))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pdfPage.FindAll(pdf, -1)); n < 1+len(rows) {
		t.Errorf("the class PDF has %d pages, want one for the class and one per student (%d)", n, 1+len(rows))
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(artifactDir(t), "class-report.png"), shot, 0o644)
	_ = os.WriteFile(filepath.Join(artifactDir(t), "class-report.pdf"), pdf, 0o644)
	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("console errors: %q", errs)
	}
}
