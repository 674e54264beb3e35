package render

import (
	"time"

	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/payload/loadgen"
)

var t0 = time.Date(2026, 12, 6, 1, 30, 0, 0, time.UTC)

// fixtureRun is one load run's figures.
type fixtureRun struct {
	stack, mode string
	rps         float64
	p50ms       float64
	clientS     float64
	serverS     float64 // < 0: not measured
	workers     []uint64
	errors      int64
	timeline    []int64 // completed per 0.1 s
}

var (
	scAPI  = bench.Scenario{Name: "api-n1000", Kind: bench.KindLoad, Route: "/api/500000", Requests: 1000, Concurrency: 100}
	scRoot = bench.Scenario{Name: "root-n2000", Kind: bench.KindLoad, Route: "/", Requests: 2000, Concurrency: 100}
	scBlk  = bench.Scenario{Name: "blocking", Kind: bench.KindBlocking, Route: "/api/5000000000", Probe: "/", Probes: 4, Delay: bench.Duration(500 * time.Millisecond)}
)

func host() bench.HostInfo {
	return bench.HostInfo{Name: "alu01", Address: "10.77.1.2", Student: "Ana García <script>alert(1)</script>", CPUs: 2, Kernel: "6.1.0-26-amd64", Arch: "amd64", OS: "Debian GNU/Linux 12 (bookworm)", MemTotal: 2 << 30}
}

func port(stack, mode string) int {
	return map[string]int{"node single": 3100, "node cluster": 3101, "go single": 3000, "go cluster": 3001}[stack+" "+mode]
}

func (f fixtureRun) record(sc bench.Scenario) *bench.Record {
	completed := int64(sc.Requests)
	dur := float64(completed) / f.rps
	p999 := f.p50ms * 9000
	res := &loadgen.Result{
		Schema: loadgen.Schema, Tool: loadgen.Tool{Name: "loadgen", Version: "0.1.0"},
		Requests: completed, Concurrency: sc.Concurrency, Started: t0, DurationS: dur,
		Completed: completed, OK: completed - f.errors, RPS: f.rps,
		Errors:      loadgen.Errors{Total: f.errors, Connect: f.errors},
		StatusCodes: map[int]int64{200: completed - f.errors},
		Latency: &loadgen.Latency{Mean: f.p50ms * 1100, P50: f.p50ms * 1000, P90: f.p50ms * 1500, P95: f.p50ms * 1800,
			P99: f.p50ms * 3000, P999: &p999, Max: f.p50ms * 12000},
	}
	if f.timeline != nil {
		res.Timeline = &loadgen.Timeline{IntervalS: 0.1, Completed: f.timeline, Errors: make([]int64, len(f.timeline))}
	}
	r := &bench.Record{
		Schema: bench.Schema, ID: "20261206-013000-alu01-" + f.stack + "-" + f.mode + "-" + sc.Name, Batch: "20261206-013000", At: t0,
		Host: host(), Tool: bench.ToolInfo{Name: "loadgen", Version: "0.1.0", Cores: 1},
		Scenario: sc, Server: bench.ServerInfo{Mode: f.mode, Port: port(f.stack, f.mode), Stack: f.stack},
		Result: res,
		CPU:    &bench.CPU{WallS: dur, ClientS: f.clientS, MachineS: dur * 1.9, CPUs: 2},
	}
	if f.serverS >= 0 {
		v := f.serverS
		r.CPU.ServerS, r.CPU.ServerSource = &v, "cgroup"
	}
	for i, n := range f.workers {
		r.Workers = append(r.Workers, bench.WorkerCount{Slot: i + 1, ID: i + 1, Requests: n, After: n})
	}
	if f.mode == bench.ModeCluster {
		r.Server.Workers = len(f.workers)
	}
	return r
}

