package bench

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/deploy"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/deploylab/deploylab/payload"
	"github.com/deploylab/deploylab/remote"
)

// TestLab benches a real lab host (node variant: Debian 12, systemd, sshd,
// Node and npm's loadtest) over SSH: first with nothing deployed (the clear
// error), then after deploylab up has installed the two servers as
// hardened systemd units: a short plan with loadgen (CPU from the units'
// cgroups, the cluster's per-worker counts, the blocking experiment), then
// npm's loadtest.
func TestLab(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Hosts: 1, Variant: lab.VariantNode})
	h := l.Hosts()[0]
	rh := labtest.RemoteHost(h)
	dial := func(ctx context.Context, h remote.Host) (remote.Executor, error) {
		return remote.Dial(ctx, h, remote.WithSSHConfig(""), remote.WithAgent(""))
	}
	target := []Target{{Name: h.Name, Address: h.Address, Student: h.Student, Remote: rh}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts := func(p *Plan, tool string) Options {
		return Options{
			Plan: p, Tool: tool, Loadgen: buildFor(t), Store: store,
			Dial: func(ctx context.Context, t Target) (remote.Executor, error) { return dial(ctx, t.Remote) },
		}
	}
	p, err := ParsePlan("lab.yaml", []byte(`servers:
  - {name: single, port: 3000, unit: deploylab-sumserver.service}
  - {name: cluster, port: 3001, unit: deploylab-sumcluster.service}
warmup: {requests: 50, concurrency: 10}
scenarios:
  - {name: api, route: /api/500000, requests: 300, concurrency: 20}
  - {name: root, route: /, requests: 500, concurrency: 20}
  - {name: blocking, kind: blocking, route: /api/1000000000, probes: 3, delay: 300ms}
`))
	if err != nil {
		t.Fatal(err)
	}

	// Nothing deployed yet.
	start := time.Now()
	_, err = Run(ctx, target, opts(p, ToolLoadgen))
	want := fmt.Sprintf("%s: no deployment: nothing listens on port 3000 (single server); nothing listens on port 3001 (cluster server)", h.Name)
	if err == nil || err.Error() != want || !strings.Contains(fail.HintOf(err), "deploylab up --host "+h.Address) {
		t.Fatalf("before up: err = %v (hint %q)\nwant %s", err, fail.HintOf(err), want)
	}
	t.Logf("no-deployment check: %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	rc, err := deploy.Up(ctx, []deploy.Target{{Name: h.Name, Host: rh}}, deploy.UpOptions{
		Dial: dial,
		Build: func(ctx context.Context, goarch string) (*payload.Set, error) {
			return payload.Build(ctx, payload.Options{GOARCH: goarch})
		},
	})
	if err == nil {
		err = rc.Err()
	}
	if err != nil {
		t.Fatalf("deploylab up: %v", err)
	}
	t.Logf("deploylab up: %s", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	var progress bytes.Buffer
	o := opts(p, ToolLoadgen)
	o.Progress = NewProgress(&progress, false)
	out, err := Run(ctx, target, o)
	t.Logf("bench (loadgen): %s\n%s", time.Since(start).Round(time.Millisecond), progress.String())
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	recs := out.Records()
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6", len(recs))
	}
	var rep bytes.Buffer
	WriteTable(&rep, recs)
	t.Logf("report:\n%s", rep.String())
	blk := map[string]*Record{}
	var clientCPU float64
	for _, r := range recs {
		name := r.Server.Mode + " " + r.Scenario.Name
		if r.Host.Name != h.Name || r.Host.CPUs < 1 || r.Host.Kernel == "" || r.Host.Arch == "" || r.Server.Unit == "" {
			t.Errorf("%s: host %+v server %+v", name, r.Host, r.Server)
		}
		if r.Scenario.Kind == KindBlocking {
			blk[r.Server.Mode] = r
			continue
		}
		res := r.Result
		if res.Completed != int64(r.Scenario.Requests) || res.Errors.Total != 0 {
			t.Errorf("%s: completed %d, errors %d %v", name, res.Completed, res.Errors.Total, res.ErrorSamples)
		}
		// Client CPU is read in 10 ms ticks: each run >= 0, all > 0 (below).
		if r.CPU == nil || r.CPU.ClientS < 0 || r.CPU.ServerS == nil || *r.CPU.ServerS <= 0 || r.CPU.ServerSource != "cgroup" {
			t.Errorf("%s: cpu %+v, notes %v", name, r.CPU, r.Notes)
		} else {
			clientCPU += r.CPU.ClientS
		}
		if r.Server.Mode == ModeCluster {
			var sum uint64
			for _, w := range r.Workers {
				sum += w.Requests
			}
			if len(r.Workers) < 1 || sum != uint64(r.Scenario.Requests) || r.Server.Workers != len(r.Workers) {
				t.Errorf("%s: workers %+v (sum %d), notes %v", name, r.Workers, sum, r.Notes)
			}
		}
	}
	if clientCPU <= 0 {
		t.Errorf("the load runs read no client CPU at all: the sampling around the runs is broken")
	}
	s, c := blk[ModeSingle], blk[ModeCluster]
	if s == nil || c == nil {
		t.Fatal("blocking runs missing")
	}
	if !Blocked(s) || Blocked(c) || s.Result.Latency.Max < 3*c.Result.Latency.Max {
		t.Errorf("blocking: single waited %s (heavy %s), cluster %s (heavy %s): want single >> cluster",
			fmtMS(s.Result.Latency.Max), fmtMS(s.Heavy.Latency.Max), fmtMS(c.Result.Latency.Max), fmtMS(c.Heavy.Latency.Max))
	}
	sums, err := store.Summaries(h.Name)
	if err != nil || len(sums) != 4 {
		t.Errorf("Summaries = %+v, %v; want 4 (2 routes × 2 servers)", sums, err)
	}

	// Issue 5: on 2 CPUs the cluster serves the heavy route faster than the
	// single server. Throughput on a machine shared with other tests is
	// noisy, so: keep-alive (the master's per-connection cost is not what is
	// measured here), runs of about a second or more, up to three rounds;
	// the best round counts and every round is logged.
	if cpus := recs[0].Host.CPUs; cpus >= 2 {
		hp := *p
		hp.Scenarios = []Scenario{{Name: "api-k", Kind: KindLoad, Route: "/api/500000", Requests: 2000, Concurrency: 20, KeepAlive: true}}
		best := 0.0
		for round := 1; round <= 3 && best <= 1.1; round++ {
			out, err := Run(ctx, target, opts(&hp, ToolLoadgen))
			if err != nil {
				t.Fatalf("bench, cluster vs single round %d: %v", round, err)
			}
			rps := map[string]float64{}
			for _, r := range out.Records() {
				rps[r.Server.Mode] = r.Result.RPS
			}
			gain := 0.0
			if rps[ModeSingle] > 0 {
				gain = rps[ModeCluster] / rps[ModeSingle]
			}
			t.Logf("round %d: /api/500000 -n 2000 -c 20 -k: single %.0f rps, cluster %.0f rps (×%.2f)", round, rps[ModeSingle], rps[ModeCluster], gain)
			best = max(best, gain)
		}
		if best <= 1.1 {
			t.Errorf("on %d CPUs the cluster never served /api/500000 clearly faster than the single server in 3 rounds (best ×%.2f)", cpus, best)
		}
	}

	// npm's loadtest, installed on the node image.
	start = time.Now()
	lp := *p
	lp.Scenarios = []Scenario{{Name: "root-lt", Kind: KindLoad, Route: "/", Requests: 200, Concurrency: 10}}
	lp.Warmup.Requests = 0
	out, err = Run(ctx, target, opts(&lp, ToolLoadtest))
	t.Logf("bench (loadtest): %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("bench --tool loadtest: %v", err)
	}
	for _, r := range out.Records() {
		res := r.Result
		t.Logf("loadtest %s against %s: %.0f rps, format %s, cores %d, client CPU %.2f s", r.Tool.Version, r.Server.Mode, res.RPS, res.Tool.Format, r.Tool.Cores, r.CPU.ClientS)
		if r.Tool.Name != ToolLoadtest || r.Tool.Version == "" || r.Tool.Cores < 1 || res.Tool.Name != "loadtest" || res.Completed != 200 || res.Latency == nil {
			t.Errorf("loadtest run: tool %+v, result %+v", r.Tool, res)
		}
	}
}
