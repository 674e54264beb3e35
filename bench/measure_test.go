package bench

import (
	"math"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/observe"
	"github.com/google/go-cmp/cmp"
)

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		line string
		want procStat
		ok   bool
	}{
		{"1234 (sumserver) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 3 2 20 0 5 0 100 0 0", procStat{1234, 1, 305}, true},
		// A command name with spaces and parentheses.
		{"77 (a) b (c) R 12 77 77 0 -1 0 0 0 0 0 10 20 0 0 20 0 1 0 1 0 0", procStat{77, 12, 30}, true},
		{"garbage", procStat{}, false},
		{"12 (short) S 1 2 3", procStat{}, false},
	}
	for _, tt := range tests {
		got, ok := parseProcStat(tt.line)
		if ok != tt.ok || got != tt.want {
			t.Errorf("parseProcStat(%q) = %+v, %v; want %+v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

func TestProcTreeCPU(t *testing.T) {
	stat := func(pid, ppid, utime, stime, cutime int) string {
		return strings.Join([]string{itoa(pid), "(x)", "S", itoa(ppid), "0 0 0 -1 0 0 0 0 0", itoa(utime), itoa(stime), itoa(cutime), "0 20 0 1 0 1 0 0"}, " ")
	}
	procs := strings.Join([]string{
		stat(1, 0, 1000, 1000, 0),  // init: not counted
		stat(10, 1, 100, 50, 30),   // master (30 ticks of reaped workers)
		stat(11, 10, 200, 100, 0),  // worker
		stat(12, 10, 300, 100, 0),  // worker
		stat(13, 12, 5, 5, 0),      // a worker's child
		stat(20, 1, 999, 999, 999), // someone else
	}, "\n")
	tests := []struct {
		roots []int
		want  float64
	}{
		{[]int{10}, (180 + 300 + 400 + 10) / 100.0},
		{[]int{11, 12}, (300 + 400 + 10) / 100.0},
		{[]int{10, 11}, (180 + 300 + 400 + 10) / 100.0}, // overlapping roots counted once
		{[]int{99}, -1},
		{nil, -1},
	}
	for _, tt := range tests {
		if got := procTreeCPU(procs, tt.roots); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("procTreeCPU(%v) = %v, want %v", tt.roots, got, tt.want)
		}
	}
	if got := parseServerCPU([]byte("cgroup\nusage_usec 2500000\nuser_usec 2000000\n"), nil); got != 2.5 {
		t.Errorf("cgroup cpu = %v", got)
	}
	if got := parseServerCPU([]byte("cgroup\n"), nil); got != -1 {
		t.Errorf("empty cgroup cpu = %v", got)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestParseTimes(t *testing.T) {
	tests := []struct {
		out  string
		want float64
		ok   bool
	}{
		{"0m0.004s 0m0.000s\n0m1.230s 0m0.450s\n", 1.68, true},           // bash
		{"0m0.000000s 0m0.001000s\n1m2.500000s 0m0.500000s\n", 63, true}, // dash
		{"0m0.004s 0m0.000s\n", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseTimes([]byte(tt.out))
		if ok != tt.ok || math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("parseTimes(%q) = %v, %v; want %v, %v", tt.out, got, ok, tt.want, tt.ok)
		}
	}
	// The real shell's output parses.
	out, err := exec.Command("sh", "-c", "times").Output()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parseTimes(out); !ok {
		t.Errorf("sh's times output %q does not parse", out)
	}
}

func TestServerProbes(t *testing.T) {
	out := "#deploylab-probe 1 @@M\n@@M meta\nuser=deploy\n" +
		"@@M listeners\tformat=ss\n" +
		`LISTEN 0 4096 *:3000 *:* users:(("sumserver",pid=501,fd=3))
LISTEN 0 4096 *:3001 *:* users:(("sumcluster",pid=601,fd=6))
LISTEN 0 4096 [::]:3001 [::]:* users:(("sumcluster",pid=601,fd=7))
` + "@@M exe\n501\t/opt/deploylab/bin/sumserver\t/opt/deploylab/bin/sumserver --port 3000\n" +
		"601\t/opt/deploylab/bin/sumcluster\t/opt/deploylab/bin/sumcluster --port 3001 --instances 0\n" +
		"@@M units\n" + `Id=deploylab-sumserver.service
LoadState=loaded
ActiveState=active
MainPID=501
ControlGroup=/system.slice/deploylab-sumserver.service
RuntimeDirectory=
ExecStart={ path=/opt/deploylab/bin/sumserver ; argv[]=/opt/deploylab/bin/sumserver --port 3000 ; ignore_errors=no ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }

Id=deploylab-sumcluster.service
LoadState=loaded
ActiveState=active
MainPID=601
ControlGroup=/system.slice/deploylab-sumcluster.service
RuntimeDirectory=deploylab-sumcluster
ExecStart={ path=/opt/deploylab/bin/sumcluster ; argv[]=/opt/deploylab/bin/sumcluster --port 3001 --instances 0 ; ignore_errors=no }
` + "@@M cgroups\nCPUStat=/sys/fs/cgroup/system.slice/deploylab-sumserver.service/cpu.stat\n@@M end\n"
	servers := DefaultPlan().Servers
	h, err := observe.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	got := serverProbes(h, servers)
	want := []serverProbe{
		{Server: servers[0], Listening: true, ListenKnown: true, ListenPIDs: []int{501}, UnitLoaded: true, UnitActive: true, MainPID: 501,
			CPUStat: "/sys/fs/cgroup/system.slice/deploylab-sumserver.service/cpu.stat", ExecPath: "/opt/deploylab/bin/sumserver"},
		{Server: servers[1], Listening: true, ListenKnown: true, ListenPIDs: []int{601}, UnitLoaded: true, UnitActive: true, MainPID: 601,
			StatsCmd: "/opt/deploylab/bin/sumcluster stats --stats-socket /run/deploylab-sumcluster/stats.sock", ExecPath: "/opt/deploylab/bin/sumcluster"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("serverProbes (-want +got):\n%s", d)
	}
	// A hand-run sumcluster: its statistics from its command line.
	hand := []Server{{Name: "cluster", Port: 3001}}
	if got := serverProbes(h, hand); got[0].StatsCmd != "/opt/deploylab/bin/sumcluster stats --port 3001" {
		t.Errorf("hand-run: %+v", got)
	}
	// Nothing deployed: no listener, unit not found.
	h, err = observe.Parse([]byte("#deploylab-probe 1 @@M\n@@M listeners\tformat=ss\n@@M units\nId=deploylab-sumserver.service\nLoadState=not-found\nActiveState=inactive\nMainPID=0\n@@M end\n"))
	if err != nil {
		t.Fatal(err)
	}
	got = serverProbes(h, servers)
	if got[0].Listening || !got[0].ListenKnown || got[0].UnitLoaded || got[1].UnitLoaded {
		t.Errorf("nothing deployed: %+v", got)
	}
	// Listeners not observed.
	if got := serverProbes(observe.Host{}, servers); got[1].ListenKnown {
		t.Errorf("no ss: %+v", got)
	}
}

func TestStatsCommand(t *testing.T) {
	tests := []struct {
		argv []string
		rd   string
		want string
	}{
		{[]string{"/opt/x/sumcluster", "--port", "3001"}, "deploylab-sumcluster", "/opt/x/sumcluster stats --stats-socket /run/deploylab-sumcluster/stats.sock"},
		{[]string{"/opt/x/sumcluster", "--stats-socket", "/run/s.sock"}, "other", "/opt/x/sumcluster stats --stats-socket /run/s.sock"},
		{[]string{"/opt/x/sumcluster", "--stats-socket=/tmp/a b.sock"}, "", "/opt/x/sumcluster stats --stats-socket '/tmp/a b.sock'"},
		{[]string{"/opt/x/sumcluster"}, "", "/opt/x/sumcluster stats --port 3001"},
	}
	for _, tt := range tests {
		if got := statsCommand(tt.argv, tt.rd, 3001); got != tt.want {
			t.Errorf("statsCommand(%v, %q) = %q, want %q", tt.argv, tt.rd, got, tt.want)
		}
	}
}

func TestWorkerCounts(t *testing.T) {
	var before, after clusterStats
	before.Workers = append(before.Workers,
		struct {
			Slot   int    `json:"slot"`
			ID     int    `json:"id"`
			PID    int    `json:"pid"`
			Served uint64 `json:"served"`
		}{1, 1, 10, 100},
		struct {
			Slot   int    `json:"slot"`
			ID     int    `json:"id"`
			PID    int    `json:"pid"`
			Served uint64 `json:"served"`
		}{2, 2, 11, 90})
	after.Workers = append(after.Workers, before.Workers[0], before.Workers[1])
	after.Workers[0].Served = 600
	after.Workers[1].ID, after.Workers[1].PID, after.Workers[1].Served = 3, 12, 40 // worker 2 respawned as 3
	got := workerCounts(&before, &after)
	want := []WorkerCount{
		{Slot: 1, ID: 1, PID: 10, Before: 100, After: 600, Requests: 500},
		{Slot: 2, ID: 3, PID: 12, Before: 0, After: 40, Requests: 40},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("workerCounts (-want +got):\n%s", d)
	}
	if workerCounts(&before, nil) != nil {
		t.Error("no stats after the run should give no counts")
	}
}

func TestSections(t *testing.T) {
	got := sections([]byte("junk\n@@run\n{\"a\":1}\n@@exit\n0\n@@times before\n0m0s 0m0s\n0m1s 0m0s\n@@end\n"))
	want := map[string][]byte{
		"run": []byte("{\"a\":1}\n"), "exit": []byte("0\n"), "times before": []byte("0m0s 0m0s\n0m1s 0m0s\n"), "end": {},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("sections (-want +got):\n%s", d)
	}
}
