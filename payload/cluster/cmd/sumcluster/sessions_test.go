package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/payload/cluster"
	"github.com/deploylab/deploylab/payload/loadgen"
)

// keyFile writes a stateless session key and returns its path.
func keyFile(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "session.key")
	if err := os.WriteFile(p, []byte("a-test-key-of-32-bytes-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func sessionArgs(t testing.TB, mode string, extra ...string) []string {
	args := append([]string{"--instances", "2", "--sessions", mode}, extra...)
	if mode == "stateless" {
		args = append(args, "--session-key-file", keyFile(t))
	}
	return args
}

// The lesson's result, measured on real processes: with 2 workers, memory
// loses some follow-ups but not all; master and stateless lose none once the
// token had time to propagate; a logout revokes everywhere in master mode,
// and nowhere before expiry in stateless mode.
func TestSessionsLostPerMode(t *testing.T) {
	for _, mode := range []string{"memory", "master", "stateless"} {
		t.Run(mode, func(t *testing.T) {
			// Round robin (Node's schedule): the least busy worker, with
			// ties to the first, would send a lightly loaded test's
			// requests to one worker and hide the memory mode's losses.
			p := startCluster(t, startOpts{args: sessionArgs(t, mode, "--schedule", "rr")})
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			o := loadgen.SessionsOptions{
				URL: "http://" + p.addr, Users: 30, Gets: 4, Concurrency: 10,
				Settle: 20 * time.Millisecond, Logout: true, Workers: 2,
			}
			if mode == "master" {
				// After propagation: each login (logout) waits until both
				// workers hold (dropped) the token, not a fixed time.
				o.Propagate = 30 * time.Second
			}
			res, err := loadgen.RunSessions(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%+v", *res)
			if res.Logins != 30 || res.Errors != 0 || res.FollowUps != 120 || res.Mode != mode || res.WorkersSeen != 2 {
				t.Fatalf("logins %d errors %d follow-ups %d mode %q workers seen %d", res.Logins, res.Errors, res.FollowUps, res.Mode, res.WorkersSeen)
			}
			switch mode {
			case "memory":
				if res.Lost == 0 || res.Lost == res.FollowUps {
					t.Errorf("memory lost %d of %d follow-ups, want some but not all", res.Lost, res.FollowUps)
				}
			case "master":
				if res.Lost != 0 || res.LogoutLeaks != 0 || res.LogoutChecks != 30 || res.PropagateTimeouts != 0 {
					t.Errorf("master: lost %d, %d of %d logout checks leaked, %d waits timed out; want none", res.Lost, res.LogoutLeaks, res.LogoutChecks, res.PropagateTimeouts)
				}
				if res.Propagation.N < 30 || res.Revocation.N < 30 {
					t.Errorf("master: propagation samples for %d logins and %d logouts, want 30 each", res.Propagation.N, res.Revocation.N)
				}
			case "stateless":
				if res.Lost != 0 || res.LogoutLeaks != res.LogoutChecks {
					t.Errorf("stateless: lost %d; %d of %d logged-out tokens still valid, want all (no state to revoke them)", res.Lost, res.LogoutLeaks, res.LogoutChecks)
				}
			}
		})
	}
}

// meAll checks every token with n GET /me on fresh connections and returns
// how many answered 200 and 401.
func meAll(t *testing.T, addr string, toks map[string]string, n int) (ok, unauth int) {
	t.Helper()
	c := loadgen.NewSessionClient("http://"+addr, 10*time.Second)
	for name, tok := range toks {
		for range n {
			code, err := c.Me(context.Background(), tok, name)
			switch {
			case err != nil:
				t.Fatalf("GET /me for %s: %v", name, err)
			case code == 200:
				ok++
			case code == 401:
				unauth++
			default:
				t.Fatalf("GET /me for %s: status %d", name, code)
			}
		}
	}
	return ok, unauth
}

// Master mode across a kill -9 and a rolling reload: the respawned and the
// reloaded workers get the whole set (logouts included) before they serve.
// Memory mode, for contrast, loses the killed worker's tokens.
func TestSessionsAcrossKillAndReload(t *testing.T) {
	for _, mode := range []string{"master", "memory"} {
		t.Run(mode, func(t *testing.T) {
			p := startCluster(t, startOpts{args: sessionArgs(t, mode)})
			c := loadgen.NewSessionClient("http://"+p.addr, 10*time.Second)
			ctx := context.Background()
			toks := map[string]string{}
			for i := range 20 {
				name := fmt.Sprintf("u%d", i)
				tok, err := c.Login(ctx, name)
				if err != nil {
					t.Fatal(err)
				}
				toks[name] = tok
			}
			if mode == "master" {
				waitTokens(t, p, c, 20)
			}
			victim := p.stats().Workers[0].PID
			if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			p.waitStats(30*time.Second, "the killed worker is replaced", func(st cluster.Stats) bool {
				return !pids(st)[victim] && readyWorkers(st) == 2
			})
			ok, unauth := meAll(t, p.addr, toks, 4)
			t.Logf("%s after kill -9: %d ok, %d 401", mode, ok, unauth)
			if mode == "memory" {
				if unauth == 0 {
					t.Error("memory mode kept every session across a kill -9 and a fresh worker")
				}
				return
			}
			if unauth != 0 {
				t.Fatalf("master mode lost %d of %d GET /me after a kill -9", unauth, ok+unauth)
			}
			// Five logouts, then a rolling reload: the new workers know them.
			for i := range 5 {
				name := fmt.Sprintf("u%d", i)
				if code, err := c.Logout(ctx, toks[name]); err != nil || code != 204 {
					t.Fatalf("logout %s: %d %v", name, code, err)
				}
			}
			waitTokens(t, p, c, 15)
			p.signal(syscall.SIGHUP)
			p.waitStats(60*time.Second, "the reload is done", func(st cluster.Stats) bool {
				return st.Reloads >= 1 && readyWorkers(st) == 2 && len(st.Workers) == 2
			})
			ok, unauth = meAll(t, p.addr, toks, 4)
			if ok != 15*4 || unauth != 5*4 {
				t.Errorf("after the reload: %d ok, %d 401; want %d and %d", ok, unauth, 15*4, 5*4)
			}
		})
	}
}

// waitTokens waits until both workers hold n tokens (the propagation is
// over: a structural wait, not a timed one).
func waitTokens(t *testing.T, p *proc, c *loadgen.SessionClient, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		want := map[int]bool{}
		for pid := range pids(p.stats()) {
			want[pid] = true
		}
		held, err := c.Tokens(context.Background(), len(want))
		if err == nil && len(held) == len(want) {
			all := true
			for pid, k := range held {
				all = all && want[pid] && k == n
			}
			if all {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the workers never all held %d tokens", n)
}
