package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The sessions scenario (issue 17): virtual users log in to a session app
// (payload/sessions, or the Node model answer) and make GET /me calls over
// fresh connections while workers are killed or recycled; it counts the
// sessions lost (401 for a valid token) and reads each worker's propagation
// delays from GET /sessions/stats.

// Disruption is something done to the server once AfterUsers users have
// finished (kill -9 of a worker, a recycle).
type Disruption struct {
	Name       string
	AfterUsers int
	Do         func(context.Context) error
}

// SessionsOptions configures RunSessions.
type SessionsOptions struct {
	// URL is the app's base URL, http://host:port.
	URL string
	// Users log in once each; each then makes Gets GET /me after Settle
	// (one more right after the login, counted apart as "early").
	Users, Gets int
	// Concurrency is how many users run at once (default 8).
	Concurrency int
	// Settle is the wait between the login and the counted follow-ups:
	// the time the cluster gets to propagate the token (default 20ms).
	Settle time.Duration
	// Logout: each user logs out after its GETs, waits Settle and checks
	// that GET /me answers 401 (a 200 is a leak).
	Logout bool
	// Workers is how many workers to read /sessions/stats from (0: skip).
	Workers int
	// Propagate, when set, replaces the fixed Settle by a condition: after
	// a login (a logout), wait until Workers workers say they hold (no
	// longer hold) the token (WaitHeld), for at most Propagate. Only for
	// a server that shares its tokens (master mode): in memory mode the
	// other workers never learn them. A wait that times out is counted in
	// PropagateTimeouts.
	Propagate time.Duration
	// Timeout bounds each request (default 10s).
	Timeout    time.Duration
	Disruption []Disruption
}

// Dist is a distribution of delays in microseconds.
type Dist struct {
	N     int   `json:"n"`
	P50US int64 `json:"p50_us"`
	P99US int64 `json:"p99_us"`
	MaxUS int64 `json:"max_us"`
}

func dist(v []int64) Dist {
	if len(v) == 0 {
		return Dist{}
	}
	slices.Sort(v)
	at := func(p float64) int64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
	return Dist{N: len(v), P50US: at(0.50), P99US: at(0.99), MaxUS: v[len(v)-1]}
}

// SessionsSchema names the document loadgen sessions --json prints.
const SessionsSchema = "deploylab.sessions/v1"

// SessionsResult is what RunSessions measured.
type SessionsResult struct {
	// Schema is SessionsSchema when loadgen sessions printed it.
	Schema      string `json:"schema,omitempty"`
	Version     string `json:"version,omitempty"`
	Mode        string `json:"mode"`
	Users       int    `json:"users"`
	Logins      int    `json:"logins"`
	LoginErrors int    `json:"login_errors"`
	// FollowUps are the GET /me made Settle after a login; Lost those
	// answered 401.
	FollowUps    int     `json:"follow_ups"`
	Lost         int     `json:"lost"`
	LostFraction float64 `json:"lost_fraction"`
	// Early are the GET /me made right after the login (before any
	// propagation); EarlyLost those answered 401.
	Early     int `json:"early"`
	EarlyLost int `json:"early_lost"`
	// LogoutChecks are the GET /me made Settle after a logout; LogoutLeaks
	// those still answered 200.
	LogoutChecks int `json:"logout_checks"`
	// LogoutRefused are logouts answered 401 (a worker that did not know
	// the token: memory mode).
	LogoutRefused int `json:"logout_refused"`
	LogoutLeaks   int `json:"logout_leaks"`
	// Errors are transport errors and unexpected statuses (a killed
	// worker's connections), not lost sessions.
	Errors      int      `json:"errors"`
	Requests    int      `json:"requests"`
	DurationS   float64  `json:"duration_s"`
	RPS         float64  `json:"rps"`
	Disruptions []string `json:"disruptions,omitempty"`
	// Propagation: per token, the time for a login to reach every other
	// worker (the slowest one), from the workers' own stats; Revocation the
	// same for logouts.
	Propagation Dist `json:"propagation"`
	Revocation  Dist `json:"revocation"`
	// Handover is the largest state a worker got before serving (tokens,
	// µs).
	HandoverTokens int   `json:"handover_tokens"`
	HandoverUS     int64 `json:"handover_us"`
	// WorkersSeen is how many workers' stats were read.
	WorkersSeen int `json:"workers_seen"`
	// PropagateTimeouts counts the waits of SessionsOptions.Propagate that
	// ended at their deadline.
	PropagateTimeouts int `json:"propagate_timeouts,omitempty"`
	// Rate is the GET /me throughput run (RunSessionsRate), when made.
	Rate        *SessionsRate `json:"rate,omitempty"`
	Explanation string        `json:"explanation"`
}

