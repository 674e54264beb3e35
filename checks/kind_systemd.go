package checks

import (
	"github.com/deploylab/deploylab/observe"

	"regexp"
	"strconv"
	"strings"
)

// KindSystemd: a systemd unit (name or glob): active, enabled.
const KindSystemd Kind = "systemd"

func init() {
	register(KindSystemd, "a systemd unit (name or glob): active, enabled", func() Params { return &systemdCheck{} })
}

// systemdCheck passes when a unit matching Unit is in the wanted states.
type systemdCheck struct {
	Unit    string // a name or a glob (pm2-*.service)
	Active  *bool
	Enabled *bool
	unitRe  *regexp.Regexp
}

var unitRe = regexp.MustCompile(`^[A-Za-z0-9@_.:*?\\-]+\.(service|socket|timer|target)$`)

func (s *systemdCheck) decode(d *decoder) {
	if d.str("unit", &s.Unit, true) {
		if !unitRe.MatchString(s.Unit) {
			d.failf(d.nodeOf("unit"), "check %q: %q is not a unit name or glob", d.c.ID, s.Unit)
		} else {
			s.unitRe, _ = globRegexp(s.Unit)
		}
	}
	d.optBool("active", &s.Active)
	d.optBool("enabled", &s.Enabled)
	if d.ok() && s.Active == nil && s.Enabled == nil {
		d.failf(nil, "check %q: say active: and/or enabled:", d.c.ID)
	}
}

func (s *systemdCheck) describe(add func(k, v string)) {
	add("unit", s.Unit)
	if s.Active != nil {
		add("active", strconv.FormatBool(*s.Active))
	}
	if s.Enabled != nil {
		add("enabled", strconv.FormatBool(*s.Enabled))
	}
}

func (s *systemdCheck) probe(o *observe.Options) { o.Units = addUnique(o.Units, s.Unit) }

func unitLine(u Unit) string {
	s := u.Name + ": " + u.Enabled + ", " + u.Active
	if u.Sub != "" {
		s += " (" + u.Sub + ")"
	}
	if u.Load == "not-found" {
		s = u.Name + ": no existe"
	}
	return s
}

func (s *systemdCheck) eval(e *env, _ *Check) Result {
	var fails []string
	for _, u := range e.f.Units {
		if !s.unitRe.MatchString(u.Name) || u.Load == "not-found" {
			continue
		}
		ev := unitLine(u)
		if s.Enabled != nil && (u.Enabled == "enabled") != *s.Enabled {
			fails = append(fails, ev)
			continue
		}
		if s.Active != nil && (u.Active == "active") != *s.Active {
			fails = append(fails, ev)
			continue
		}
		return pass(ev)
	}
	if len(fails) > 0 {
		var want []string
		if s.Enabled != nil {
			want = append(want, map[bool]string{true: "habilitada", false: "deshabilitada"}[*s.Enabled])
		}
		if s.Active != nil {
			want = append(want, map[bool]string{true: "activa", false: "parada"}[*s.Active])
		}
		return failed(strings.Join(fails, "; "), "se esperaba la unidad %s", strings.Join(want, " y "))
	}
	if !e.hasSystemd() {
		return errorf("el host no tiene systemd (o el sondeo no pudo consultarlo)")
	}
	return failed("", "no existe la unidad %s", s.Unit)
}

func (e *env) hasSystemd() bool {
	for _, n := range e.f.Notes {
		if strings.HasPrefix(n, "systemd:") {
			return false
		}
	}
	return true
}
