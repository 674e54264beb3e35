package checks

import "fmt"

// KindRespawn: a killed worker comes back (--active only; skipped without it).
const KindRespawn Kind = "respawn"

func init() {
	register(KindRespawn, "a killed worker comes back (`--active` only; skipped without it)", func() Params { return &respawnCheck{} })
}

// respawnCheck reads the active prober's respawn observation of the server
// the check is about.
type respawnCheck struct{}

func (*respawnCheck) decode(d *decoder) { d.target(ServerCluster) }

func (*respawnCheck) describe(func(k, v string)) {}

func (*respawnCheck) eval(e *env, c *Check) Result {
	if e.f.Active == nil {
		return skipf("solo se comprueba con --active")
	}
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	for _, s := range servers {
		for _, o := range e.f.Active.Respawn {
			if o.Port != s.Port {
				continue
			}
			ev := fmt.Sprintf("puerto %d: se mató el worker %d", o.Port, o.KilledPID)
			if o.Respawned {
				ev += fmt.Sprintf("; el worker %d lo sustituyó en %s", o.NewPID, fmtMillis(float64(o.After.Microseconds())/1000))
			}
			if o.Detail != "" {
				ev += "; " + o.Detail
			}
			if o.Respawned {
				return pass(ev)
			}
			return failed(ev, "el worker no se volvió a levantar")
		}
	}
	return errorf("no hay observación de respawn para el puerto %d", servers[0].Port)
}
