package grade

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/checks"
	obs "github.com/deploylab/deploylab/observe"
	"github.com/deploylab/deploylab/remote"
)

// The active checks disturb the host, so they run only with --active:
//
//   - respawn: one worker of the cluster server is killed (SIGKILL, as a
//     crash would); the check passes when a new process of the same program
//     takes its place under the same parent within RespawnWait;
//   - reload: the server is reloaded the way its manager does it (`pm2
//     reload <app>` as the daemon's user, `systemctl reload <unit>`) while two
//     request loops GET / on it; every answer that is not 2xx (or no answer)
//     is a failed request.

// RespawnWait is how long a killed worker has to come back.
const RespawnWait = 10 * time.Second

func hasActive(r *checks.Rubric) bool {
	found := false
	for _, c := range r.Criteria {
		for _, ch := range c.Checks {
			if ch.Kind == checks.KindRespawn || ch.Kind == checks.KindReload {
				found = true
			}
			for _, alt := range ch.Checks {
				if alt.Kind == checks.KindRespawn || alt.Kind == checks.KindReload {
					found = true
				}
			}
		}
	}
	return found
}

// activeTargets returns the servers the rubric's checks of kind k are about,
// the practice's port 3000 first (as checks prefers it): only the first one is
// disturbed.
func activeTargets(r *checks.Rubric, servers []checks.Server, k checks.Kind) []checks.Server {
	var out []checks.Server
	add := func(ch checks.Check) {
		for _, s := range servers {
			if ch.Port != 0 && s.Port != ch.Port || s.Unknown {
				continue
			}
			ok := ch.Server == checks.ServerAny || ch.Server == "" ||
				ch.Server == checks.ServerCluster && s.Cluster || ch.Server == checks.ServerSingle && !s.Cluster
			if ok && !slices.ContainsFunc(out, func(o checks.Server) bool { return o.Port == s.Port }) {
				out = append(out, s)
			}
		}
	}
	for _, c := range r.Criteria {
		for _, ch := range c.Checks {
			if ch.Kind == k {
				add(ch)
			}
			for _, alt := range ch.Checks {
				if alt.Kind == k {
					add(alt)
				}
			}
		}
	}
	slices.SortStableFunc(out, func(a, b checks.Server) int {
		switch {
		case a.Port == 3000 && b.Port != 3000:
			return -1
		case b.Port == 3000 && a.Port != 3000:
			return 1
		}
		return a.Port - b.Port
	})
	if len(out) > 1 {
		out = out[:1]
	}
	return out
}

// active makes the active observations. Errors are transport errors only;
// what could not be observed is said in the observation's Detail.
func (p *prober) active(ctx context.Context, r *checks.Rubric, f *checks.HostFacts) (*checks.ActiveFacts, error) {
	a := &checks.ActiveFacts{}
	servers := f.Servers(r.AppRe())
	for _, s := range activeTargets(r, servers, checks.KindRespawn) {
		o, err := p.respawn(ctx, s)
		if err != nil {
			return nil, err
		}
		a.Respawn = append(a.Respawn, o)
	}
	for _, s := range activeTargets(r, servers, checks.KindReload) {
		o, err := p.reload(ctx, f, s)
		if err != nil {
			return nil, err
		}
		a.Reload = append(a.Reload, o)
	}
	return a, nil
}

// respawnScript kills victim and waits for a new child of parent running
// prog. It prints "killed", then "new PID MS" or "none".
const respawnScript = `set -f
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
victim=%d; parent=%d; prog=%s; before=%s; wait_ms=%d
now_ms() { d=$(date +%%s%%N); echo $((d / 1000000)); }
if ! kill -9 "$victim" 2>/dev/null; then
	if [ -d "/proc/$victim" ]; then echo "error: kill $victim: permission denied"; else echo "error: process $victim is gone"; fi
	exit 0
fi
echo killed
t0=$(now_ms)
while :; do
	for p in $(ps -o pid= --ppid "$parent" 2>/dev/null); do
		case " $before " in *" $p "*) continue ;; esac
		a=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)
		set -- $a
		[ "${1##*/}" = "$prog" ] || continue
		echo "new $p $(( $(now_ms) - t0 ))"
		exit 0
	done
	[ $(( $(now_ms) - t0 )) -lt "$wait_ms" ] || break
	sleep 0.1
done
echo none
`

func (p *prober) respawn(ctx context.Context, s checks.Server) (checks.RespawnObservation, error) {
	o := checks.RespawnObservation{Port: s.Port}
	if len(s.Workers) == 0 {
		o.Detail = "no se vio ningún worker"
		return o, nil
	}
	victim := s.Workers[len(s.Workers)-1]
	o.KilledPID = victim.PID
	prog := checks.ProgName(victim.Cmdline)
	var before []string
	for _, w := range s.Workers {
		before = append(before, strconv.Itoa(w.PID))
	}
	script := fmt.Sprintf(respawnScript, victim.PID, victim.PPID, remote.ShellQuote(prog),
		remote.ShellQuote(strings.Join(before, " ")), RespawnWait.Milliseconds())
	res, err := p.run(ctx, []byte(script))
	if err != nil {
		return o, fmt.Errorf("respawn check: %w", err)
	}
	out := strings.TrimSpace(string(res.Stdout))
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "new":
			o.NewPID, _ = strconv.Atoi(f[1])
			ms, _ := strconv.Atoi(f[2])
			o.After = time.Duration(ms) * time.Millisecond
			o.Respawned = true
		case len(f) > 0 && f[0] == "none":
			o.Detail = fmt.Sprintf("ningún proceso nuevo de %s bajo el pid %d en %s", prog, victim.PPID, RespawnWait)
		case strings.HasPrefix(l, "error: "):
			o.KilledPID = 0
			o.Detail = "no se pudo matar el worker: " + strings.TrimPrefix(l, "error: ")
		}
	}
	if !o.Respawned && o.Detail == "" {
		o.Detail = "salida inesperada: " + firstLine(res.Stdout) + " " + firstLine(res.Stderr)
	}
	return o, nil
}

