package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/deploylab/deploylab/payload/loadgen"
	"github.com/deploylab/deploylab/remote"
)

// The sessions scenario (deploylab bench --plan sessions; issue 17): the
// cluster-mode lesson's stateful server, measured. For each mode (memory,
// master, stateless) the bench starts deploylab's sumcluster on the host
// (uploaded beside loadgen, as the login user, on a loopback port), runs
// loadgen sessions against it — users log in and call GET /me over fresh
// connections while a worker is killed and one recycled, then GET /me is
// measured with logins churning in the background — and stops it. A run is
// stored per mode, its figures in Record.Sessions.

// Sessions modes, in report order.
var sessionModes = []string{"memory", "master", "stateless"}

// DefaultSessionsPort is the loopback port the bench's session clusters
// listen on.
const DefaultSessionsPort = 3290

// SessionsPlanYAML is the plan of deploylab bench --plan sessions.
const SessionsPlanYAML = `# deploylab's sessions plan (deploylab bench --plan sessions): the stateful
# cluster of the cluster-mode lesson. For each mode the bench starts a
# sumcluster of its own on the host (127.0.0.1:3290, as the login user),
# measures it and stops it; the practice's servers are not used.
servers: []
scenarios:
  - name: sessions
    kind: sessions
    modes: [memory, master, stateless]
    users: 200
    gets: 4
    concurrency: 8
    workers: 2
    rate: 3s
    churn: 10
`

// SessionsPlanName is the name --plan takes for SessionsPlanYAML.
const SessionsPlanName = "sessions"

// SessionsPlan returns the parsed SessionsPlanYAML.
func SessionsPlan() *Plan {
	p, err := ParsePlan("sessions plan", []byte(SessionsPlanYAML))
	if err != nil {
		panic("bench: the sessions plan is invalid: " + err.Error())
	}
	return p
}

// SessionsScenario is the sessions plan's scenario (bench --compare adds
// it to the plan it runs).
func SessionsScenario() Scenario { return SessionsPlan().Scenarios[0] }

func (s *Scenario) normaliseSessions() error {
	if s.Route != "" || s.Requests != 0 || s.KeepAlive || s.Timeout != 0 || s.Probe != "" || s.Probes != 0 || s.Delay != 0 {
		return errors.New("a sessions scenario has modes, users, gets, concurrency, workers, port, rate and churn (no route)")
	}
	if len(s.Modes) == 0 {
		s.Modes = slices.Clone(sessionModes)
	}
	seen := map[string]bool{}
	for _, m := range s.Modes {
		if !slices.Contains(sessionModes, m) {
			return fmt.Errorf("mode %q: want memory, master or stateless", m)
		}
		if seen[m] {
			return fmt.Errorf("mode %q listed twice", m)
		}
		seen[m] = true
	}
	def := func(v *int, d, lo, hi int, what string) error {
		if *v == 0 {
			*v = d
		}
		if *v < lo || *v > hi {
			return fmt.Errorf("%s %d: want %d to %d", what, *v, lo, hi)
		}
		return nil
	}
	for _, e := range []error{
		def(&s.Users, 200, 1, 1_000_000, "users"),
		def(&s.Gets, 4, 1, 1000, "gets"),
		def(&s.Concurrency, 8, 1, MaxConcurrency, "concurrency"),
		def(&s.Workers, 2, 1, 64, "workers"),
		def(&s.Port, DefaultSessionsPort, 1, 65535, "port"),
	} {
		if e != nil {
			return e
		}
	}
	if s.Rate == 0 {
		s.Rate = Duration(3 * time.Second)
	}
	if time.Duration(s.Rate) > 10*time.Minute {
		return fmt.Errorf("rate %s: want at most 10m", time.Duration(s.Rate))
	}
	if s.Churn == 0 {
		s.Churn = 10
	}
	if s.Churn < 0 || s.Churn > 10_000 {
		return fmt.Errorf("churn %g: want 0 to 10000 logins a second", s.Churn)
	}
	return nil
}