// SessionClient speaks the session API over fresh connections (one per
// request, so that the schedule spreads them over the workers).
type SessionClient struct {
	base string
	hc   *http.Client
}

func NewSessionClient(base string, timeout time.Duration) *SessionClient {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	return &SessionClient{base: strings.TrimSuffix(base, "/"), hc: &http.Client{Transport: tr, Timeout: timeout}}
}

func (c *SessionClient) do(ctx context.Context, method, path, tok string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// Login logs name in and returns the token.
func (c *SessionClient) Login(ctx context.Context, name string) (string, error) {
	body, _ := json.Marshal(map[string]string{"name": name})
	code, b, err := c.do(ctx, "POST", "/login", "", body)
	if err != nil {
		return "", err
	}
	var v struct {
		Token string `json:"token"`
	}
	if code != 200 || json.Unmarshal(b, &v) != nil || v.Token == "" {
		return "", fmt.Errorf("POST /login: %d %.100q", code, b)
	}
	return v.Token, nil
}

// Me returns GET /me's status (and checks a 200's name).
func (c *SessionClient) Me(ctx context.Context, tok, name string) (int, error) {
	code, b, err := c.do(ctx, "GET", "/me", tok, nil)
	if err != nil {
		return 0, err
	}
	if code == 200 {
		var v struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(b, &v) != nil || v.Name != name {
			return code, fmt.Errorf("GET /me: %.100q, want name %q", b, name)
		}
	}
	return code, nil
}

// Logout revokes a token and returns the status.
func (c *SessionClient) Logout(ctx context.Context, tok string) (int, error) {
	code, _, err := c.do(ctx, "POST", "/logout", tok, nil)
	return code, err
}

// Tokens polls GET /sessions/stats until it has seen workers distinct
// workers (at most 40 polls each) and returns each one's token count.
func (c *SessionClient) Tokens(ctx context.Context, workers int) (map[int]int, error) {
	out := map[int]int{}
	for i := 0; i < 40*workers && len(out) < workers; i++ {
		code, b, err := c.do(ctx, "GET", "/sessions/stats", "", nil)
		if err != nil {
			return out, err
		}
		var v struct {
			PID    int `json:"pid"`
			Tokens int `json:"tokens"`
		}
		if code == 200 && json.Unmarshal(b, &v) == nil && v.PID != 0 {
			out[v.PID] = v.Tokens
		}
	}
	return out, nil
}

// WaitHeld polls GET /sessions/stats with tok as the bearer (fresh
// connections, so the schedule spreads them) until workers distinct workers
// answer that they hold it (held) or no longer hold it (!held), for at most
// limit. A server that holds nothing (stateless: no "has" in the answer)
// needs no wait.
func (c *SessionClient) WaitHeld(ctx context.Context, tok string, workers int, held bool, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	state := map[int]bool{}
	for {
		code, b, err := c.do(ctx, "GET", "/sessions/stats", tok, nil)
		var v struct {
			PID int   `json:"pid"`
			Has *bool `json:"has"`
		}
		if err == nil && code == 200 && json.Unmarshal(b, &v) == nil && v.PID != 0 {
			if v.Has == nil {
				return nil
			}
			state[v.PID] = *v.Has == held
			n := 0
			for _, ok := range state {
				if ok {
					n++
				}
			}
			if n >= max(workers, 1) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the token did not reach %d workers in %s", workers, limit)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// RunSessions runs the scenario.
func RunSessions(ctx context.Context, o SessionsOptions) (*SessionsResult, error) {
	if o.URL == "" || o.Users < 1 || o.Gets < 0 {
		return nil, errors.New("sessions: want a URL, at least one user and no negative GET count")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Settle <= 0 {
		o.Settle = 20 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	c := NewSessionClient(o.URL, o.Timeout)
	res := &SessionsResult{Users: o.Users}
	var mu sync.Mutex
	add := func(f func()) { mu.Lock(); f(); mu.Unlock() }
	me := func(tok, name string, lost, count *int) {
		code, err := c.Me(ctx, tok, name)
		add(func() {
			res.Requests++
			switch {
			case err != nil || (code != 200 && code != 401):
				res.Errors++
			default:
				*count++
				if code == 401 {
					*lost++
				}
			}
		})
	}
	var done atomic.Int64
	var next atomic.Int64
	disrupt := slices.Clone(o.Disruption)
	slices.SortFunc(disrupt, func(a, b Disruption) int { return a.AfterUsers - b.AfterUsers })
	var dmu sync.Mutex
	var dwg sync.WaitGroup
	fire := func(n int) {
		dmu.Lock()
		defer dmu.Unlock()
		for len(disrupt) > 0 && disrupt[0].AfterUsers <= n {
			d := disrupt[0]
			disrupt = disrupt[1:]
			dwg.Go(func() {
				err := d.Do(ctx)
				add(func() {
					s := fmt.Sprintf("%s after %d users", d.Name, n)
					if err != nil {
						s += ": " + err.Error()
					}
					res.Disruptions = append(res.Disruptions, s)
				})
			})
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1))
				if i > o.Users {
					return
				}
				name := fmt.Sprintf("user%d", i)
				tok, err := c.Login(ctx, name)
				add(func() {
					res.Requests++
					if err != nil {
						res.LoginErrors++
					} else {
						res.Logins++
					}
				})
				settle := func(held bool) {
					if o.Propagate <= 0 {
						sleep(ctx, o.Settle)
						return
					}
					if c.WaitHeld(ctx, tok, o.Workers, held, o.Propagate) != nil {
						add(func() { res.PropagateTimeouts++ })
					}
				}
				if err == nil {
					me(tok, name, &res.EarlyLost, &res.Early)
					settle(true)
					for range o.Gets {
						me(tok, name, &res.Lost, &res.FollowUps)
					}
					if o.Logout {
						code, _, err := c.do(ctx, "POST", "/logout", tok, nil)
						add(func() {
							res.Requests++
							switch {
							case err != nil || code != 204 && code != 401:
								res.Errors++
							case code == 401:
								res.LogoutRefused++
							}
						})
						settle(false)
						var leaks, checks int
						code2, err := c.Me(ctx, tok, name)
						if err == nil && (code2 == 200 || code2 == 401) {
							checks = 1
							if code2 == 200 {
								leaks = 1
							}
						}
						add(func() {
							res.Requests++
							res.LogoutChecks += checks
							res.LogoutLeaks += leaks
							if checks == 0 {
								res.Errors++
							}
						})
					}
				}
				fire(int(done.Add(1)))
			}
		})
	}
	wg.Wait()
	dwg.Wait()
	el := time.Since(start)
	res.DurationS = el.Seconds()
	res.RPS = float64(res.Requests) / max(el.Seconds(), 1e-9)
	if res.FollowUps > 0 {
		res.LostFraction = float64(res.Lost) / float64(res.FollowUps)
	}
	if o.Workers > 0 {
		c.ReadStats(ctx, o.Workers, res)
	}
	res.Explanation = ExplainSessions(res)
	return res, ctx.Err()
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

type workerStats struct {
	PID            int    `json:"pid"`
	Mode           string `json:"mode"`
	HandoverTokens int    `json:"handover_tokens"`
	HandoverUS     int64  `json:"handover_us"`
	Samples        []struct {
		ID string `json:"id"`
		Op string `json:"op"`
		US int64  `json:"us"`
	} `json:"samples"`
}

// ReadStats polls GET /sessions/stats until it has seen workers distinct
// workers (or 40 polls per worker), and joins their samples per token.
func (c *SessionClient) ReadStats(ctx context.Context, workers int, res *SessionsResult) {
	seen := map[int]workerStats{}
	for i := 0; i < 40*workers && len(seen) < workers && ctx.Err() == nil; i++ {
		code, b, err := c.do(ctx, "GET", "/sessions/stats", "", nil)
		var ws workerStats
		if err != nil || code != 200 || json.Unmarshal(b, &ws) != nil || ws.PID == 0 {
			continue
		}
		seen[ws.PID] = ws
	}
	res.WorkersSeen = len(seen)
	add, del := map[string]int64{}, map[string]int64{}
	for _, ws := range seen {
		res.Mode = ws.Mode
		if ws.HandoverTokens > res.HandoverTokens || ws.HandoverTokens == res.HandoverTokens && ws.HandoverUS > res.HandoverUS {
			res.HandoverTokens, res.HandoverUS = ws.HandoverTokens, ws.HandoverUS
		}
		for _, s := range ws.Samples {
			m := add
			if s.Op == "del" {
				m = del
			}
			m[s.ID] = max(m[s.ID], s.US)
		}
	}
	vals := func(m map[string]int64) []int64 {
		v := make([]int64, 0, len(m))
		for _, x := range m {
			v = append(v, max(x, 0))
		}
		return v
	}
	res.Propagation, res.Revocation = dist(vals(add)), dist(vals(del))
}

// ExplainSessions says in one sentence why the mode gave this result.
func ExplainSessions(r *SessionsResult) string {
	lost := fmt.Sprintf("%d of %d follow-ups lost (%.0f%%)", r.Lost, r.FollowUps, 100*r.LostFraction)
	switch r.Mode {
	case "memory":
		return fmt.Sprintf("memory: %s, because each worker knows only the tokens it issued and the next request lands on another worker about (W-1)/W of the time; a killed worker takes its tokens with it.", lost)
	case "master":
		return fmt.Sprintf("master: %s, because every login and logout reaches every worker through the master (p99 %.1f ms) and a new worker gets the whole set before it serves; only a request racing the propagation can miss.", lost, float64(r.Propagation.P99US)/1000)
	case "stateless":
		return fmt.Sprintf("stateless: %s, because the token carries its own signed proof and any worker (or front-end) checks it without state; the price is that a logout cannot revoke it before it expires (%d of %d checks after logout still answered 200).", lost, r.LogoutLeaks, r.LogoutChecks)
	}
	return lost + "."
}

// SessionsRate is RunSessionsRate's result.
type SessionsRate struct {
	// RPS counts GET /me answered per second (200 or 401).
	RPS    float64 `json:"rps"`
	OK     int     `json:"ok"`
	Lost   int     `json:"lost"`
	Errors int     `json:"errors"`
	// Logins made by the background churn.
	Logins int `json:"logins"`
}

// RunSessionsRate measures GET /me throughput over fresh connections:
// tokens users log in first (and Settle passes), then concurrency clients
// call GET /me for d while a background churn logs in churn users per
// second.
func RunSessionsRate(ctx context.Context, url string, tokens, concurrency int, d time.Duration, churn float64) (*SessionsRate, error) {
	c := NewSessionClient(url, 10*time.Second)
	type user struct{ tok, name string }
	var users []user
	for i := range max(tokens, 1) {
		name := fmt.Sprintf("rate%d", i)
		tok, err := c.Login(ctx, name)
		if err != nil {
			return nil, err
		}
		users = append(users, user{tok, name})
	}
	sleep(ctx, 50*time.Millisecond)
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok, lost, errs, logins atomic.Int64
	var wg sync.WaitGroup
	if churn > 0 {
		wg.Go(func() {
			tick := time.NewTicker(time.Duration(float64(time.Second) / churn))
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case <-rctx.Done():
					return
				case <-tick.C:
				}
				if _, err := c.Login(rctx, fmt.Sprintf("churn%d", i)); err == nil {
					logins.Add(1)
				}
			}
		})
	}
	start := time.Now()
	for g := range max(concurrency, 1) {
		wg.Go(func() {
			for i := g; rctx.Err() == nil; i += concurrency {
				u := users[i%len(users)]
				code, err := c.Me(rctx, u.tok, u.name)
				switch {
				case rctx.Err() != nil:
				case err != nil:
					errs.Add(1)
				case code == 200:
					ok.Add(1)
				case code == 401:
					lost.Add(1)
				default:
					errs.Add(1)
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	return &SessionsRate{
		RPS: float64(ok.Load()+lost.Load()) / el, OK: int(ok.Load()), Lost: int(lost.Load()),
		Errors: int(errs.Load()), Logins: int(logins.Load()),
	}, ctx.Err()
}
