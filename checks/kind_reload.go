package checks

import (
	"fmt"
	"strconv"
)

// KindReload: a reload loses at most max_failed requests (--active only; skipped without it).
const KindReload Kind = "reload"

func init() {
	register(KindReload, "a reload loses at most `max_failed` requests (`--active` only; skipped without it)", func() Params { return &reloadCheck{} })
}

// reloadCheck reads the active prober's reload observation of the server
// the check is about.
type reloadCheck struct {
	MaxFailed int
}

func (r *reloadCheck) decode(d *decoder) {
	d.target(ServerCluster)
	d.integer("max_failed", &r.MaxFailed, false)
}

func (r *reloadCheck) describe(add func(k, v string)) {
	if r.MaxFailed > 0 {
		add("max_failed", strconv.Itoa(r.MaxFailed))
	}
}

func (r *reloadCheck) eval(e *env, c *Check) Result {
	o, res := activeObservation(e, c, "recarga", func(a *ActiveFacts) []ReloadObservation { return a.Reload },
		func(o ReloadObservation) int { return o.Port })
	if res != nil {
		return *res
	}
	ev := fmt.Sprintf("puerto %d: %d peticiones durante la recarga, %d fallidas", o.Port, o.Requests, o.Failed)
	if o.Detail != "" {
		ev += "; " + o.Detail
	}
	if o.Requests == 0 {
		return Result{Outcome: Error, Evidence: ev, Reason: "no se llegó a enviar ninguna petición"}
	}
	if o.Failed > r.MaxFailed {
		return failed(ev, "se perdieron peticiones (máximo %d)", r.MaxFailed)
	}
	return pass(ev)
}

// activeObservation is the start of the --active kinds' evaluation: skipped
// without --active; else the observation (of all, by port) of the first of
// the check's servers that has one; else an error naming what was not
// observed.
func activeObservation[T any](e *env, c *Check, what string, all func(*ActiveFacts) []T, port func(T) int) (T, *Result) {
	var zero T
	if e.f.Active == nil {
		r := skipf("solo se comprueba con --active")
		return zero, &r
	}
	servers, res := e.pick(c)
	if res != nil {
		return zero, res
	}
	for _, s := range servers {
		for _, o := range all(e.f.Active) {
			if port(o) == s.Port {
				return o, nil
			}
		}
	}
	r := errorf("no hay observación de %s para el puerto %d", what, servers[0].Port)
	return zero, &r
}
