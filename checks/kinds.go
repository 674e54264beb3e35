package checks

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// pick returns the servers a check is about. When none fits, res is the
// outcome to report (fail with what was seen, or error when the probe could
// not tell).
func (e *evalEnv) pick(c *Check) (match []Server, res *Result) {
	var seen, unknown []Server
	for _, s := range e.servers {
		if c.Port != 0 && s.Port != c.Port {
			continue
		}
		seen = append(seen, s)
		switch {
		case s.Unknown:
			unknown = append(unknown, s)
			if c.Server == ServerAny {
				match = append(match, s)
			}
		case c.Server == ServerAny,
			c.Server == ServerSingle && !s.Cluster,
			c.Server == ServerCluster && s.Cluster:
			match = append(match, s)
		}
	}
	// Prefer the practice's port 3000, then the rest in port order.
	slices.SortStableFunc(match, func(a, b Server) int {
		switch {
		case a.Port == 3000 && b.Port != 3000:
			return -1
		case b.Port == 3000 && a.Port != 3000:
			return 1
		}
		return 0
	})
	if len(match) > 0 {
		return match, nil
	}
	where := "ningún servidor de la aplicación a la escucha"
	if c.Port != 0 {
		where = fmt.Sprintf("nada de la aplicación escucha en el puerto %d", c.Port)
	}
	if len(seen) == 0 {
		r := failed(e.listenersSeen(), "%s", where)
		return nil, &r
	}
	var ds []string
	for _, s := range seen {
		ds = append(ds, s.Describe())
	}
	if len(unknown) > 0 {
		r := errorf("no se pudo saber qué procesos sirven %s (¿sondeo sin root?)", portsOf(unknown))
		r.Evidence = strings.Join(ds, "; ")
		return nil, &r
	}
	role := map[string]string{ServerSingle: "sin cluster (un solo proceso)", ServerCluster: "en cluster (varios workers)"}[c.Server]
	r := failed(strings.Join(ds, "; "), "ningún servidor %s", role)
	return nil, &r
}

func portsOf(ss []Server) string {
	var p []string
	for _, s := range ss {
		p = append(p, strconv.Itoa(s.Port))
	}
	return "el puerto " + strings.Join(p, ", ")
}

