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
	register(KindPM2, "PM2 apps from `pm2 jlist` (or, with `source: dump`, from dump.pm2): exec mode, online instances, saved", func() Params { return &pm2Check{} })
}

// pm2Check passes when a PM2 app (matching App by name or script) runs in
// ExecMode with at least Instances online instances, all online when Online,
// and is in a dump.pm2 when Saved. With Source "dump" the apps are read from
// the dump.pm2 files (what `pm2 save` recorded, whether or not PM2 runs
// now). A check that asks only saved: true reads the dumps alone: what
// survives a reboot is judged apart from what runs now.
type pm2Check struct {
	Source    string // "jlist" (default) or "dump"
	App       string
	ExecMode  string // "cluster", "fork" or "" (any)
	Instances *Count
	Online    bool
	Saved     bool
	appRe     *regexp.Regexp
}

func (p *pm2Check) decode(d *decoder) {
	p.Source = "jlist"
	if d.str("source", &p.Source, false) && p.Source != "jlist" && p.Source != "dump" {
		d.failf(d.nodeOf("source"), "check %q: source must be jlist or dump", d.c.ID)
	}
	d.regexp("app", &p.App, &p.appRe, false)
	if d.str("exec_mode", &p.ExecMode, false) && p.ExecMode != "cluster" && p.ExecMode != "fork" {
		d.failf(d.nodeOf("exec_mode"), "check %q: exec_mode must be cluster or fork", d.c.ID)
	}
	d.count("instances", &p.Instances)
	d.boolean("online", &p.Online)
	d.boolean("saved", &p.Saved)
	if d.ok() && p.Source == "dump" && p.Saved {
		d.failf(d.nodeOf("saved"), "check %q: with source: dump the app is saved by definition; drop saved:", d.c.ID)
	}
}

func (p *pm2Check) describe(add func(k, v string)) {
	if p.Source != "jlist" {
		add("source", p.Source)
	}
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

// savedOnly: the check asks only whether the app is saved.
func (p *pm2Check) savedOnly() bool {
	return p.Saved && p.ExecMode == "" && p.Instances == nil && !p.Online
}

func (p *pm2Check) matches(a PM2App) bool {
	return p.appRe == nil || p.appRe.MatchString(a.Name) || p.appRe.MatchString(a.Script)
}

// evalDump reads the dump.pm2 files: the apps `pm2 save` recorded.
func (p *pm2Check) evalDump(e *env) Result {
	var groups []pm2Group
	for _, d := range e.f.PM2Dumps {
		for _, a := range d.Apps {
			if !p.matches(a) {
				continue
			}
			i := slices.IndexFunc(groups, func(g pm2Group) bool { return g.name == a.Name && g.daemon == d.Path })
			if i < 0 {
				groups = append(groups, pm2Group{name: a.Name, script: a.Script, daemon: d.Path})
				i = len(groups) - 1
			}
			groups[i].apps = append(groups[i].apps, a)
		}
	}
	if len(groups) == 0 {
		if len(e.f.PM2Dumps) > 0 {
			return failed(fmt.Sprintf("%d dump.pm2 sin esa aplicación", len(e.f.PM2Dumps)), "la aplicación no está guardada con pm2 save")
		}
		return failed("", "no hay ningún dump.pm2: nunca se hizo pm2 save")
	}
	var fails []string
	why := "" // the first group's failure, said to the student
	for _, g := range groups {
		ev := strings.Replace(g.describe(), "pm2 jlist:", "guardada en "+g.daemon+":", 1)
		if r := p.judge(e, g); r != "" {
			fails = append(fails, ev+": "+r)
			if why == "" {
				why = "«" + g.name + "» guardada en dump.pm2: " + r
			}
			continue
		}
		return pass(ev)
	}
	return failed(strings.Join(fails, "; "), "%s", why)
}

// judge returns, in a few words, why g does not meet the check's mode and instances ("" when
// it does).
func (p *pm2Check) judge(e *env, g pm2Group) string {
	if p.ExecMode != "" {
		want := p.ExecMode + "_mode"
		for _, a := range g.apps {
			if a.ExecMode != want {
				return fmt.Sprintf("está en modo %s, no en modo %s", strings.TrimSuffix(a.ExecMode, "_mode"), p.ExecMode)
			}
		}
	}
	if p.Instances != nil {
		want, _ := p.Instances.Resolve(e.f.CPUs)
		if g.online() < want {
			return fmt.Sprintf("%s online, %s (%s)", nouns(g.online(), "instancia", "instancias"), expected("al menos", want), countWords(*p.Instances))
		}
	}
	if p.Online && (g.online() < len(g.apps) || len(g.apps) == 0) {
		return "no todas las instancias están online"
	}
	return ""
}

func (p *pm2Check) eval(e *env, _ *Check) Result {
	if p.Instances != nil {
		if _, ok := p.Instances.Resolve(e.f.CPUs); !ok {
			return errorf("no se conoce el número de CPU del host")
		}
	}
	if p.Source == "dump" {
		return p.evalDump(e)
	}
	if p.savedOnly() {
		return p.evalDump(e)
	}
	var groups []pm2Group
	var errs []string
	for _, d := range e.f.PM2 {
		if d.Error != "" {
			errs = append(errs, d.Home+": "+d.Error)
		}
		for _, a := range d.Apps {
			if !p.matches(a) {
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
	why := ""
	for _, g := range groups {
		ev := g.describe()
		if r := p.judge(e, g); r != "" {
			fails = append(fails, ev+": "+r)
			if why == "" {
				why = "«" + g.name + "» en PM2: " + r
			}
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
				if why == "" {
					why = "«" + g.name + "» no está guardada con pm2 save"
				}
				continue
			}
			ev += ", guardada en " + saved
		}
		return pass(ev)
	}
	return failed(strings.Join(fails, "; "), "%s", why)
}

// countWords says a Count the way a student reads it: "una por CPU", "una
// por CPU menos una".
func countWords(c Count) string {
	if !c.CPUs {
		return "lo pedido: " + c.String()
	}
	switch {
	case c.N == 0:
		return "una por CPU"
	case c.N == -1:
		return "una por CPU menos una"
	}
	return fmt.Sprintf("una por CPU menos %d", -c.N)
}
