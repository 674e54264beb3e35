package checks

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// KindPM2: PM2 apps from pm2 jlist: exec mode, online instances, saved in dump.pm2.
const KindPM2 Kind = "pm2"

func init() {
	register(KindPM2, "PM2 apps from `pm2 jlist`: exec mode, online instances, saved in dump.pm2", func() Params { return &pm2Check{} })
}

// pm2Check passes when a PM2 app (matching App by name or script) runs in
// ExecMode with at least Instances online instances, all online when Online,
// and is in a dump.pm2 when Saved.
type pm2Check struct {
	App       string
	ExecMode  string // "cluster", "fork" or "" (any)
	Instances *Count
	Online    bool
	Saved     bool
	appRe     *regexp.Regexp
}

func (p *pm2Check) decode(d *decoder) {
	d.regexp("app", &p.App, &p.appRe, false)
	if d.str("exec_mode", &p.ExecMode, false) && p.ExecMode != "cluster" && p.ExecMode != "fork" {
		d.failf(d.nodeOf("exec_mode"), "check %q: exec_mode must be cluster or fork", d.c.ID)
	}
	d.count("instances", &p.Instances)
	d.boolean("online", &p.Online)
	d.boolean("saved", &p.Saved)
}

func (p *pm2Check) describe(add func(k, v string)) {
	add("app", p.App)
	add("exec_mode", p.ExecMode)
	if p.Instances != nil {
		add("instances", p.Instances.String())
	}
	if p.Online {
		add("online", "true")
	}
	if p.Saved {
		add("saved", "true")
	}
}

type pm2Group struct {
	name, script string
	apps         []PM2App
	daemon       string
}

func (g pm2Group) online() int {
	n := 0
	for _, a := range g.apps {
		if a.Status == "online" {
			n++
		}
	}
	return n
}

func (g pm2Group) describe() string {
	modes := map[string]int{}
	var ms []string
	for _, a := range g.apps {
		if modes[a.ExecMode] == 0 {
			ms = append(ms, a.ExecMode)
		}
		modes[a.ExecMode]++
	}
	restarts := 0
	var statuses []string
	for _, a := range g.apps {
		restarts += a.Restarts
		if a.Status != "online" && !slices.Contains(statuses, a.Status) {
			statuses = append(statuses, a.Status)
		}
	}
	s := fmt.Sprintf("pm2 jlist: «%s» (%s) %s ×%d, online %d/%d", g.name, g.script, strings.Join(ms, "+"), len(g.apps), g.online(), len(g.apps))
	if len(statuses) > 0 {
		s += " (" + strings.Join(statuses, ", ") + ")"
	}
	if g.apps[0].Instances != "" {
		s += ", instances: " + g.apps[0].Instances
	}
	return s + fmt.Sprintf(", reinicios %d", restarts)
}

func (p *pm2Check) eval(e *env, _ *Check) Result {
	var groups []pm2Group
	var errs []string
	for _, d := range e.f.PM2 {
		if d.Error != "" {
			errs = append(errs, d.Home+": "+d.Error)
		}
		for _, a := range d.Apps {
			if p.appRe != nil && !p.appRe.MatchString(a.Name) && !p.appRe.MatchString(a.Script) {
				continue
			}
			i := slices.IndexFunc(groups, func(g pm2Group) bool { return g.name == a.Name && g.daemon == d.Home })
			if i < 0 {
				groups = append(groups, pm2Group{name: a.Name, script: a.Script, daemon: d.Home})
				i = len(groups) - 1
			}
			groups[i].apps = append(groups[i].apps, a)
		}
	}
	if len(groups) == 0 {
		if len(errs) > 0 {
			return errorf("no se pudo leer pm2 jlist: %s", strings.Join(errs, "; "))
		}
		if len(e.f.PM2) == 0 {
			ev := ""
			for _, d := range e.f.PM2Dumps {
				ev = fmt.Sprintf("hay un volcado %s con %d procesos", d.Path, len(d.Apps))
			}
			return failed(ev, "PM2 no está en ejecución")
		}
		return failed("pm2 jlist: []", "PM2 no gestiona ninguna aplicación%s", map[bool]string{true: " que case con /" + p.App + "/", false: ""}[p.App != ""])
	}
	var fails []string
	for _, g := range groups {
		ev := g.describe()
		if p.ExecMode != "" {
			want := p.ExecMode + "_mode"
			bad := false
			for _, a := range g.apps {
				if a.ExecMode != want {
					bad = true
				}
			}
			if bad {
				fails = append(fails, ev+": exec_mode no es "+want)
				continue
			}
		}
		if p.Instances != nil {
			want, ok := p.Instances.Resolve(e.f.CPUs)
			if !ok {
				return errorf("no se conoce el número de CPU del host")
			}
			if g.online() < want {
				fails = append(fails, fmt.Sprintf("%s: se esperaban %d instancias online (%s)", ev, want, p.Instances))
				continue
			}
		}
		if p.Online && g.online() < len(g.apps) || p.Online && len(g.apps) == 0 {
			fails = append(fails, ev+": no todas las instancias están online")
			continue
		}
		if p.Saved {
			saved := ""
			for _, d := range e.f.PM2Dumps {
				for _, a := range d.Apps {
					if a.Name == g.name {
						saved = d.Path
					}
				}
			}
			if saved == "" {
				fails = append(fails, ev+": no está guardada con pm2 save (no aparece en dump.pm2)")
				continue
			}
			ev += ", guardada en " + saved
		}
		return pass(ev)
	}
	return failed(strings.Join(fails, "; "), "la aplicación de PM2 no cumple lo pedido")
}
