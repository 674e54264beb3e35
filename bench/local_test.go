package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/deploylab/deploylab/internal/need"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/remote"
)

// These tests run the whole bench on this machine through remote.Local
// (the same scripts as over SSH), against real sumserver and sumcluster
// processes on loopback ports, with the real loadgen.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// goTool finds the go command.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// binaries builds sumserver, sumcluster and loadgen once per test binary,
// for this machine.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "deploylab-bench-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command(goTool(), "build", "-o", buildDir+"/",
			"github.com/deploylab/deploylab/payload/sumserver/cmd/sumserver",
			"github.com/deploylab/deploylab/payload/cluster/cmd/sumcluster",
			"github.com/deploylab/deploylab/payload/loadgen/cmd/loadgen")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

// buildFor returns a loadgen for goarch (cross-compiled when it is not
// this machine's).
func buildFor(t testing.TB) func(ctx context.Context, goarch string) ([]byte, error) {
	dir := binaries(t)
	return func(ctx context.Context, goarch string) ([]byte, error) {
		if goarch != runtime.GOARCH {
			return nil, fmt.Errorf("the tests build loadgen for %s only, not %s", runtime.GOARCH, goarch)
		}
		return os.ReadFile(filepath.Join(dir, "loadgen"))
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startServer starts a server binary with args and waits for its port.
func startServer(t *testing.T, bin string, port int, args ...string) {
	t.Helper()
	var log bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			t.Fatalf("%s exited: %s", bin, log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %d: %s", bin, port, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// localPlan is a short plan for the two local servers.
func localPlan(t *testing.T, single, cluster int) *Plan {
	t.Helper()
	p, err := ParsePlan("local.yaml", []byte(fmt.Sprintf(`servers:
  - {name: single, port: %d}
  - {name: cluster, port: %d}
warmup: {requests: 50, concurrency: 10}
scenarios:
  - {name: api, route: /api/50000, requests: 300, concurrency: 10}
  - {name: root, route: /, requests: 500, concurrency: 20, keepalive: true}
  - {name: blocking, kind: blocking, route: /api/1000000000, probes: 3, delay: 300ms}
`, single, cluster)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func localDial(ctx context.Context, t Target) (remote.Executor, error) { return &remote.Local{}, nil }

func TestRunLocal(t *testing.T) {
	need.Slow(t, "the whole bench on local servers")
	bin := binaries(t)
	t.Setenv("HOME", t.TempDir())
	single, cluster := freePort(t), freePort(t)
	startServer(t, filepath.Join(bin, "sumserver"), single, "--port", fmt.Sprint(single), "--addr", "127.0.0.1")
	startServer(t, filepath.Join(bin, "sumcluster"), cluster, "--port", fmt.Sprint(cluster), "--addr", "127.0.0.1",
		"--instances", "2", "--stats-socket", filepath.Join(t.TempDir(), "stats.sock"))

	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := Run(ctx, []Target{{Name: "local", Address: "127.0.0.1", Student: "Test Student"}}, Options{
		Plan: localPlan(t, single, cluster), Loadgen: buildFor(t), Dial: localDial, Store: store,
		Progress: NewProgress(&progress, false),
	})
	t.Logf("bench took %s", time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	recs := out.Records()
	if len(recs) != 6 {
		t.Fatalf("%d records, want 6", len(recs))
	}
	stored, err := store.List("local")
	if err != nil || len(stored) != 6 {
		t.Fatalf("store holds %d runs (%v)", len(stored), err)
	}
	if _, err := os.Stat(filepath.Join(os.Getenv("HOME"), ".cache/deploylab/bin/loadgen")); err != nil {
		t.Errorf("loadgen not installed in ~/.cache/deploylab/bin: %v", err)
	}
	var clientCPU, serverCPU float64
	for _, r := range recs {
		name := r.Server.Mode + " " + r.Scenario.Name
		if r.Server.Stack != LangGo {
			t.Errorf("%s: stack %q, want go (a plain run's default)", name, r.Server.Stack)
		}
		if r.Host.Name != "local" || r.Host.Student != "Test Student" || r.Host.CPUs < 1 || r.Host.Kernel == "" || r.Host.Arch != runtime.GOARCH {
			t.Errorf("%s: host info %+v", name, r.Host)
		}
		if r.Tool.Name != "loadgen" || r.Tool.Version == "" || r.Tool.Cores < 1 {
			t.Errorf("%s: tool %+v", name, r.Tool)
		}
		res := r.Result
		if r.Scenario.Kind == KindBlocking {
			continue
		}
		if res.Completed != int64(r.Scenario.Requests) || res.Errors.Total != 0 || res.RPS <= 0 || res.Latency == nil {
			t.Errorf("%s: result completed %d errors %d rps %v", name, res.Completed, res.Errors.Total, res.RPS)
		}
		// The client's CPU comes from the shell's times, the server's from
		// /proc, both in clock ticks (10 ms): a run of a few tens of ms may
		// honestly read 0, so each run must read >= 0 and the runs together
		// > 0 (checked below).
		if r.CPU == nil || r.CPU.WallS <= 0 || r.CPU.ClientS < 0 || r.CPU.MachineS <= 0 {
			t.Errorf("%s: cpu %+v", name, r.CPU)
		} else if os.Geteuid() == 0 && (r.CPU.ServerS == nil || *r.CPU.ServerS < 0 || r.CPU.ServerSource != "procs") {
			// As root, ss shows who listens: the server's processes are found.
			t.Errorf("%s: server cpu %v (%s), notes %v", name, r.CPU.ServerS, r.CPU.ServerSource, r.Notes)
		}
		if r.CPU != nil {
			clientCPU += r.CPU.ClientS
			if r.CPU.ServerS != nil {
				serverCPU += *r.CPU.ServerS
			}
		}
		if r.Server.Mode == ModeCluster {
			var sum uint64
			for _, w := range r.Workers {
				sum += w.Requests
			}
			if len(r.Workers) != 2 || sum != uint64(r.Scenario.Requests) {
				t.Errorf("%s: workers %+v (sum %d), want 2 workers serving the %d requests; notes %v", name, r.Workers, sum, r.Scenario.Requests, r.Notes)
			}
		}
	}
	if clientCPU <= 0 {
		t.Errorf("the load runs read no client CPU at all: the sampling around the runs is broken")
	}
	if os.Geteuid() == 0 && serverCPU <= 0 {
		t.Errorf("the load runs read no server CPU at all: the sampling of the server's processes is broken")
	}
	// The blocking experiment: the single server makes the light requests
	// wait for the heavy one, the cluster does not.
	var blk = map[string]*Record{}
	for _, r := range recs {
		if r.Scenario.Kind == KindBlocking {
			blk[r.Server.Mode] = r
		}
	}
	s, c := blk[ModeSingle], blk[ModeCluster]
	if s == nil || c == nil {
		t.Fatal("blocking runs missing")
	}
	t.Logf("blocking: single heavy %s waits %s; cluster heavy %s waits %s",
		fmtMS(s.Heavy.Latency.Max), fmtMS(s.Result.Latency.Max), fmtMS(c.Heavy.Latency.Max), fmtMS(c.Result.Latency.Max))
	if !Blocked(s) || Blocked(c) {
		t.Errorf("blocked: single %v, cluster %v", Blocked(s), Blocked(c))
	}
	// Ordering, not a speed ratio: the single server's light requests
	// waited longer than the cluster's (the ratio depends on the machine's
	// load, so it is not asserted).
	if s.Result.Latency.Max <= c.Result.Latency.Max {
		t.Errorf("single waited %s, cluster %s: want single > cluster", fmtMS(s.Result.Latency.Max), fmtMS(c.Result.Latency.Max))
	}
	var rep bytes.Buffer
	if err := WriteTable(&rep, recs); err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", rep.String())
	// Each light request's wait is stored, and counted.
	if bs, bc := ReadBlocking(s), ReadBlocking(c); len(bs.Lights) != s.Scenario.Probes || bs.WaitedN != s.Scenario.Probes || len(bc.Lights) != c.Scenario.Probes || bc.WaitedN != 0 {
		t.Errorf("light requests: single %d stored, %d waited; cluster %d stored, %d waited", len(bs.Lights), bs.WaitedN, len(bc.Lights), bc.WaitedN)
	} else {
		for _, l := range bs.Lights {
			if l.StartUS < float64(time.Duration(s.Scenario.Delay).Microseconds())/2 || l.StartUS+l.WaitUS > bs.HeavyUS*1.5 {
				t.Errorf("single: light request at %v µs waiting %v µs, heavy %v µs", l.StartUS, l.WaitUS, bs.HeavyUS)
			}
		}
	}
	for _, want := range []string{"local (Test Student, 127.0.0.1)", "/api/50000 -n 300 -c 10", "cluster workers (requests served): #1", "blocked: all 3 light requests waited", "not blocked: all 3 light requests answered"} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, want := range []string{"local: 8 runs to make", "local: [8/8] blocking cluster: GET / waited up to", "local: done"} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
}

func TestRunLocalErrors(t *testing.T) {
	bin := binaries(t)
	t.Setenv("HOME", t.TempDir())
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	single, cluster := freePort(t), freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := func(p *Plan) Options {
		return Options{Plan: p, Loadgen: buildFor(t), Dial: localDial, Store: store}
	}
	target := []Target{{Name: "alu07", Address: "10.0.0.7"}}

	// Nothing deployed: one clear line naming deploylab up.
	_, err = Run(ctx, target, opts(localPlan(t, single, cluster)))
	if err == nil {
		t.Fatal("no error without servers")
	}
	want := fmt.Sprintf("alu07: no deployment: nothing listens on port %d (single server); nothing listens on port %d (cluster server)", single, cluster)
	if err.Error() != want || !errors.Is(err, ErrNotDeployed) || !strings.Contains(fail.HintOf(err), "deploylab up --host 10.0.0.7") || fail.KindOf(err) != fail.Failed {
		t.Errorf("err = %q (hint %q, kind %v)\nwant %q", err, fail.HintOf(err), fail.KindOf(err), want)
	}

	// A one-off URL nobody answers: one line saying so.
	p, err := OneOff(localPlan(t, single, cluster), fmt.Sprintf("http://127.0.0.1:%d/", single), 5, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, target, opts(p))
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("alu07: http://127.0.0.1:%d/ is unreachable from the host: no request got an answer (dial tcp 127.0.0.1:%d: connect: connection refused)", single, single)) ||
		strings.Contains(err.Error(), "\n") || fail.KindOf(err) != fail.Failed {
		t.Errorf("unreachable URL: %v", err)
	}

	// --tool loadtest on a host without it.
	startServer(t, filepath.Join(bin, "sumserver"), single, "--port", fmt.Sprint(single), "--addr", "127.0.0.1")
	o := opts(localPlan(t, single, cluster))
	o.Tool = ToolLoadtest
	t.Setenv("PATH", "/usr/bin:/bin")
	_, err = Run(ctx, target, o)
	if err == nil || err.Error() != "alu07: loadtest is not installed (not on the PATH)" || !strings.Contains(fail.HintOf(err), "npm install -g loadtest") {
		t.Errorf("no loadtest: %v (hint %q)", err, fail.HintOf(err))
	}
	if got, _ := store.List(""); len(got) != 0 {
		t.Errorf("failed runs stored %d results", len(got))
	}
}

// TestRunLocalLoadtest runs the loadtest mode with a stand-in for npm's
// loadtest that prints a captured loadtest 8.2.1 summary (the samples of
// bench/loadtestfmt), installed the way npm installs it (bin symlink into
// node_modules, package.json with the version).
func TestRunLocalLoadtest(t *testing.T) {
	need.Slow(t, "the local bench with loadtest")
	bin := binaries(t)
	t.Setenv("HOME", t.TempDir())
	single, cluster := freePort(t), freePort(t)
	startServer(t, filepath.Join(bin, "sumserver"), single, "--port", fmt.Sprint(single), "--addr", "127.0.0.1")
	startServer(t, filepath.Join(bin, "sumcluster"), cluster, "--port", fmt.Sprint(cluster), "--addr", "127.0.0.1", "--instances", "2",
		"--stats-socket", filepath.Join(t.TempDir(), "stats.sock"))

	npm := t.TempDir()
	pkg := filepath.Join(npm, "lib/node_modules/loadtest")
	sample, err := filepath.Abs("loadtestfmt/testdata/v8.2.1_root_n10000_c100_k.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ path, data string }{
		{filepath.Join(pkg, "package.json"), "{\n  \"name\": \"loadtest\",\n  \"version\": \"8.2.1\"\n}\n"},
		// It records its arguments and prints the sample.
		{filepath.Join(pkg, "bin/loadtest.js"), "#!/bin/sh\nprintf '%s\\n' \"$*\" >> " + filepath.Join(npm, "args") + "\ncat " + sample + "\n"},
	} {
		os.MkdirAll(filepath.Dir(f.path), 0o755)
		if err := os.WriteFile(f.path, []byte(f.data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(npm, "bin"), 0o755)
	if err := os.Symlink("../lib/node_modules/loadtest/bin/loadtest.js", filepath.Join(npm, "bin/loadtest")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Join(npm, "bin")+":"+os.Getenv("PATH"))

	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := localPlan(t, single, cluster)
	p.Scenarios = p.Scenarios[1:2] // root -n 500 -c 20 -k
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := Run(ctx, []Target{{Name: "local"}}, Options{Plan: p, Tool: ToolLoadtest, Loadgen: buildFor(t), Dial: localDial, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	recs := out.Records()
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	args, _ := os.ReadFile(filepath.Join(npm, "args"))
	wantArgs := fmt.Sprintf("-n 500 -c 20 -k http://127.0.0.1:%d/\n-n 500 -c 20 -k http://127.0.0.1:%d/\n", single, cluster)
	if string(args) != wantArgs {
		t.Errorf("loadtest ran with\n%s\nwant\n%s", args, wantArgs)
	}
	for _, r := range recs {
		if r.Tool.Name != "loadtest" || r.Tool.Version != "8.2.1" || r.Tool.Cores < 1 || !strings.HasSuffix(r.Tool.Path, "/bin/loadtest") {
			t.Errorf("tool = %+v", r.Tool)
		}
		res := r.Result
		if res.Tool.Name != "loadtest" || res.Tool.Format != "v7" || res.Completed != 10000 || res.Latency == nil || res.LatencyResolutionUS != 1000 {
			t.Errorf("result = %+v", res)
		}
	}
}

// cancelAfterFirst cancels the run when the first measured run is done.
type cancelAfterFirst struct {
	nopProgress
	once   sync.Once
	cancel context.CancelFunc
}

func (c *cancelAfterFirst) StepDone(_, _ string, rec *Record, _ error) {
	if rec != nil {
		c.once.Do(c.cancel)
	}
}

// TestRunLocalInterrupted: Ctrl-C (a cancelled context) stops the bench at
// once; the runs already finished are stored and returned.
func TestRunLocalInterrupted(t *testing.T) {
	bin := binaries(t)
	t.Setenv("HOME", t.TempDir())
	single, cluster := freePort(t), freePort(t)
	startServer(t, filepath.Join(bin, "sumserver"), single, "--port", fmt.Sprint(single), "--addr", "127.0.0.1")
	startServer(t, filepath.Join(bin, "sumcluster"), cluster, "--port", fmt.Sprint(cluster), "--addr", "127.0.0.1", "--instances", "2",
		"--stats-socket", filepath.Join(t.TempDir(), "stats.sock"))
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := localPlan(t, single, cluster)
	// The second run is long enough to be interrupted.
	p.Scenarios[1] = Scenario{Name: "long", Kind: KindLoad, Route: "/api/50000", Requests: 1_000_000, Concurrency: 10}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := Run(ctx, []Target{{Name: "local"}}, Options{
		Plan: p, Loadgen: buildFor(t), Dial: localDial, Store: store, Progress: &cancelAfterFirst{cancel: cancel},
	})
	if err == nil || fail.KindOf(err) != fail.Interrupted {
		t.Fatalf("err = %v (kind %v), want Interrupted", err, fail.KindOf(err))
	}
	// Structural: the cancel, not the test's time limit, ended the million
	// requests of the long run.
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Errorf("the interrupted bench ran until the test's time limit")
	}
	recs := out.Records()
	stored, _ := store.List("")
	if len(recs) != 1 || len(stored) != 1 || recs[0].Scenario.Name != "api" {
		t.Errorf("kept %d records, stored %d; want the one finished run", len(recs), len(stored))
	}
}

// TestCompareLocal runs Compare against two local servers standing for a
// Node and a Go stack: each record stores its stack, the IDs and the
// tables keep them apart, and the grader's summaries keep the go one.
func TestCompareLocal(t *testing.T) {
	need.Slow(t, "the local four-server comparison")
	bin := binaries(t)
	t.Setenv("HOME", t.TempDir())
	nodePort, goPort := freePort(t), freePort(t)
	for _, p := range []int{nodePort, goPort} {
		startServer(t, filepath.Join(bin, "sumserver"), p, "--port", fmt.Sprint(p), "--addr", "127.0.0.1")
	}
	plan, err := ParsePlan("cmp.yaml", []byte(`servers:
  - {name: single, port: 1}
warmup: {requests: 0, concurrency: 1}
scenarios:
  - {name: root, route: /, requests: 200, concurrency: 10}
`))
	if err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	stacks := []Stack{
		{Label: "Node single", Lang: LangNode, Mode: ModeSingle, Port: nodePort},
		{Label: "Go single", Lang: LangGo, Mode: ModeSingle, Port: goPort},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress bytes.Buffer
	c, err := Compare(ctx, []Target{{Name: "local", Address: "127.0.0.1"}}, stacks, Options{
		Plan: plan, Loadgen: buildFor(t), Dial: localDial, Store: store, Progress: NewProgress(&progress, false),
	})
	if err != nil {
		t.Fatalf("Compare: %v", err)
	}
	// One count over both passes.
	for _, want := range []string{"local: 2 runs to make\n", "local: [1/2] root node single: ", "local: [2/2] root go single: ", "local: done\n"} {
		if strings.Count(progress.String(), want) != 1 {
			t.Errorf("progress has not exactly one %q:\n%s", want, progress.String())
		}
	}
	stored, err := store.List("local")
	if err != nil || len(stored) != 2 {
		t.Fatalf("store holds %d runs (%v), want 2", len(stored), err)
	}
	want := map[int]string{nodePort: LangNode, goPort: LangGo}
	for _, r := range stored {
		if r.Server.Stack != want[r.Server.Port] {
			t.Errorf("%s: stack %q, want %q", r.ID, r.Server.Stack, want[r.Server.Port])
		}
		if isNode := strings.Contains(r.ID, "-node-single-"); isNode != (r.Server.Stack == LangNode) {
			t.Errorf("ID %s does not name the node stack exactly when it is node", r.ID)
		}
	}
	var tbl bytes.Buffer
	if err := WriteComparison(&tbl, c); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tbl.String(), "not measured") || !strings.Contains(tbl.String(), "Node single") || !strings.Contains(tbl.String(), "Go single") {
		t.Errorf("comparison table misses a stack:\n%s", tbl.String())
	}
	var rep bytes.Buffer
	if err := WriteTable(&rep, stored); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"node single", "go single"} {
		if !strings.Contains(rep.String(), s) {
			t.Errorf("report does not name %q:\n%s", s, rep.String())
		}
	}
	sums, err := store.Summaries("local")
	if err != nil || len(sums) != 1 {
		t.Fatalf("Summaries = %+v, %v; want one", sums, err)
	}
	var goRPS float64
	for _, r := range stored {
		if r.Server.Stack == LangGo {
			goRPS = r.Result.RPS
		}
	}
	if sums[0].RPS != goRPS {
		t.Errorf("Summaries kept %.0f rps, want the go run's %.0f", sums[0].RPS, goRPS)
	}
}
