package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/payload/loadgen"
)

const sessionsUsage = `usage: loadgen sessions [flags] URL

The sessions scenario (the stateful cluster): --users virtual users each log
in (POST /login), make --gets GET /me over fresh connections, log out and
check that the token is refused; a worker is killed (kill -9) and one
recycled (SIGTERM: drained and replaced) mid-run when --stats-socket names
the cluster's stats socket. Then GET /me is measured for --rate with --churn
logins a second in the background. Prints the result as JSON
(schema deploylab.sessions/v1) with --json, else one line per figure.

  --users N          virtual users (default 200)
  --gets N           GET /me per user after --settle (default 4)
  -c N               users at once (default 8)
  --settle D         time a token gets to reach every worker (default 20ms)
  --propagate D      instead of --settle, wait until --workers workers say
                     they hold the token (after a logout: dropped it), for at
                     most D (a server that shares its tokens: master mode)
  --workers N        the cluster's workers, to read their stats (default 2)
  --stats-socket P   sumcluster's stats socket: wait for the workers, and
                     kill one after a third of the users, recycle one after
                     two thirds (none without it)
  --wait D           how long to wait for the workers to be ready (default 30s)
  --rate D           GET /me throughput run (default 3s; 0 skips it)
  --churn R          logins a second during the throughput run (default 10)
  --json             print JSON
`

func runSessions(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadgen sessions", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := loadgen.SessionsOptions{Logout: true}
	var sock string
	var wait, rate time.Duration
	var churn float64
	var asJSON bool
	fs.IntVar(&o.Users, "users", 200, "")
	fs.IntVar(&o.Gets, "gets", 4, "")
	fs.IntVar(&o.Concurrency, "c", 8, "")
	fs.DurationVar(&o.Settle, "settle", 20*time.Millisecond, "")
	fs.DurationVar(&o.Propagate, "propagate", 0, "")
	fs.IntVar(&o.Workers, "workers", 2, "")
	fs.StringVar(&sock, "stats-socket", "", "")
	fs.DurationVar(&wait, "wait", 30*time.Second, "")
	fs.DurationVar(&rate, "rate", 3*time.Second, "")
	fs.Float64Var(&churn, "churn", 10, "")
	fs.BoolVar(&asJSON, "json", false, "")
	usageErr := func(format string, a ...any) int {
		return report(stderr, fail.Errorf(fail.Usage, "run loadgen sessions -h for the flags", format, a...))
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, sessionsUsage)
			return fail.ExitOK
		}
		return usageErr("%v", err)
	}
	if fs.NArg() != 1 || !strings.HasPrefix(fs.Arg(0), "http://") {
		return usageErr("want one URL (http://127.0.0.1:PORT)")
	}
	o.URL = fs.Arg(0)
	switch {
	case o.Users < 1 || o.Users > 1_000_000:
		return usageErr("--users: want 1 to 1000000, got %d", o.Users)
	case o.Gets < 0 || o.Gets > 1000:
		return usageErr("--gets: want 0 to 1000, got %d", o.Gets)
	case o.Concurrency < 1 || o.Concurrency > 10_000:
		return usageErr("-c: want 1 to 10000, got %d", o.Concurrency)
	case o.Workers < 0 || o.Workers > 1024:
		return usageErr("--workers: want 0 to 1024, got %d", o.Workers)
	case o.Propagate < 0 || o.Propagate > 10*time.Minute:
		return usageErr("--propagate: want 0 to 10m, got %s", o.Propagate)
	case rate < 0 || rate > time.Hour || churn < 0 || churn > 10_000:
		return usageErr("--rate: want 0 to 1h, --churn 0 to 10000")
	}
	if sock != "" {
		wctx, cancel := context.WithTimeout(ctx, wait)
		err := loadgen.WaitClusterReady(wctx, sock, max(o.Workers, 1), nil)
		cancel()
		if err != nil {
			return report(stderr, fail.New(fail.Unreachable, "is the cluster running? its log says why it is not", err))
		}
		n := max(o.Workers, 1)
		o.Disruption = []loadgen.Disruption{
			{Name: "kill -9 of a worker", AfterUsers: o.Users / 3, Do: loadgen.SignalWorker(sock, n, syscall.SIGKILL)},
			{Name: "recycle of a worker", AfterUsers: 2 * o.Users / 3, Do: loadgen.SignalWorker(sock, n, syscall.SIGTERM)},
		}
	}
	res, err := loadgen.RunSessions(ctx, o)
	if res == nil {
		return report(stderr, err)
	}
	if err == nil && rate > 0 {
		r, rerr := loadgen.RunSessionsRate(ctx, o.URL, 100, o.Concurrency, rate, churn)
		if rerr != nil {
			err = rerr
		}
		res.Rate = r
	}
	res.Schema, res.Version = loadgen.SessionsSchema, loadgen.Version
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		if werr := enc.Encode(res); werr != nil {
			return report(stderr, werr)
		}
	} else {
		fmt.Fprintf(stdout, "mode %s: %d logins, %d of %d follow-ups lost, %d logout leaks, %d errors\n",
			res.Mode, res.Logins, res.Lost, res.FollowUps, res.LogoutLeaks, res.Errors)
		fmt.Fprintf(stdout, "propagation p50 %.2f ms, p99 %.2f ms; logout p99 %.2f ms\n",
			float64(res.Propagation.P50US)/1000, float64(res.Propagation.P99US)/1000, float64(res.Revocation.P99US)/1000)
		if res.Rate != nil {
			fmt.Fprintf(stdout, "GET /me: %.0f rps with %d logins of churn\n", res.Rate.RPS, res.Rate.Logins)
		}
		fmt.Fprintln(stdout, res.Explanation)
	}
	if err != nil {
		return report(stderr, err)
	}
	return fail.ExitOK
}