// reloadScript runs two request loops on the port while cmd reloads the
// server. It prints "result EXIT REQUESTS FAILED" and the reload's output.
const reloadScript = `PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
port=%d
U="http://127.0.0.1:$port/"
D=$(mktemp -d) || exit 1
trap 'touch "$D/stop"; rm -rf "$D"' EXIT
command -v curl >/dev/null 2>&1 || { echo "error: curl is not installed on the host"; exit 0; }
loop() {
	n=0
	while [ ! -f "$D/stop" ] && [ $n -lt 3000 ]; do
		curl -s -w '%%{http_code}\n' --max-time 5 -o /dev/null "$U" -o /dev/null "$U" -o /dev/null "$U" >>"$D/codes.$1" 2>/dev/null
		n=$((n + 1))
	done
}
loop 1 & l1=$!
loop 2 & l2=$!
sleep 1
( %s ) >"$D/reload.out" 2>&1 </dev/null
rc=$?
sleep 1
touch "$D/stop"
wait $l1 $l2
total=$(cat "$D"/codes.* 2>/dev/null | wc -l)
bad=$(cat "$D"/codes.* 2>/dev/null | grep -vc '^2')
echo "result $rc $total $bad"
tail -c 600 "$D/reload.out"
`

// reloadCommand is how the server's manager reloads it, and what to call it.
func (p *prober) reloadCommand(f *checks.HostFacts, s checks.Server) (cmd, what string) {
	switch {
	case s.Manager == "pm2":
		pids := map[int]bool{}
		for _, w := range s.Workers {
			pids[w.PID] = true
		}
		for _, d := range f.PM2 {
			for _, a := range d.Apps {
				if !pids[a.PID] {
					continue
				}
				// As root, only a pm2 in a system directory is run; the
				// daemon's user's own pm2 (nvm's) only as that user.
				asUser := p.sudo && d.User != "" && d.User != "root"
				asRoot := p.sudo && !asUser
				bin := ""
				for _, t := range f.Tools {
					if t.Name == "pm2" && t.Path != "" && (!asRoot || obs.SystemPath(t.Path)) {
						bin = t.Path
						break
					}
				}
				if bin == "" {
					return "", "pm2 no está instalado en un directorio del sistema: no se ejecuta como root"
				}
				pathVar := "/usr/local/bin:/usr/bin:/bin"
				if !obs.SystemPath(bin) {
					pathVar = path.Dir(bin) + ":" + pathVar
				}
				env := "env PM2_HOME=" + remote.ShellQuote(d.Home) + " HOME=" + remote.ShellQuote(strings.TrimSuffix(d.Home, "/.pm2")) +
					" PATH=" + remote.ShellQuote(pathVar)
				line := env + " " + remote.ShellQuote(bin) + " reload " + remote.ShellQuote(a.Name)
				if asUser {
					line = "runuser -u " + remote.ShellQuote(d.User) + " -- " + line
				}
				return line, "pm2 reload " + a.Name
			}
		}
		return "", ""
	case strings.HasPrefix(s.Manager, "systemd "):
		unit := strings.TrimPrefix(s.Manager, "systemd ")
		return "systemctl reload " + remote.ShellQuote(unit), "systemctl reload " + unit
	}
	return "", ""
}

func (p *prober) reload(ctx context.Context, f *checks.HostFacts, s checks.Server) (checks.ReloadObservation, error) {
	o := checks.ReloadObservation{Port: s.Port}
	cmd, what := p.reloadCommand(f, s)
	if cmd == "" {
		o.Detail = "el servidor no lo gestiona PM2 ni systemd: no hay recarga que probar"
		if what != "" {
			o.Detail = what
		} else if s.Manager != "" {
			o.Detail = "no se encontró la aplicación de " + s.Manager + " que sirve el puerto"
		}
		return o, nil
	}
	if strings.HasPrefix(what, "systemctl") && !p.sudo {
		o.Detail = "systemctl reload necesita root y sudo no está disponible"
		return o, nil
	}
	res, err := p.run(ctx, []byte(fmt.Sprintf(reloadScript, s.Port, cmd)))
	if err != nil {
		return o, fmt.Errorf("reload check: %w", err)
	}
	out := string(res.Stdout)
	head, rest, _ := strings.Cut(out, "\n")
	f2 := strings.Fields(head)
	if len(f2) == 4 && f2[0] == "result" {
		rc, _ := strconv.Atoi(f2[1])
		o.Requests, _ = strconv.Atoi(f2[2])
		o.Failed, _ = strconv.Atoi(f2[3])
		o.Detail = what
		if rc != 0 {
			o.Detail += fmt.Sprintf(" terminó con el estado %d: %s", rc, clipLine(rest, 200))
			if o.Failed == 0 {
				// A reload that did not happen proves nothing.
				o.Requests = 0
			}
		}
		return o, nil
	}
	o.Detail = what + ": " + clipLine(head+" "+firstLine(res.Stderr), 200)
	return o, nil
}

func clipLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
