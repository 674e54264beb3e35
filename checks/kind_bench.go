package checks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// KindBench: deploylab bench results: both servers measured, cluster beats single.
const KindBench Kind = "bench"

func init() {
	register(KindBench, "`deploylab bench` results: both servers measured, cluster beats single", func() Params { return &benchCheck{} })
}

// benchCheck reads the bench results of Route: it passes when both servers
// were measured (and, with ClusterBeatsSingle or MinSpeedup, when the
// cluster's rps beat the single server's by that much). Without bench
// results it is skipped.
type benchCheck struct {
	Route              string
	ClusterBeatsSingle bool
	MinSpeedup         float64
}

func (b *benchCheck) decode(d *decoder) {
	d.urlPath("route", &b.Route, true)
	d.boolean("cluster_beats_single", &b.ClusterBeatsSingle)
	d.positive("min_speedup", &b.MinSpeedup)
}

func (b *benchCheck) describe(add func(k, v string)) {
	add("route", b.Route)
	if b.ClusterBeatsSingle {
		add("cluster_beats_single", "true")
	}
	if b.MinSpeedup > 0 {
		add("min_speedup", strconv.FormatFloat(b.MinSpeedup, 'f', -1, 64))
	}
}

// BenchRoute returns the route of the rubric's first (top-level) bench
// check, or "" when it has none.
func (r *Rubric) BenchRoute() string {
	for _, c := range r.Criteria {
		for _, ch := range c.Checks {
			if b, ok := ch.Params.(*benchCheck); ok {
				return b.Route
			}
		}
	}
	return ""
}

func (b *benchCheck) eval(e *env, _ *Check) Result {
	if len(e.bench) == 0 {
		return skipf("no hay resultados de deploylab bench para este host")
	}
	latest := map[string]BenchSummary{}
	for _, r := range e.bench {
		if r.Route != b.Route {
			continue
		}
		if old, ok := latest[r.Server]; !ok || !r.At.Before(old.At) {
			latest[r.Server] = r
		}
	}
	si, okS := latest[ServerSingle]
	cl, okC := latest[ServerCluster]
	desc := func(r BenchSummary) string {
		s := fmt.Sprintf("%s %.0f rps (p50 %s, p99 %s", r.Server, r.RPS, fmtMillis(r.P50us/1000), fmtMillis(r.P99us/1000))
		if r.Errors > 0 {
			s += fmt.Sprintf(", %d errores", r.Errors)
		}
		if r.Tool != "" {
			s += ", " + r.Tool
		}
		return s + ")"
	}
	switch {
	case !okS && !okC:
		var routes []string
		for _, r := range e.bench {
			if !slices.Contains(routes, r.Route) {
				routes = append(routes, r.Route)
			}
		}
		return failed("rutas medidas: "+strings.Join(routes, ", "), "no hay resultados para %s", b.Route)
	case !okS:
		return failed(b.Route+": "+desc(cl), "falta el resultado del servidor sin cluster")
	case !okC:
		return failed(b.Route+": "+desc(si), "falta el resultado del servidor en cluster")
	}
	ev := b.Route + ": " + desc(si) + ", " + desc(cl)
	if si.RPS > 0 {
		ev += fmt.Sprintf(": ×%.2f", cl.RPS/si.RPS)
	}
	if b.ClusterBeatsSingle || b.MinSpeedup > 0 {
		min := b.MinSpeedup
		if si.RPS <= 0 {
			return errorf("el resultado sin cluster tiene 0 rps")
		}
		sp := cl.RPS / si.RPS
		if min > 0 && sp < min || min == 0 && sp <= 1 {
			want := "más rps que sin cluster"
			if min > 0 {
				want = fmt.Sprintf("al menos ×%.2f", min)
			}
			return failed(ev, "el cluster no rinde %s", want)
		}
	}
	return pass(ev)
}
