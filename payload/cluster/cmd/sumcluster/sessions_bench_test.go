package main

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/payload/cluster"
	"github.com/deploylab/deploylab/payload/loadgen"
)

// The figures of issue 17, as benchmarks (make bench; measures, not
// tests): run with
//
//	go test -run '^$' -bench Sessions -benchtime 1x ./payload/cluster/cmd/sumcluster

// BenchmarkSessionsLost: 200 users × (1 early + 4) GET /me over fresh
// connections on 2 workers, a worker killed (kill -9) after a third of the
// users and one recycled (SIGTERM: drained and replaced) after two thirds.
func BenchmarkSessionsLost(b *testing.B) {
	for _, mode := range []string{"memory", "master", "stateless"} {
		b.Run(mode, func(b *testing.B) {
			p := startCluster(b, startOpts{args: sessionArgs(b, mode)})
			for b.Loop() {
				signalWorker := func(sig syscall.Signal) func(context.Context) error {
					return func(context.Context) error {
						st := p.stats()
						victim := st.Workers[0].PID
						if err := syscall.Kill(victim, sig); err != nil {
							return err
						}
						p.waitStats(30*time.Second, "the worker is replaced", func(st cluster.Stats) bool {
							return !pids(st)[victim] && readyWorkers(st) == 2
						})
						return nil
					}
				}
				res, err := loadgen.RunSessions(context.Background(), loadgen.SessionsOptions{
					URL: "http://" + p.addr, Users: 200, Gets: 4, Concurrency: 8, Logout: true, Workers: 2,
					Disruption: []loadgen.Disruption{
						{Name: "kill -9", AfterUsers: 66, Do: signalWorker(syscall.SIGKILL)},
						{Name: "recycle", AfterUsers: 133, Do: signalWorker(syscall.SIGTERM)},
					},
				})
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("%s", res.Explanation)
				b.Logf("%+v", *res)
				b.ReportMetric(res.LostFraction, "lost/follow-up")
				b.ReportMetric(float64(res.Lost), "lost")
				b.ReportMetric(float64(res.EarlyLost), "early-lost")
				b.ReportMetric(float64(res.LogoutLeaks), "logout-leaks")
				b.ReportMetric(float64(res.Propagation.P50US)/1000, "prop-p50-ms")
				b.ReportMetric(float64(res.Propagation.P99US)/1000, "prop-p99-ms")
				b.ReportMetric(float64(res.Revocation.P99US)/1000, "logout-p99-ms")
				b.ReportMetric(res.RPS, "rps")
			}
		})
	}
}

// BenchmarkSessionsPropagation: master mode on 2 workers, no disruption:
// 400 users log in (4 at once) and each waits until both workers hold its
// token; the delays from each login to its application on the other worker
// (p50/p99), and the logouts'.
func BenchmarkSessionsPropagation(b *testing.B) {
	p := startCluster(b, startOpts{args: sessionArgs(b, "master")})
	for b.Loop() {
		res, err := loadgen.RunSessions(context.Background(), loadgen.SessionsOptions{
			URL: "http://" + p.addr, Users: 400, Gets: 1, Concurrency: 4, Logout: true, Workers: 2,
			Propagate: 30 * time.Second,
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("login p50 %d µs p99 %d µs (n %d); logout p50 %d µs p99 %d µs; lost %d",
			res.Propagation.P50US, res.Propagation.P99US, res.Propagation.N, res.Revocation.P50US, res.Revocation.P99US, res.Lost)
		b.ReportMetric(float64(res.Propagation.P50US)/1000, "prop-p50-ms")
		b.ReportMetric(float64(res.Propagation.P99US)/1000, "prop-p99-ms")
		b.ReportMetric(float64(res.Revocation.P99US)/1000, "logout-p99-ms")
		b.ReportMetric(float64(res.Lost), "lost")
	}
}

// BenchmarkSessionsRate: GET /me throughput over fresh connections on 2
// workers with 10 logins/s of background churn, per mode (the issue asks
// master ≥ 0.8× stateless).
func BenchmarkSessionsRate(b *testing.B) {
	for _, mode := range []string{"memory", "master", "stateless"} {
		b.Run(mode, func(b *testing.B) {
			p := startCluster(b, startOpts{args: sessionArgs(b, mode)})
			for b.Loop() {
				r, err := loadgen.RunSessionsRate(context.Background(), "http://"+p.addr, 100, 8, 5*time.Second, 10)
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("%+v", *r)
				b.ReportMetric(r.RPS, "me-rps")
				b.ReportMetric(float64(r.Lost), "lost")
				b.ReportMetric(float64(r.Logins), "churn-logins")
			}
		})
	}
}

// BenchmarkSessionsHandover: 10,000 tokens in master mode, then a worker
// killed: how long the new one takes to receive and apply the whole set
// (from its first chunk read to its last applied).
func BenchmarkSessionsHandover(b *testing.B) {
	const n = 10_000
	p := startCluster(b, startOpts{args: sessionArgs(b, "master")})
	c := loadgen.NewSessionClient("http://"+p.addr, 10*time.Second)
	ctx := context.Background()
	sem := make(chan struct{}, 16)
	errs := make(chan error, n)
	for i := range n {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			if _, err := c.Login(ctx, fmt.Sprintf("h%d", i)); err != nil {
				errs <- err
			}
		}()
	}
	for range cap(sem) {
		sem <- struct{}{}
	}
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	for b.Loop() {
		victim := p.stats().Workers[0].PID
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		st := p.waitStats(30*time.Second, "the worker is replaced", func(st cluster.Stats) bool {
			return !pids(st)[victim] && readyWorkers(st) == 2
		})
		var res loadgen.SessionsResult
		c.ReadStats(ctx, len(st.Workers), &res)
		b.Logf("handover: %d tokens in %d µs", res.HandoverTokens, res.HandoverUS)
		b.ReportMetric(float64(res.HandoverTokens), "tokens")
		b.ReportMetric(float64(res.HandoverUS)/1000, "handover-ms")
	}
}