func (e *evalEnv) listenersSeen() string {
	var ports []string
	for _, l := range e.f.Listeners {
		p := strconv.Itoa(l.Port)
		if len(l.Names) > 0 {
			p += " (" + strings.Join(l.Names, ",") + ")"
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) == 0 {
		return "ningún puerto TCP a la escucha"
	}
	return "puertos a la escucha: " + strings.Join(ports, ", ")
}

func describeHTTP(h HTTPProbe) string {
	s := fmt.Sprintf("GET :%d%s → ", h.Port, h.Path)
	if h.Status == 0 {
		return s + "sin respuesta (" + h.Error + ")"
	}
	s += strconv.Itoa(h.Status) + " «" + clip(h.Body, 60) + "»"
	if h.Millis >= 0 {
		s += " en " + fmtMillis(h.Millis)
	}
	return s
}

func fmtMillis(ms float64) string {
	if ms >= 10000 {
		return fmt.Sprintf("%.1f s", ms/1000)
	}
	if ms >= 10 {
		return fmt.Sprintf("%.0f ms", ms)
	}
	return fmt.Sprintf("%.1f ms", ms)
}

// ErrNoHTTPClient is the HTTPProbe.Error the probe reports when the host had
// no way to make a request (no curl, wget or bash).
const ErrNoHTTPClient = "no http client on the host"

func (e *evalEnv) http(c *Check) Result {
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	var fails []string
	var errs []string
	for _, s := range servers {
		h, ok := e.f.HTTPAt(s.Port, c.Path)
		if !ok {
			errs = append(errs, fmt.Sprintf("el sondeo no pidió GET %s en el puerto %d", c.Path, s.Port))
			continue
		}
		if h.Status == 0 && h.Error == ErrNoHTTPClient {
			errs = append(errs, "el host no tiene curl, wget ni bash para hacer peticiones")
			continue
		}
		ev := describeHTTP(h)
		switch {
		case h.Status != c.Status:
			if h.Status == 0 {
				fails = append(fails, ev)
			} else {
				fails = append(fails, fmt.Sprintf("%s: se esperaba el estado %d", ev, c.Status))
			}
		case c.bodyRe != nil && !c.bodyRe.MatchString(h.Body):
			fails = append(fails, fmt.Sprintf("%s: la respuesta no casa con /%s/", ev, c.Body))
		case c.MaxMS > 0 && (h.Millis < 0 || h.Millis > c.MaxMS):
			fails = append(fails, fmt.Sprintf("%s: más de %s", ev, fmtMillis(c.MaxMS)))
		default:
			return pass(ev + " — " + s.Describe())
		}
	}
	if len(fails) == 0 {
		return errorf("%s", strings.Join(errs, "; "))
	}
	return failed(strings.Join(fails, "; "), "respuesta incorrecta")
}

func (e *evalEnv) port(c *Check) Result {
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	var fails []string
	for _, s := range servers {
		n := len(s.Workers)
		if s.Unknown {
			return Result{Outcome: Error, Evidence: s.Describe(), Reason: "no se pudo ver qué procesos sirven el puerto"}
		}
		if c.MinWorkers != nil {
			want, ok := c.MinWorkers.Resolve(e.f.CPUs)
			if !ok {
				return errorf("no se conoce el número de CPU del host")
			}
			if n < want {
				fails = append(fails, fmt.Sprintf("%s: %d workers, se esperaban al menos %d", s.Describe(), n, want))
				continue
			}
		}
		if c.MaxWorkers != nil {
			want, ok := c.MaxWorkers.Resolve(e.f.CPUs)
			if !ok {
				return errorf("no se conoce el número de CPU del host")
			}
			if n > want {
				fails = append(fails, fmt.Sprintf("%s: %d workers, se esperaban como mucho %d", s.Describe(), n, want))
				continue
			}
		}
		return pass(s.Describe())
	}
	return failed(strings.Join(fails, "; "), "número de workers incorrecto")
}

func procLine(p Process) string {
	return fmt.Sprintf("pid %d %s: %s", p.PID, p.User, clip(p.Cmdline, 100))
}

func (e *evalEnv) process(c *Check) Result {
	if len(e.f.Processes) == 0 {
		return errorf("el sondeo no obtuvo la lista de procesos")
	}
	var lines []string
	for _, p := range e.f.Processes {
		if c.cmdlineRe.MatchString(p.Cmdline) && (c.userRe == nil || c.userRe.MatchString(p.User)) {
			lines = append(lines, procLine(p))
		}
	}
	ev := strings.Join(firstN(lines, 3), "; ")
	if len(lines) >= c.Min && len(lines) > 0 {
		return pass(ev)
	}
	if len(lines) == 0 {
		return failed("ningún proceso casa con /"+c.Cmdline+"/", "el proceso no está en ejecución")
	}
	return failed(ev, "%d procesos, se esperaban al menos %d", len(lines), c.Min)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("(y %d más)", len(s)-n))
	}
	return s
}

// lineOf returns the (trimmed) line of s where re matches, with its number.
func lineOf(s string, re *regexp.Regexp) string {
	loc := re.FindStringIndex(s)
	if loc == nil {
		return ""
	}
	start := strings.LastIndexByte(s[:loc[0]], '\n') + 1
	end := strings.IndexByte(s[loc[0]:], '\n')
	if end < 0 {
		end = len(s)
	} else {
		end += loc[0]
	}
	n := strings.Count(s[:start], "\n") + 1
	return fmt.Sprintf("línea %d: %s", n, clip(s[start:end], 100))
}