// sessionsScript starts sumcluster in mode on the host, runs loadgen
// sessions against it ("run" section, "exit" its status) and stops it
// ("log": the end of its log).
func sessionsScript(loadgenPath, sumclusterPath string, s Scenario, mode string) string {
	var b strings.Builder
	b.WriteString("export LC_ALL=C\n")
	b.WriteString("d=$(mktemp -d) || exit 1\n")
	b.WriteString("head -c 32 /dev/urandom >\"$d/key\" && chmod 600 \"$d/key\"\n")
	fmt.Fprintf(&b, "%s --addr 127.0.0.1 --port %d --instances %d --sessions %s --session-key-file \"$d/key\" --stats-socket \"$d/stats.sock\" >\"$d/log\" 2>&1 </dev/null &\n",
		remote.ShellQuote(sumclusterPath), s.Port, s.Workers, mode)
	b.WriteString("sp=$!\n")
	b.WriteString("trap 'kill $sp 2>/dev/null; wait $sp 2>/dev/null; rm -rf \"$d\"' EXIT\n")
	// Master mode shares its tokens: each user's follow-ups wait until
	// every worker says it holds the token (lost then means lost after
	// propagation, whatever the host's load); the other modes wait 20 ms.
	wait := ""
	if mode == "master" {
		wait = " --propagate 10s"
	}
	fmt.Fprintf(&b, "echo @@run\n%s sessions --json --users %d --gets %d -c %d --workers %d%s --stats-socket \"$d/stats.sock\" --rate %s --churn %s http://127.0.0.1:%d\nrc=$?\n",
		remote.ShellQuote(loadgenPath), s.Users, s.Gets, s.Concurrency, s.Workers, wait,
		time.Duration(s.Rate), strconv.FormatFloat(s.Churn, 'f', -1, 64), s.Port)
	b.WriteString("echo @@exit\necho $rc\n")
	b.WriteString("kill $sp 2>/dev/null; wait $sp 2>/dev/null\n")
	b.WriteString("echo @@log\ntail -c 2000 \"$d/log\"\necho @@end\n")
	return "sh -c " + remote.ShellQuote(b.String())
}

// sessions measures one mode of a sessions scenario.
func (h *hostRun) sessions(ctx context.Context, s Scenario, mode string) (*Record, error) {
	if h.sumcluster == "" {
		return nil, errors.New("sessions: no sumcluster on the host (Options.Sumcluster not set)")
	}
	u := fmt.Sprintf("http://127.0.0.1:%d", s.Port)
	one := s
	one.Name = s.Name + "-" + mode
	one.Modes = []string{mode}
	rec := h.newRecord(one, nil, u)
	rec.Server = ServerInfo{Mode: ModeCluster, Port: s.Port, URL: u, Stack: LangGo, Workers: s.Workers}
	secs, code, stderr, err := h.runSections(ctx, one.Name, sessionsScript(h.loadgen, h.sumcluster, s, mode))
	if err != nil {
		return nil, err
	}
	var sr loadgen.SessionsResult
	if err := json.Unmarshal(secs["run"], &sr); err != nil || sr.Schema != loadgen.SessionsSchema {
		msg := firstLine(stderr)
		if l := strings.TrimSpace(string(secs["log"])); l != "" {
			msg += " (sumcluster: " + firstLine([]byte(l)) + ")"
		}
		return nil, fmt.Errorf("run %s: loadgen sessions failed (exit status %d): %s", one.Name, code, msg)
	}
	if sr.Mode == "" {
		sr.Mode = mode
	}
	if sr.Explanation == "" || !strings.HasPrefix(sr.Explanation, mode) {
		sr.Explanation = loadgen.ExplainSessions(&sr)
	}
	rec.Sessions = &sr
	rec.Tool = ToolInfo{Name: "loadgen", Version: sr.Version, Path: h.loadgen}
	// The generic result: the whole scenario's requests (logins, GET /me,
	// logouts) and their rate, so that lists and stores read it as any run.
	r := &loadgen.Result{Schema: loadgen.Schema, Completed: int64(sr.Requests), OK: int64(sr.Requests - sr.Errors), RPS: sr.RPS}
	r.Tool.Name, r.Tool.Version = "loadgen", sr.Version
	r.Errors.Total = int64(sr.Errors)
	r.DurationS = sr.DurationS
	rec.Result = r
	if code != 0 {
		rec.Notes = append(rec.Notes, fmt.Sprintf("loadgen sessions exited with status %d: %s", code, firstLine(stderr)))
	}
	for _, d := range sr.Disruptions {
		if strings.Contains(d, ": ") {
			rec.Notes = append(rec.Notes, "disruption failed: "+d)
		}
	}
	return rec, nil
}

