package bench

import (
	"time"

	"github.com/deploylab/deploylab/payload/loadgen"
)

// synth builds records from figures, for the pure tests.
type synth struct {
	mode      string
	scenario  Scenario
	rps       float64
	meanMS    float64
	errors    int64
	durationS float64
	clientS   float64 // client CPU seconds over the run
	serverS   float64 // server CPU seconds; < 0 unknown
	machineS  float64
	cpus      int
	workers   []uint64
	at        time.Time
	tool      string
}

var (
	scAPI1000  = Scenario{Name: "api-n1000", Kind: KindLoad, Route: "/api/500000", Requests: 1000, Concurrency: 100}
	scAPI10000 = Scenario{Name: "api-n10000", Kind: KindLoad, Route: "/api/500000", Requests: 10000, Concurrency: 100}
	scRoot     = Scenario{Name: "root-n10000", Kind: KindLoad, Route: "/", Requests: 10000, Concurrency: 100}
	scBlocking = Scenario{Name: "blocking", Kind: KindBlocking, Route: "/api/5000000000", Probe: "/", Probes: 4, Delay: Duration(500 * time.Millisecond)}
	t0         = time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)
)

func (s synth) record() *Record {
	if s.cpus == 0 {
		s.cpus = 2
	}
	if s.durationS == 0 {
		s.durationS = float64(s.scenario.Requests) / s.rps
	}
	if s.tool == "" {
		s.tool = "loadgen"
	}
	completed := int64(s.scenario.Requests)
	res := &loadgen.Result{
		Schema: loadgen.Schema, Tool: loadgen.Tool{Name: s.tool, Version: "0.1.0"},
		URL: "http://127.0.0.1:3000" + s.scenario.Route, Method: "GET", Requests: completed,
		Concurrency: s.scenario.Concurrency, Cores: 1, DurationS: s.durationS,
		Completed: completed, OK: completed - s.errors, RPS: s.rps,
		Errors:              loadgen.Errors{Total: s.errors, Connect: s.errors},
		StatusCodes:         map[int]int64{200: completed - s.errors},
		LatencyResolutionUS: 1,
		Latency: &loadgen.Latency{
			Mean: s.meanMS * 1000, P50: s.meanMS * 900, P90: s.meanMS * 1400, P95: s.meanMS * 1600,
			P99: s.meanMS * 2500, Max: s.meanMS * 4000,
		},
	}
	port := 3000
	if s.mode == ModeCluster {
		port = 3001
	}
	r := &Record{
		Schema: Schema, Batch: "20261122-103000", At: s.at,
		Host:     HostInfo{Name: "alu01", Address: "10.77.1.2", Student: "Ana García", CPUs: s.cpus, Kernel: "6.1.0-26-amd64", Arch: "amd64"},
		Tool:     ToolInfo{Name: s.tool, Version: "0.1.0", Cores: 1},
		Scenario: s.scenario,
		Server:   ServerInfo{Mode: s.mode, Port: port, URL: res.URL},
		Result:   res,
		CPU:      &CPU{WallS: s.durationS, ClientS: s.clientS, MachineS: s.machineS, CPUs: s.cpus},
	}
	if s.serverS >= 0 {
		v := s.serverS
		r.CPU.ServerS, r.CPU.ServerSource = &v, "cgroup"
	}
	for i, n := range s.workers {
		r.Workers = append(r.Workers, WorkerCount{Slot: i + 1, ID: i + 1, PID: 100 + i, Before: 7, After: 7 + n, Requests: n})
	}
	if s.at.IsZero() {
		r.At = t0
	}
	return r
}

// blockingRecord is a blocking experiment's record: the heavy request took
// heavyMS, the light ones waited up to waitMS.
func blockingRecord(mode string, heavyMS, waitMS float64) *Record {
	r := synth{mode: mode, scenario: scBlocking, rps: 1}.record()
	r.Result.Requests, r.Result.Completed, r.Result.OK, r.Result.Concurrency = 4, 4, 4, 4
	r.Result.Latency = &loadgen.Latency{Mean: waitMS * 900, P50: waitMS * 900, P90: waitMS * 1000, P95: waitMS * 1000, P99: waitMS * 1000, Max: waitMS * 1000}
	r.Heavy = &loadgen.Result{Schema: loadgen.Schema, Requests: 1, Completed: 1, OK: 1,
		Latency: &loadgen.Latency{Mean: heavyMS * 1000, P50: heavyMS * 1000, P90: heavyMS * 1000, P95: heavyMS * 1000, P99: heavyMS * 1000, Max: heavyMS * 1000}}
	r.CPU, r.Workers = nil, nil
	return r
}

// practiceRecords are the FACTS.md figures: the cluster wins on /api/500000
// and loses on / (loadtest-like client CPU, connection cost, light route).
func practiceRecords() []*Record {
	return []*Record{
		synth{mode: ModeSingle, scenario: scAPI10000, rps: 1358, meanMS: 73, clientS: 2.4, serverS: 7.1, machineS: 14, workers: nil}.record(),
		synth{mode: ModeCluster, scenario: scAPI10000, rps: 1474, meanMS: 67.5, clientS: 2.5, serverS: 7.4, machineS: 13.3, workers: []uint64{5010, 4990}}.record(),
		synth{mode: ModeSingle, scenario: scRoot, rps: 3039, meanMS: 32.9, clientS: 3.3, serverS: 0.8, machineS: 5.1}.record(),
		synth{mode: ModeCluster, scenario: scRoot, rps: 2592, meanMS: 38.6, clientS: 3.4, serverS: 3.8, machineS: 7.5, workers: []uint64{6100, 3900}}.record(),
		blockingRecord(ModeSingle, 5210, 4650),
		blockingRecord(ModeCluster, 5170, 4.2),
	}
}

// blockingEach is a blocking record whose light requests waited waitsMS
// each (as loadgen stores them), sent delayMS after the heavy one.
func blockingEach(mode string, heavyMS, delayMS float64, waitsMS ...float64) *Record {
	maxMS, sum := 0.0, 0.0
	for _, w := range waitsMS {
		maxMS, sum = max(maxMS, w), sum+w
	}
	r := blockingRecord(mode, heavyMS, maxMS)
	r.Result.Latency.Mean = sum / float64(len(waitsMS)) * 1000
	r.Heavy.Started = t0
	r.Result.Started = t0.Add(time.Duration(delayMS * float64(time.Millisecond)))
	r.Result.Requests, r.Result.Completed, r.Result.OK = int64(len(waitsMS)), int64(len(waitsMS)), int64(len(waitsMS))
	for i, w := range waitsMS {
		r.Result.Each = append(r.Result.Each, loadgen.Request{StartUS: int64(40 * i), LatencyUS: int64(w * 1000), Status: 200})
	}
	return r
}
