package deploy

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/golden"
	"github.com/google/go-cmp/cmp"
)

func TestSelectServices(t *testing.T) {
	goD, _ := NewDeployment(DeploymentOptions{})
	n, _ := NewNodeDeployment(NodeOptions{})
	nodeD := n.Deployment()
	for _, c := range []struct {
		d    Deployment
		arg  string
		want []string
		err  string
	}{
		{goD, "", []string{"sumserver", "sumcluster"}, ""},
		{goD, "all", []string{"sumserver", "sumcluster"}, ""},
		{goD, "single", []string{"sumserver"}, ""},
		{goD, "cluster", []string{"sumcluster"}, ""},
		{goD, "sumcluster", []string{"sumcluster"}, ""},
		{goD, "web", nil, `unknown service "web"`},
		{nodeD, "", []string{"node-single", "node-cluster"}, ""},
		{nodeD, "single", []string{"node-single"}, ""},
		{nodeD, "cluster", []string{"node-cluster"}, ""},
		{nodeD, "node-cluster", []string{"node-cluster"}, ""},
		{nodeD, "sumserver", nil, `unknown service "sumserver"`},
	} {
		got, err := c.d.SelectServices(c.arg)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("%q: error %v, want %q", c.arg, err, c.err)
			}
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if diff := cmp.Diff(c.want, names); diff != "" || err != nil {
			t.Errorf("%q: %v %s", c.arg, err, diff)
		}
	}
}

// lsSample is what lsScript prints on a host with the cluster of 2 workers
// running and the single server stopped.
const lsSample = `@@supervisor systemd
@@clk 100 4096
@@uptime 1000.50
@@svc sumserver
LoadState=loaded
ActiveState=inactive
SubState=dead
MainPID=0
NRestarts=0
ActiveEnterTimestampMonotonic=0
MainPID=
@@svc sumcluster
LoadState=loaded
ActiveState=active
SubState=running
MainPID=100
NRestarts=2
ActiveEnterTimestampMonotonic=900500000
MainPID=100
@@stats
{"pid":100,"served":42,"restarts":0,"workers":[{"slot":2,"id":4,"pid":102,"state":"ready","served":20,"uptime_s":50,"restarts":1,"rss_bytes":1},{"slot":1,"id":3,"pid":101,"state":"ready","served":22,"uptime_s":60,"restarts":0,"rss_bytes":1}]}
@@stat1 sumcluster:100 S 1 100 100 0 -1 4194560 0 0 0 0 10 10 0 0 20 0 5 0 9000 0 0
@@stat1 sumcluster:101 S 1 100 100 0 -1 4194560 0 0 0 0 100 0 0 0 20 0 5 0 9100 0 0
@@stat1 sumcluster:102 S 1 100 100 0 -1 4194560 0 0 0 0 100 0 0 0 20 0 5 0 9200 0 0
@@stat2 sumcluster:100 S 1 100 100 0 -1 4194560 0 0 0 0 10 10 0 0 20 0 5 0 9000 0 0
@@stat2 sumcluster:101 S 1 100 100 0 -1 4194560 0 0 0 0 110 15 0 0 20 0 5 0 9100 0 0
@@stat2 sumcluster:102 S 1 100 100 0 -1 4194560 0 0 0 0 100 0 0 0 20 0 5 0 1 0 0
@@statm sumcluster:100 1000 256 10 10 0 10 0
@@statm sumcluster:101 1000 512 10 10 0 10 0
@@statm sumcluster:102 1000 1024 10 10 0 10 0
`

func TestParseLs(t *testing.T) {
	d, _ := NewDeployment(DeploymentOptions{})
	got, err := parseLs(lsSample, d.Services, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	u := func(n uint64) *uint64 { return &n }
	want := []ProcStatus{
		{Name: "sumserver", Mode: "fork", Status: "stopped", Supervisor: "systemd"},
		{Name: "sumcluster", Mode: "cluster", Status: "online", PID: 100, Uptime: 100, Restarts: 2,
			CPU: 100, Memory: (256 + 512 + 1024) * 4096, Served: u(42), Supervisor: "systemd",
			Workers: []ProcStatus{
				// 25 ticks in 0.25 s at 100 Hz: one full CPU.
				{Name: "worker 1", Status: "ready", PID: 101, Uptime: 60, CPU: 100, Memory: 512 * 4096, Served: u(22)},
				// A pid reused between the samples counts no CPU.
				{Name: "worker 2", Status: "ready", PID: 102, Uptime: 50, Restarts: 1, Memory: 1024 * 4096, Served: u(20)},
			}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseLs (-want +got):\n%s", diff)
	}
	var buf bytes.Buffer
	if err := WriteLs(&buf, []HostStatus{{Host: "lab1", Address: "10.0.0.2", Services: got}, {Host: "lab2", Error: "connect: refused", Hint: "is it up?"}}); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "ls.golden"), []byte(buf.String()))
}

func TestEcosystem(t *testing.T) {
	d, _ := NewDeployment(DeploymentOptions{Supervisor: SupervisorPM2})
	eco := string(d.Ecosystem())
	for _, want := range []string{`"exec_mode": "fork"`, `"interpreter": "none"`, `"name": "deploylab-sumcluster"`,
		`"--stats-socket"`, `"/opt/deploylab/pm2/sumcluster.sock"`, "module.exports = {"} {
		if !strings.Contains(eco, want) {
			t.Errorf("ecosystem lacks %s:\n%s", want, eco)
		}
	}
	golden.Check(t, filepath.Join("testdata", "ecosystem.config.js.golden"), []byte(eco))
}

func TestPM2Tasks(t *testing.T) {
	d, _ := NewDeployment(DeploymentOptions{Supervisor: SupervisorPM2})
	want := []string{TaskFacts, TaskPayload, TaskUpload, TaskRelease, TaskPM2, TaskVerify}
	if diff := cmp.Diff(want, TaskNames(d)); diff != "" {
		t.Errorf("TaskNames under pm2:\n%s", diff)
	}
}

func TestNewApp(t *testing.T) {
	for _, tt := range []struct {
		name, want string
		o          AppOptions
		err        string
	}{
		{"", "go", AppOptions{}, ""},
		{"go", "go", AppOptions{Supervisor: SupervisorPM2}, ""},
		{"node", "node", AppOptions{NodePort: 4100}, ""},
		{"node-sessions", "node-sessions", AppOptions{Instances: 2}, ""},
		{"go", "", AppOptions{Supervisor: "upstart"}, `supervisor "upstart" is not supported`},
		{"ruby", "", AppOptions{}, `unknown app "ruby"`},
	} {
		app, err := NewApp(tt.name, tt.o)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err || fail.KindOf(err) != fail.Usage {
				t.Errorf("NewApp(%q) error %v, want usage error %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || app.AppName() != tt.want {
			t.Errorf("NewApp(%q) = %v, %v, want %s", tt.name, app, err, tt.want)
		}
	}
	if app, _ := NewApp("node", AppOptions{NodePort: 4100}); app.Deployment().Services[0].Port != 4100 {
		t.Errorf("node port not used: %+v", app.Deployment())
	}
	if app, _ := NewApp("node-sessions", AppOptions{}); len(app.Deployment().Services) != 3 || app.Deployment().Services[2].Port != DefaultNodeSessionsPort+2 {
		t.Errorf("node-sessions: %+v", app.Deployment())
	}
	if !slices.Equal(AppNames(), []string{"go", "node", "node-sessions"}) {
		t.Errorf("AppNames = %v", AppNames())
	}
}