func (e *evalEnv) file(c *Check) Result {
	var ok, near []string
	for _, f := range e.f.Files {
		if !c.pathRe.MatchString(f.Path) {
			continue
		}
		missing := ""
		for i, re := range c.containsRe {
			if !re.MatchString(f.Content) {
				missing = fmt.Sprintf("%s: no contiene /%s/", f.Path, c.Contains[i])
				if f.Truncated {
					missing += " (solo se leyó el principio)"
				}
				break
			}
		}
		if missing == "" {
			for i, re := range c.notRe {
				if re.MatchString(f.Content) {
					missing = fmt.Sprintf("%s: contiene /%s/ (%s)", f.Path, c.NotContains[i], lineOf(f.Content, re))
					break
				}
			}
		}
		if missing != "" {
			near = append(near, missing)
			continue
		}
		ev := f.Path
		if len(c.containsRe) > 0 {
			ev += " " + lineOf(f.Content, c.containsRe[0])
		}
		ok = append(ok, ev)
	}
	if len(ok) >= c.Min && len(ok) > 0 {
		return pass(strings.Join(firstN(ok, 3), "; "))
	}
	if len(ok) > 0 {
		return failed(strings.Join(firstN(ok, 3), "; "), "%d ficheros, se esperaban al menos %d", len(ok), c.Min)
	}
	if len(near) > 0 {
		return failed(strings.Join(firstN(near, 4), "; "), "ningún fichero %s con el contenido esperado", c.PathGlob)
	}
	return failed(fmt.Sprintf("%d ficheros de proyecto vistos", len(e.f.Files)), "ningún fichero %s", c.PathGlob)
}

// CommandKey is the name under which the probe reports the output of a
// command the rubric asked for.
func CommandKey(run string) string {
	h := fnv.New32a()
	h.Write([]byte(run))
	return fmt.Sprintf("c%08x", h.Sum32())
}

func (e *evalEnv) command(c *Check) Result {
	key := CommandKey(c.Run)
	for _, r := range e.f.Commands {
		if r.Name != key {
			continue
		}
		ev := fmt.Sprintf("$ %s → salida %d «%s»", clip(c.Run, 60), r.Exit, clip(r.Output, 100))
		if c.Exit != nil && r.Exit != *c.Exit {
			return failed(ev, "se esperaba la salida %d", *c.Exit)
		}
		if c.outputRe != nil && !c.outputRe.MatchString(r.Output) {
			return failed(ev, "la salida no casa con /%s/", c.Output)
		}
		return pass(ev)
	}
	return errorf("el sondeo no ejecutó «%s»", clip(c.Run, 60))
}

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

func (e *evalEnv) systemd(c *Check) Result {
	re, _ := globRegexp(c.Unit)
	var fails []string
	for _, u := range e.f.Units {
		if !re.MatchString(u.Name) || u.Load == "not-found" {
			continue
		}
		ev := unitLine(u)
		if c.Enabled != nil && (u.Enabled == "enabled") != *c.Enabled {
			fails = append(fails, ev)
			continue
		}
		if c.Active != nil && (u.Active == "active") != *c.Active {
			fails = append(fails, ev)
			continue
		}
		return pass(ev)
	}
	if len(fails) > 0 {
		var want []string
		if c.Enabled != nil {
			want = append(want, map[bool]string{true: "habilitada", false: "deshabilitada"}[*c.Enabled])
		}
		if c.Active != nil {
			want = append(want, map[bool]string{true: "activa", false: "parada"}[*c.Active])
		}
		return failed(strings.Join(fails, "; "), "se esperaba la unidad %s", strings.Join(want, " y "))
	}
	if !e.hasSystemd() {
		return errorf("el host no tiene systemd (o el sondeo no pudo consultarlo)")
	}
	return failed("", "no existe la unidad %s", c.Unit)
}

