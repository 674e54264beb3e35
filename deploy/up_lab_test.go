package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/golden"
	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/deploylab/deploylab/payload"
	"github.com/deploylab/deploylab/remote"
)

// testBuilder builds the payload into a cache private to the test run; a
// stamp (a GNU build-id note) makes a payload with different bytes, as a new
// version of the servers would be.
type testBuilder struct {
	cache string
	stamp string
}

func (b *testBuilder) build(ctx context.Context, goarch string) (*payload.Set, error) {
	o := payload.Options{GOARCH: goarch, CacheDir: b.cache, NoEmbedded: true}
	if b.stamp != "" {
		o.LDFlags = "-B 0x" + b.stamp
	}
	return payload.Build(ctx, o)
}

// labDial dials without the user's ~/.ssh/config or agent.
func labDial(ctx context.Context, h remote.Host) (remote.Executor, error) {
	return remote.Dial(ctx, h, remote.WithSSHConfig(""), remote.WithAgent(""))
}

func labTargets(hosts ...lab.Host) []Target {
	var ts []Target
	for _, h := range hosts {
		rh := labtest.RemoteHost(h)
		rh.Timeout = 5 * time.Second
		ts = append(ts, Target{Name: h.Name, Host: rh})
	}
	return ts
}

// lines records the task lines of a run, per host, in order.
type lines struct {
	mu sync.Mutex
	m  map[string][]string
}

func (l *lines) HostStart(string)         {}
func (l *lines) TaskStart(string, string) {}
func (l *lines) HostDone(*HostReport)     {}
func (l *lines) TaskDone(host string, r TaskResult) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string][]string{}
	}
	l.m[host] = append(l.m[host], TaskLine(host, 4, r))
}

var (
	hashRe   = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	originRe = regexp.MustCompile(`\b(built|cached|embedded)\)`)
	sizeRe   = regexp.MustCompile(`[0-9.]+ MiB`)
)

// normalize replaces what differs between runs (hashes, sizes, where the
// payload came from) so that the lines can be golden.
func normalize(s string) string {
	s = hashRe.ReplaceAllString(s, "<hash>")
	s = originRe.ReplaceAllString(s, "<origin>)")
	s = sizeRe.ReplaceAllString(s, "<size>")
	return s
}

