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
	o, res := activeObservation(e, c, "respawn", func(a *ActiveFacts) []RespawnObservation { return a.Respawn },
		func(o RespawnObservation) int { return o.Port })
	if res != nil {
		return *res
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