// blocking is a blocking run whose light requests waited waitsMS.
func blocking(stack, mode string, heavyMS float64, waitsMS ...float64) *bench.Record {
	mx, sum := 0.0, 0.0
	var each []loadgen.Request
	for i, w := range waitsMS {
		mx, sum = max(mx, w), sum+w
		each = append(each, loadgen.Request{StartUS: int64(30 * i), LatencyUS: int64(w * 1000), Status: 200})
	}
	n := int64(len(waitsMS))
	return &bench.Record{
		Schema: bench.Schema, ID: "20261206-013000-alu01-" + stack + "-" + mode + "-blocking", Batch: "20261206-013000", At: t0,
		Host: host(), Tool: bench.ToolInfo{Name: "loadgen", Version: "0.1.0"},
		Scenario: scBlk, Server: bench.ServerInfo{Mode: mode, Port: port(stack, mode), Stack: stack},
		Result: &loadgen.Result{Schema: loadgen.Schema, Requests: n, Completed: n, OK: n, Concurrency: int(n), Started: t0.Add(500 * time.Millisecond),
			Latency: &loadgen.Latency{Mean: sum / float64(n) * 1000, P50: mx * 1000, P90: mx * 1000, P95: mx * 1000, P99: mx * 1000, Max: mx * 1000}, Each: each},
		Heavy: &loadgen.Result{Schema: loadgen.Schema, Requests: 1, Completed: 1, OK: 1, Started: t0,
			Latency: &loadgen.Latency{Mean: heavyMS * 1000, P50: heavyMS * 1000, P90: heavyMS * 1000, P95: heavyMS * 1000, P99: heavyMS * 1000, Max: heavyMS * 1000}},
	}
}

func ramp(n int, top int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = top
		if i < 3 {
			out[i] = top * int64(i+1) / 4
		}
	}
	return out
}

// compareRuns are bench --compare's four servers on one host: Node's
// figures from the practice, the Node cluster losing on / (client CPU),
// PM2's round-robin making one light request of four wait.
func compareRuns() []*bench.Record {
	return []*bench.Record{
		fixtureRun{stack: "node", mode: "single", rps: 951, p50ms: 98, clientS: 0.3, serverS: 0.95, timeline: ramp(11, 95)}.record(scAPI),
		fixtureRun{stack: "node", mode: "cluster", rps: 1474, p50ms: 62, clientS: 0.3, serverS: 1.3, workers: []uint64{501, 499}, timeline: ramp(7, 150)}.record(scAPI),
		fixtureRun{stack: "go", mode: "single", rps: 2990, p50ms: 31, clientS: 0.2, serverS: 0.31, timeline: ramp(4, 300)}.record(scAPI),
		fixtureRun{stack: "go", mode: "cluster", rps: 5200, p50ms: 18, clientS: 0.2, serverS: 0.33, workers: []uint64{520, 480}, timeline: ramp(2, 520)}.record(scAPI),
		fixtureRun{stack: "node", mode: "single", rps: 3039, p50ms: 29, clientS: 0.6, serverS: 0.16, timeline: ramp(7, 300)}.record(scRoot),
		fixtureRun{stack: "node", mode: "cluster", rps: 2575, p50ms: 35, clientS: 0.7, serverS: 0.75, workers: []uint64{1220, 780}, errors: 3, timeline: ramp(8, 260)}.record(scRoot),
		fixtureRun{stack: "go", mode: "single", rps: 6100, p50ms: 14, clientS: 0.3, serverS: -1, timeline: ramp(4, 610)}.record(scRoot),
		fixtureRun{stack: "go", mode: "cluster", rps: 7900, p50ms: 11, clientS: 0.3, serverS: 0.1, workers: []uint64{1010, 990}, timeline: ramp(3, 790)}.record(scRoot),
		blocking("node", "single", 5210, 4650, 4648, 4647, 4645),
		blocking("node", "cluster", 5170, 3200, 4.2, 3.9, 4.0),
		blocking("go", "single", 2400, 1850, 1849, 1848, 1846),
		blocking("go", "cluster", 2380, 1.1, 0.9, 1.0, 1.0),
	}
}