func runUp(t *testing.T, b *testBuilder, check bool, targets []Target) (*Recap, *lines) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := NewDeployment(DeploymentOptions{Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	obs := &lines{}
	start := time.Now()
	rc, err := Up(ctx, targets, UpOptions{App: d, Check: check, Build: b.build, Dial: labDial, Observer: obs})
	if err != nil {
		t.Fatalf("Up: %v", err)
	}
	for _, h := range rc.Hosts {
		for _, l := range obs.m[h.Host] {
			t.Log(l)
		}
	}
	t.Logf("up (check=%v) on %d hosts took %s", check, len(targets), time.Since(start).Round(time.Millisecond))
	return rc, obs
}

func changedTasks(h *HostReport) []string {
	var out []string
	for _, r := range h.Tasks {
		if r.Status == Changed {
			out = append(out, r.Task)
		}
	}
	return out
}

// remoteRun runs cmd on the host as root and returns its stdout.
func remoteRun(t *testing.T, h lab.Host, cmd string) string {
	t.Helper()
	c := labtest.Dial(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := c.RunSudo(ctx, cmd)
	if err != nil {
		t.Fatalf("%s: %s: %v", h.Name, cmd, err)
	}
	if r.ExitCode != 0 {
		t.Fatalf("%s: %s: exit %d: %s%s", h.Name, cmd, r.ExitCode, r.Stdout, r.Stderr)
	}
	return string(r.Stdout)
}

// TestUpLab deploys to lab hosts (real systemd, real sshd): a fresh host,
// a second run, check mode, a new payload under load, a killed master, an
// inventory with a stopped host, and a wrong host key.
func TestUpLab(t *testing.T) {
	t.Parallel() // its own lab; no throughput assertion (TestUpNodeLab, which has one, runs before the parallel tests)
	l := labtest.Start(t, labtest.Options{Hosts: 3})
	hosts := l.Hosts()
	h1, h2, h3 := hosts[0], hosts[1], hosts[2]
	b := &testBuilder{cache: t.TempDir()}

	t.Run("check on a fresh host changes nothing", func(t *testing.T) {
		rc, obs := runUp(t, b, true, labTargets(h2))
		if err := rc.Err(); err != nil {
			t.Fatalf("check: %v", err)
		}
		got := normalize(strings.Join(obs.m[h2.Name], "\n") + "\n")
		golden.Check(t, filepath.Join("testdata", "up-check-fresh.golden"), []byte(strings.ReplaceAll(got, h2.Name, "host")))
		if out := remoteRun(t, h2, "ls -d /opt/deploylab 2>/dev/null; ls /etc/systemd/system | grep deploylab; true"); out != "" {
			t.Errorf("check mode left traces on the host:\n%s", out)
		}
	})

	t.Run("fresh host", func(t *testing.T) {
		rc, obs := runUp(t, b, false, labTargets(h1))
		if err := rc.Err(); err != nil {
			t.Fatalf("up: %v", err)
		}
		got := normalize(strings.Join(obs.m[h1.Name], "\n") + "\n")
		golden.Check(t, filepath.Join("testdata", "up-fresh.golden"), []byte(strings.ReplaceAll(got, h1.Name, "host")))
		want := []string{TaskUpload, TaskRelease, TaskUnits, payload.Sumserver, payload.Sumcluster}
		if got := changedTasks(rc.Hosts[0]); !slices.Equal(got, want) {
			t.Errorf("changed tasks %v, want %v", got, want)
		}
		// Both servers answer, asked from the host with curl.
		for _, c := range []struct{ port, path, want string }{
			{"3000", "/", "Hello World!"}, {"3000", "/api/50", "Final count is 1275"},
			{"3001", "/", "Hello World!"}, {"3001", "/api/50", "Final count is 1275"},
		} {
			if got := remoteRun(t, h1, "curl -sS -m 10 http://127.0.0.1:"+c.port+c.path); got != c.want {
				t.Errorf("curl :%s%s on the host = %q, want %q", c.port, c.path, got, c.want)
			}
		}
		// Unprivileged and sandboxed, as systemd applied it.
		for _, unit := range []string{"deploylab-sumserver.service", "deploylab-sumcluster.service"} {
			pid := strings.TrimSpace(remoteRun(t, h1, "systemctl show -p MainPID --value "+unit))
			status := remoteRun(t, h1, "grep -E '^(Uid|NoNewPrivs|Seccomp|CapBnd):' /proc/"+pid+"/status")
			for _, want := range []string{"NoNewPrivs:\t1", "Seccomp:\t2", "CapBnd:\t0000000000000000"} {
				if !strings.Contains(status, want) {
					t.Errorf("%s (pid %s): want %q in:\n%s", unit, pid, want, status)
				}
			}
			if strings.Contains(status, "Uid:\t0\t") {
				t.Errorf("%s runs as root:\n%s", unit, status)
			}
		}
		if j := remoteRun(t, h1, "journalctl --no-pager -b -u 'deploylab-*' | grep -iE 'failed to|ignoring|unknown' || true"); j != "" {
			t.Errorf("the journal has complaints about the units:\n%s", j)
		}
		for _, h := range rc.Hosts[0].Tasks {
			if h.Task == TaskSecurity {
				t.Logf("systemd-analyze security: %s", h.Msg)
				exp := h.Data["exposure"].(map[string]any)
				for unit, v := range exp {
					if v.(float64) > MaxExposure {
						t.Errorf("%s exposure %.1f > %.1f", unit, v, MaxExposure)
					}
				}
			}
		}
	})

	t.Run("second run changes nothing", func(t *testing.T) {
		for _, check := range []bool{false, true} {
			rc, obs := runUp(t, b, check, labTargets(h1))
			if err := rc.Err(); err != nil {
				t.Fatalf("up: %v", err)
			}
			if rc.Total.Changed != 0 {
				t.Errorf("check=%v: %d changed, want 0: %v", check, rc.Total.Changed, changedTasks(rc.Hosts[0]))
			}
			if !check {
				got := normalize(strings.Join(obs.m[h1.Name], "\n") + "\n")
				golden.Check(t, filepath.Join("testdata", "up-again.golden"), []byte(strings.ReplaceAll(got, h1.Name, "host")))
			}
		}
	})

	t.Run("new payload under load", func(t *testing.T) {
		// Two load generators on the host against the cluster: one
		// reusing connections, one opening a connection per request.
		// Rounds of 2 s until /tmp/lg-stop exists: a round ends by its time
		// limit, cleanly (an interrupted loadgen counts its cancelled dials
		// as errors).
		start := `cd /tmp && rm -f /tmp/lg-stop && for k in keep new; do
  flag=; [ $k = keep ] && flag=-k
  setsid sh -c 'while [ ! -e /tmp/lg-stop ]; do /opt/deploylab/current/loadgen '"$flag"' -c 4 -t 2 --json -q http://127.0.0.1:3001/api/1000; done' >/tmp/lg-$k.json 2>/tmp/lg-$k.err </dev/null &
  echo $! >/tmp/lg-$k.pid
done`
		remoteRun(t, h1, start)
		stopLoad := func() map[string]loadResult {
			out := remoteRun(t, h1, `touch /tmp/lg-stop; for k in keep new; do pid=$(cat /tmp/lg-$k.pid)
  for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done; done
for k in keep new; do echo "@@ $k"; cat /tmp/lg-$k.json; cat /tmp/lg-$k.err >&2; done`)
			res := map[string]loadResult{}
			for _, part := range strings.Split(out, "@@ ")[1:] {
				name, doc, _ := strings.Cut(part, "\n")
				dec := json.NewDecoder(strings.NewReader(doc))
				var sum loadResult
				for dec.More() {
					var r loadResult
					if err := dec.Decode(&r); err != nil {
						t.Fatalf("loadgen %s: %v:\n%s", name, err, doc)
					}
					sum.Rounds++
					sum.Completed += r.Completed
					sum.Duration += r.Duration
					sum.Errors.Total += r.Errors.Total
					for k, v := range r.ErrorSamples {
						if sum.ErrorSamples == nil {
							sum.ErrorSamples = map[string]string{}
						}
						sum.ErrorSamples[k] = v
					}
				}
				res[name] = sum
			}
			return res
		}
		time.Sleep(time.Second)
		b.stamp = "0123456789abcdef"
		rc, _ := runUp(t, b, false, labTargets(h1))
		time.Sleep(time.Second)
		load := stopLoad()
		if err := rc.Err(); err != nil {
			t.Fatalf("up: %v", err)
		}
		want := []string{TaskUpload, TaskRelease, payload.Sumserver, payload.Sumcluster}
		if got := changedTasks(rc.Hosts[0]); !slices.Equal(got, want) {
			t.Errorf("changed tasks %v, want %v", got, want)
		}
		for _, r := range rc.Hosts[0].Tasks {
			if r.Task == payload.Sumcluster && !slices.Equal(r.Changes, []string{"reload"}) {
				t.Errorf("sumcluster: changes %v, want [reload]", r.Changes)
			}
			if r.Task == payload.Sumserver && !slices.Equal(r.Changes, []string{"restart"}) {
				t.Errorf("sumserver: changes %v, want [restart]", r.Changes)
			}
		}
		for name, r := range load {
			t.Logf("load %s: %d requests in %d rounds, %d failed, over %.1fs", name, r.Completed, r.Rounds, r.Errors.Total, r.Duration)
			if r.Errors.Total != 0 {
				t.Errorf("load %s: %d of %d requests failed during the reload: %v", name, r.Errors.Total, r.Completed, r.ErrorSamples)
			}
			if r.Completed < 50 {
				t.Errorf("load %s: only %d requests: the load did not run during the deploy", name, r.Completed)
			}
		}
		if len(load) != 2 {
			t.Errorf("got %d load results, want 2", len(load))
		}
		// The workers now run the new binary.
		stats := remoteRun(t, h1, "/opt/deploylab/bin/sumcluster stats --stats-socket /run/deploylab-sumcluster/stats.sock")
		var st struct {
			Reloads int `json:"reloads"`
			Workers []struct {
				PID int `json:"pid"`
			} `json:"workers"`
		}
		if err := json.Unmarshal([]byte(stats), &st); err != nil {
			t.Fatal(err)
		}
		if st.Reloads < 1 || len(st.Workers) != 2 {
			t.Errorf("cluster stats: %d reloads, %d workers; want >= 1 and 2", st.Reloads, len(st.Workers))
		}
		release := strings.TrimSpace(remoteRun(t, h1, "readlink /opt/deploylab/current"))
		for _, w := range st.Workers {
			exe := strings.TrimSpace(remoteRun(t, h1, "sha256sum /proc/"+strconv.Itoa(w.PID)+"/exe | cut -d' ' -f1"))
			want := strings.TrimSpace(remoteRun(t, h1, "sha256sum /opt/deploylab/"+release+"/sumcluster | cut -d' ' -f1"))
			if exe != want {
				t.Errorf("worker %d runs a binary with sum %s, want the new release's %s", w.PID, exe, want)
			}
		}
	})

	t.Run("killed master is restarted", func(t *testing.T) {
		unit := "deploylab-sumcluster.service"
		old := strings.TrimSpace(remoteRun(t, h1, "systemctl show -p MainPID --value "+unit))
		remoteRun(t, h1, "kill -9 "+old)
		deadline := time.Now().Add(30 * time.Second)
		for {
			out := remoteRun(t, h1, "systemctl show -p MainPID -p ActiveState -p NRestarts "+unit)
			st := parseShow(out)
			if st.activeState == "active" && st.mainPID != 0 && strconv.Itoa(st.mainPID) != old {
				t.Logf("restarted: %s", strings.Join(strings.Fields(out), " "))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not restarted 30s after kill -9 of %s:\n%s", old, out)
			}
			time.Sleep(300 * time.Millisecond)
		}
		c := labtest.Dial(t, h1)
		res, err := Probe(context.Background(), c, []int{3001}, 30*time.Second)
		if err != nil || !res[3001].OK() {
			t.Fatalf("after the restart: %v %+v", err, res[3001])
		}
	})

	t.Run("wrong host key is refused", func(t *testing.T) {
		// A known_hosts that pins h2's address to h1's key.
		kh := filepath.Join(t.TempDir(), "known_hosts")
		line := fmt.Sprintf("%s %s\n", h2.Address, h1.HostKeys[0])
		if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		ts := labTargets(h2)
		ts[0].Host.KnownHostsFile = kh
		rc, _ := runUp(t, b, false, ts)
		err := rc.Err()
		if fail.KindOf(err) != fail.Auth || !remote.IsHostKeyError(err) {
			t.Fatalf("err = %v (kind %v), want a host key refusal", err, fail.KindOf(err))
		}
		if rc.Hosts[0].Failed != 1 || rc.Hosts[0].OK != 0 || fail.HintOf(err) == "" {
			t.Errorf("recap %+v, hint %q", rc.Hosts[0].Counts, fail.HintOf(err))
		}
	})

	t.Run("inventory with a stopped host", func(t *testing.T) {
		// Power h3 off; its connection may drop before the command returns.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		l.Run(ctx, h3.Name, "sudo systemctl poweroff", nil, nil)
		defer func() { t.Logf("%s powered off in %s", h3.Name, time.Since(start).Round(time.Millisecond)) }()
		for deadline := time.Now().Add(30 * time.Second); ; {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			c, err := labDial(ctx, labTargets(h3)[0].Host)
			cancel()
			if err != nil {
				break
			}
			c.Close()
			if time.Now().After(deadline) {
				t.Fatal("h3 still answers 30s after poweroff")
			}
			time.Sleep(500 * time.Millisecond)
		}
		b.stamp = "0123456789abcdef"
		rc, _ := runUp(t, b, false, labTargets(h1, h2, h3))
		err := rc.Err()
		if fail.KindOf(err) != fail.Unreachable || fail.ExitCode(err) != fail.ExitUnreachable {
			t.Fatalf("err = %v (kind %v), want unreachable", err, fail.KindOf(err))
		}
		byName := map[string]*HostReport{}
		for _, h := range rc.Hosts {
			byName[h.Host] = h
		}
		if r := byName[h1.Name]; r.Err() != nil || r.Changed != 0 {
			t.Errorf("%s: err %v, %d changed; want done, 0 changed", h1.Name, r.Err(), r.Changed)
		}
		if r := byName[h2.Name]; r.Err() != nil || r.Changed == 0 {
			t.Errorf("%s: err %v, %d changed; want a fresh deployment", h2.Name, r.Err(), r.Changed)
		}
		if r := byName[h3.Name]; r.Unreachable != 1 || r.OK != 0 {
			t.Errorf("%s: %+v, want unreachable=1", h3.Name, r.Counts)
		}
		var names []string
		for _, h := range rc.Hosts {
			names = append(names, h.Host)
		}
		if !sort.StringsAreSorted(names) {
			t.Errorf("recap rows %v not in inventory order", names)
		}
	})
}

// loadResult is the part of loadgen's JSON result the test reads.
type loadResult struct {
	Rounds    int
	Completed int     `json:"completed"`
	Duration  float64 `json:"duration_s"`
	Errors    struct {
		Total int `json:"total"`
	} `json:"errors"`
	ErrorSamples map[string]string `json:"error_samples"`
}
