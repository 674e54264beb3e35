package checks

import (
	"github.com/deploylab/deploylab/observe"

	"fmt"
	"strconv"
	"strings"
)

// KindSessions: a session app (POST /login, GET /me, POST /logout) keeps a user logged in on every worker and revokes everywhere.
const KindSessions Kind = "sessions"

func init() {
	register(KindSessions, "a session app (POST /login, GET /me, POST /logout) keeps a user logged in on every worker and revokes everywhere", func() Params { return &sessionsCheck{} })
}

// sessionsCheck grades the stateful-cluster exercise (issue 17; off unless a
// rubric names it, e.g. an advanced criterion):
//
//   - id: sesiones
//     kind: sessions
//     port: 3001
//     gets: 6            # GET /me calls, each on a new connection (default 6)
//     revocation: true   # also require 401 everywhere after the logout (default)
//
// The probe runs a small curl script on the host: log in, wait 300 ms, make
// Gets GET /me on fresh connections (the cluster spreads them over its
// workers), log out, wait 300 ms, make Gets GET /me again. A token kept in one
// worker's memory fails the first part; a signed token that a logout cannot
// revoke (stateless) fails the second unless revocation is false.
type sessionsCheck struct {
	Port       int
	Gets       int
	Revocation bool
}

func (s *sessionsCheck) decode(d *decoder) {
	if d.integer("port", &s.Port, false) && (s.Port < 1 || s.Port > 65535) {
		d.failf(d.nodeOf("port"), "check %q: port %d out of range 1-65535", d.c.ID, s.Port)
	}
	if d.ok() && s.Port == 0 {
		d.failf(nil, "check %q: kind sessions needs port", d.c.ID)
	}
	s.Gets = 6
	if d.integer("gets", &s.Gets, false) && (s.Gets < 1 || s.Gets > 50) {
		d.failf(d.nodeOf("gets"), "check %q: gets must be 1 to 50, not %d", d.c.ID, s.Gets)
	}
	s.Revocation = true
	d.boolean("revocation", &s.Revocation)
}

func (s *sessionsCheck) describe(add func(k, v string)) {
	add("port", strconv.Itoa(s.Port))
	add("gets", strconv.Itoa(s.Gets))
	add("revocation", strconv.FormatBool(s.Revocation))
}

// script is the probe's command: one line per part, statuses comma-separated.
func (s *sessionsCheck) script() string {
	return fmt.Sprintf(`u=http://127.0.0.1:%d; n=%d
command -v curl >/dev/null 2>&1 || { echo nocurl; exit 0; }
me() { i=0; while [ $i -lt $n ]; do curl -s -m 5 -o /dev/null -w '%%{http_code},' -H "Authorization: Bearer $t" $u/me; i=$((i+1)); done; echo; }
t=$(curl -s -m 5 -X POST -H 'Content-Type: application/json' -d '{"name":"deploylab"}' $u/login | sed -n 's/.*"token" *: *"\([A-Za-z0-9._-]*\)".*/\1/p')
[ -n "$t" ] || { echo login=fail; exit 0; }
sleep 0.3; printf 'me='; me
printf 'logout='; curl -s -m 5 -o /dev/null -w '%%{http_code}\n' -X POST -H "Authorization: Bearer $t" $u/logout
sleep 0.3; printf 'after='; me`, s.Port, s.Gets)
}

func (s *sessionsCheck) probe(o *observe.Options) { o.Commands = addCommand(o.Commands, s.script()) }

// sessionsRun is what the script printed (untrusted: parsed line by line,
// unknown lines ignored, statuses counted, never indexed).
type sessionsRun struct {
	noCurl, loginFail bool
	me, after         []string
	logout            string
}

func parseSessionsRun(out string) sessionsRun {
	var r sessionsRun
	out = out[:min(len(out), 4096)]
	for line := range strings.SplitSeq(out, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		statuses := func() []string {
			var ss []string
			for st := range strings.SplitSeq(v, ",") {
				if st != "" && len(ss) < 50 {
					ss = append(ss, st)
				}
			}
			return ss
		}
		switch k {
		case "nocurl":
			r.noCurl = true
		case "login":
			r.loginFail = true
		case "me":
			r.me = statuses()
		case "logout":
			r.logout = v
		case "after":
			r.after = statuses()
		}
	}
	return r
}

func count(ss []string, want string) int {
	n := 0
	for _, s := range ss {
		if s == want {
			n++
		}
	}
	return n
}

func (s *sessionsCheck) eval(e *env, _ *Check) Result {
	key := CommandKey(s.script())
	for _, c := range e.f.Commands {
		if c.Name != key {
			continue
		}
		r := parseSessionsRun(c.Output)
		switch {
		case r.noCurl:
			return errorf("el host no tiene curl para probar las sesiones")
		case r.loginFail:
			return failed(fmt.Sprintf("POST :%d/login no devolvió un token", s.Port), "no hay una app de sesiones en el puerto %d", s.Port)
		}
		ev := fmt.Sprintf("puerto %d: GET /me tras el login → %s; logout → %s; GET /me tras el logout → %s",
			s.Port, clip(strings.Join(r.me, ","), 200), clip(r.logout, 10), clip(strings.Join(r.after, ","), 200))
		ok := count(r.me, "200")
		switch {
		case len(r.me) == 0:
			return errorf("el sondeo no hizo las peticiones GET /me: %s", clip(c.Output, 100))
		case ok < len(r.me):
			return failed(ev, "%d de %d GET /me con un token válido fallaron: la sesión no se comparte entre los workers", len(r.me)-ok, len(r.me))
		case !s.Revocation:
			return pass(ev)
		case r.logout != "204":
			return failed(ev, "POST /logout respondió %s, se esperaba 204", clip(r.logout, 10))
		case count(r.after, "401") < len(r.after) || len(r.after) == 0:
			return failed(ev, "%d de %d GET /me tras el logout aún respondían: el token no se revocó en todos los workers", len(r.after)-count(r.after, "401"), len(r.after))
		}
		return pass(ev)
	}
	return errorf("el sondeo no probó las sesiones del puerto %d", s.Port)
}
