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
	if e.f.Active == nil {
		return skipf("solo se comprueba con --active")
	}
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	for _, s := range servers {
		for _, o := range e.f.Active.Reload {
			if o.Port != s.Port {
				continue
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
	}
	return errorf("no hay observación de recarga para el puerto %d", servers[0].Port)
}