func (e *evalEnv) hasSystemd() bool {
	for _, n := range e.f.Notes {
		if strings.HasPrefix(n, "systemd:") {
			return false
		}
	}
	return true
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

func (e *evalEnv) pm2(c *Check) Result {
	var groups []pm2Group
	var errs []string
	for _, d := range e.f.PM2 {
		if d.Error != "" {
			errs = append(errs, d.Home+": "+d.Error)
		}
		for _, a := range d.Apps {
			if c.appRe != nil && !c.appRe.MatchString(a.Name) && !c.appRe.MatchString(a.Script) {
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
		return failed("pm2 jlist: []", "PM2 no gestiona ninguna aplicación%s", map[bool]string{true: " que case con /" + c.App + "/", false: ""}[c.App != ""])
	}
	var fails []string
	for _, g := range groups {
		ev := g.describe()
		if c.ExecMode != "" {
			want := c.ExecMode + "_mode"
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
		if c.Instances != nil {
			want, ok := c.Instances.Resolve(e.f.CPUs)
			if !ok {
				return errorf("no se conoce el número de CPU del host")
			}
			if g.online() < want {
				fails = append(fails, fmt.Sprintf("%s: se esperaban %d instancias online (%s)", ev, want, c.Instances))
				continue
			}
		}
		if c.Online && g.online() < len(g.apps) || c.Online && len(g.apps) == 0 {
			fails = append(fails, ev+": no todas las instancias están online")
			continue
		}
		if c.Saved {
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

func (e *evalEnv) tool(c *Check) Result {
	for _, want := range c.Tools {
		for _, t := range e.f.Tools {
			if strings.EqualFold(t.Name, want) {
				ev := t.Name
				if t.Version != "" {
					ev += " " + t.Version
				}
				if t.Path != "" {
					ev += " (" + t.Path + ")"
				}
				return pass(ev)
			}
		}
	}
	var have []string
	for _, t := range e.f.Tools {
		have = append(have, t.Name)
	}
	return failed("instalado: "+strings.Join(have, ", "), "no está instalado ninguno de: %s", strings.Join(c.Tools, ", "))
}

func (e *evalEnv) history(c *Check) Result {
	var lines []string
	for _, h := range e.f.History {
		if c.patternRe.MatchString(h.Line) {
			lines = append(lines, clip(h.Line, 100))
		}
	}
	if len(lines) >= c.Min && len(lines) > 0 {
		return pass(strings.Join(firstN(lines, 3), " | "))
	}
	if len(lines) > 0 {
		return failed(strings.Join(lines, " | "), "%d órdenes en el historial, se esperaban al menos %d", len(lines), c.Min)
	}
	return failed(fmt.Sprintf("%d líneas de historial relevantes vistas", len(e.f.History)), "el historial no muestra /%s/", c.Pattern)
}

func (e *evalEnv) benchCheck(c *Check) Result {
	if len(e.bench) == 0 {
		return skipf("no hay resultados de deploylab bench para este host")
	}
	latest := map[string]BenchSummary{}
	for _, b := range e.bench {
		if b.Route != c.Route {
			continue
		}
		if old, ok := latest[b.Server]; !ok || !b.At.Before(old.At) {
			latest[b.Server] = b
		}
	}
	si, okS := latest[ServerSingle]
	cl, okC := latest[ServerCluster]
	desc := func(b BenchSummary) string {
		s := fmt.Sprintf("%s %.0f rps (p50 %s, p99 %s", b.Server, b.RPS, fmtMillis(b.P50us/1000), fmtMillis(b.P99us/1000))
		if b.Errors > 0 {
			s += fmt.Sprintf(", %d errores", b.Errors)
		}
		if b.Tool != "" {
			s += ", " + b.Tool
		}
		return s + ")"
	}
	switch {
	case !okS && !okC:
		var routes []string
		for _, b := range e.bench {
			if !slices.Contains(routes, b.Route) {
				routes = append(routes, b.Route)
			}
		}
		return failed("rutas medidas: "+strings.Join(routes, ", "), "no hay resultados para %s", c.Route)
	case !okS:
		return failed(c.Route+": "+desc(cl), "falta el resultado del servidor sin cluster")
	case !okC:
		return failed(c.Route+": "+desc(si), "falta el resultado del servidor en cluster")
	}
	ev := c.Route + ": " + desc(si) + ", " + desc(cl)
	if si.RPS > 0 {
		ev += fmt.Sprintf(": ×%.2f", cl.RPS/si.RPS)
	}
	if c.ClusterBeatsSingle || c.MinSpeedup > 0 {
		min := c.MinSpeedup
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

func (e *evalEnv) blocking(c *Check) Result {
	servers, res := e.pick(c)
	if res != nil {
		return *res
	}
	limit := c.MaxMS
	if limit == 0 {
		limit = 1000
	}
	var fails, errs []string
	for _, s := range servers {
		var b *BlockingProbe
		for i := range e.f.Blocking {
			if e.f.Blocking[i].Port == s.Port {
				b = &e.f.Blocking[i]
			}
		}
		if b == nil {
			errs = append(errs, fmt.Sprintf("el sondeo no hizo la prueba de bloqueo en el puerto %d", s.Port))
			continue
		}
		if b.Error != "" {
			errs = append(errs, fmt.Sprintf("puerto %d: %s", s.Port, b.Error))
			continue
		}
		heavy := fmt.Sprintf("GET :%d%s → %d en %s", s.Port, b.HeavyPath, b.HeavyStatus, fmtMillis(b.HeavyMillis))
		if b.HeavyStatus == 0 {
			heavy = fmt.Sprintf("GET :%d%s sin terminar tras %s", s.Port, b.HeavyPath, fmtMillis(b.HeavyMillis))
		}
		short := fmt.Sprintf("GET :%d%s → %d en %s", s.Port, b.ShortPath, b.ShortStatus, fmtMillis(b.ShortMillis))
		if b.ShortStatus == 0 {
			short = fmt.Sprintf("GET :%d%s sin respuesta tras %s", s.Port, b.ShortPath, fmtMillis(b.ShortMillis))
		}
		ev := fmt.Sprintf("petición pesada %s; corta, enviada %s después: %s", heavy, fmtMillis(b.OffsetMillis), short)
		if b.ShortStatus == 0 || b.ShortMillis > limit {
			fails = append(fails, ev)
			continue
		}
		if b.HeavyStatus != 0 && b.HeavyMillis <= b.OffsetMillis+b.ShortMillis {
			errs = append(errs, ev+": no concluyente, la petición pesada terminó antes que la corta")
			continue
		}
		return pass(ev + " — " + s.Describe())
	}
	if len(fails) > 0 {
		return failed(strings.Join(fails, "; "), "la petición corta esperó a la pesada (más de %s): el servidor se bloquea", fmtMillis(limit))
	}
	return errorf("%s", strings.Join(errs, "; "))
}

func (e *evalEnv) respawn(c *Check) Result {
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

func (e *evalEnv) reload(c *Check) Result {
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
			if o.Failed > c.MaxFailed {
				return failed(ev, "se perdieron peticiones (máximo %d)", c.MaxFailed)
			}
			return pass(ev)
		}
	}
	return errorf("no hay observación de recarga para el puerto %d", servers[0].Port)
}

func (e *evalEnv) anyOf(c *Check) Result {
	var fails, errs, skips []string
	for i := range c.Checks {
		alt := &c.Checks[i]
		r := e.eval(alt)
		label := alt.Name
		if label == "" {
			label = alt.ID
		}
		switch r.Outcome {
		case Pass:
			return pass(label + ": " + r.Evidence)
		case Fail:
			s := label + ": " + r.Reason
			if r.Evidence != "" {
				s += " (" + r.Evidence + ")"
			}
			fails = append(fails, s)
		case Error:
			errs = append(errs, label+": "+r.Reason)
		case Skip:
			skips = append(skips, label+": "+r.Reason)
		}
	}
	switch {
	case len(errs) > 0:
		r := errorf("%s", strings.Join(errs, "; "))
		r.Evidence = strings.Join(fails, "; ")
		return r
	case len(fails) > 0:
		return failed(strings.Join(fails, "; "), "no se cumple ninguna alternativa")
	}
	return skipf("%s", strings.Join(skips, "; "))
}