// sumclusterPath is where the bench uploads sumcluster on the host.
func sumclusterPath(home string) string { return path.Join(home, ".cache/deploylab/bin/sumcluster") }

// SessionsRow is one mode's figures, as the table and the HTML report
// show them.
type SessionsRow struct {
	Mode                     string
	Lost, Early, Leaks       string
	PropP50, PropP99, Logout string
	RPS, Handover            string
	Explanation              string
	// LostN and FollowUps are the raw counts.
	LostN, FollowUps int
}

// SessionsRows returns one host's sessions runs (the latest per mode), in
// mode order.
func SessionsRows(runs []*Record) []SessionsRow {
	latest := map[string]*Record{}
	for _, r := range runs {
		if r.Scenario.Kind == KindSessions && r.Sessions != nil {
			latest[r.Sessions.Mode] = r
		}
	}
	var out []SessionsRow
	for _, m := range sessionModes {
		r := latest[m]
		if r == nil {
			continue
		}
		s := r.Sessions
		ms := func(us int64, n int) string {
			if n == 0 {
				return "-"
			}
			return fmtMS(float64(us))
		}
		row := SessionsRow{
			Mode:    m,
			Lost:    fmt.Sprintf("%d of %d (%.0f%%)", s.Lost, s.FollowUps, 100*s.LostFraction),
			Early:   fmt.Sprintf("%d of %d", s.EarlyLost, s.Early),
			Leaks:   fmt.Sprintf("%d of %d", s.LogoutLeaks, s.LogoutChecks),
			PropP50: ms(s.Propagation.P50US, s.Propagation.N), PropP99: ms(s.Propagation.P99US, s.Propagation.N),
			Logout: ms(s.Revocation.P99US, s.Revocation.N), RPS: "-", Handover: "-",
			Explanation: s.Explanation, LostN: s.Lost, FollowUps: s.FollowUps,
		}
		if s.Rate != nil {
			row.RPS = fmt.Sprintf("%.0f", s.Rate.RPS)
		}
		if s.HandoverTokens > 0 {
			row.Handover = fmt.Sprintf("%d in %s", s.HandoverTokens, fmtMS(float64(s.HandoverUS)))
		}
		out = append(out, row)
	}
	return out
}

// writeSessionsTable prints the sessions runs of one host.
func writeSessionsTable(b *strings.Builder, runs []*Record) {
	rows := SessionsRows(runs)
	if len(rows) == 0 {
		return
	}
	var desc string
	for _, r := range runs {
		if r.Scenario.Kind == KindSessions {
			s := r.Scenario
			desc = fmt.Sprintf("%d users × %d GET /me on %d workers, fresh connections, kill -9 and recycle of a worker mid-run",
				s.Users, s.Gets, s.Workers)
		}
	}
	fmt.Fprintf(b, "SESSIONS: %s\n", desc)
	t := &table{right: []bool{false, true, true, true, true, true, true, true}}
	t.add("MODE", "LOST FOLLOW-UPS", "LOST AT ONCE", "NEW TOKEN P50", "P99", "LOGOUT P99", "LEAKS AFTER LOGOUT", "GET /me RPS")
	for _, r := range rows {
		t.add(r.Mode, r.Lost, r.Early, r.PropP50, r.PropP99, r.Logout, r.Leaks, r.RPS)
	}
	for _, r := range rows {
		t.note("  " + r.Explanation)
	}
	t.write(b)
}
