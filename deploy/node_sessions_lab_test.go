package deploy

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/deploylab/deploylab/payload"
	"github.com/deploylab/deploylab/payload/loadgen"
)

// TestUpNodeSessionsLab deploys the stateful cluster's Node model answer
// (up --app node-sessions: memory, master and stateless under the login
// user's PM2, each its own cluster of 2 workers) to a lab host, then runs
// the same scenario against it and against deploylab's Go sumcluster
// --sessions on the same host (the same client, over the lab's network):
// the answers are the same in every mode. A second up changes nothing;
// down leaves nothing.
func TestUpNodeSessionsLab(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Variant: lab.VariantNode})
	host := l.Hosts()[0]
	targets := labTargets(host)
	n, err := NewNodeDeployment(NodeOptions{Sessions: true, Instances: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	up := func() *Recap {
		t.Helper()
		obs := &lines{}
		rc, err := Up(ctx, targets, UpOptions{App: n, Dial: labDial, Observer: obs})
		if err != nil {
			t.Fatalf("up --app node-sessions: %v", err)
		}
		for _, l := range obs.m[rc.Hosts[0].Host] {
			t.Log(l)
		}
		if err := rc.Err(); err != nil {
			t.Fatalf("up --app node-sessions: %v", err)
		}
		return rc
	}
	up()
	if h := up().Hosts[0]; h.Changed != 0 {
		t.Errorf("second up: changed=%d (%v), want 0", h.Changed, changedTasks(h))
	}

	// deploylab's Go version, on the same host: sumcluster --sessions per
	// mode on 3120-3122, round robin like Node's cluster.
	bins, err := payload.Binaries(ctx, runtime.GOARCH)
	if err != nil {
		t.Fatal(err)
	}
	c := labtest.Dial(t, host)
	if _, err := c.WriteFile(ctx, "/tmp/sumcluster", bins[payload.Sumcluster], 0o755); err != nil {
		t.Fatal(err)
	}
	var start strings.Builder
	start.WriteString("head -c 32 /dev/urandom > /tmp/sc.key\n")
	for i, m := range []string{"memory", "master", "stateless"} {
		fmt.Fprintf(&start, "setsid nohup /tmp/sumcluster --port %d --instances 2 --schedule rr --sessions %s --session-key-file /tmp/sc.key --stats-socket /tmp/sc-%s.sock >/tmp/sc-%s.log 2>&1 </dev/null &\n", 3120+i, m, m, m)
	}
	if r, err := c.Run(ctx, start.String()); err != nil || r.ExitCode != 0 {
		t.Fatalf("start sumcluster: %v %s", err, r.Stderr)
	}
	t.Cleanup(func() { remoteRun(t, host, "pkill -f '^/tmp/sumcluster' || true") })

	for i, m := range []string{"memory", "master", "stateless"} {
		nodeURL := fmt.Sprintf("http://%s:%d", host.Address, DefaultNodeSessionsPort+i)
		goURL := fmt.Sprintf("http://%s:%d", host.Address, 3120+i)
		for _, u := range []string{nodeURL, goURL} {
			waitWorkers(t, ctx, u, 2)
		}
		goAns, err := loadgen.SessionsAnswers(ctx, goURL, m, 2)
		if err != nil {
			t.Fatalf("%s: go: %v", m, err)
		}
		nodeAns, err := loadgen.SessionsAnswers(ctx, nodeURL, m, 2)
		if err != nil {
			t.Fatalf("%s: node: %v", m, err)
		}
		for _, d := range loadgen.DiffAnswers(goAns, nodeAns) {
			t.Errorf("%s: go and node differ at %s", m, d)
		}
		t.Logf("%s: %d answers compared", m, len(goAns))
	}

	rc, err := Down(verbCtx(t), targets, DownOptions{Dial: labDial, App: n})
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Err(); err != nil {
		for _, r := range rc.Hosts[0].Tasks {
			t.Logf("down %s: %s %s%s", r.Task, r.Status, r.Msg, r.Error)
		}
		t.Fatalf("down --app node-sessions: %v", err)
	}
	if out := remoteRun(t, host, "ls -d /home/deploy/"+DefaultNodeSessionsDir+" 2>/dev/null; pgrep -af '[s]essions[.]js'; true"); out != "" {
		t.Errorf("down --app node-sessions left: %s", out)
	}
}

// waitWorkers waits until n distinct workers of the session app at u
// answer GET /sessions/stats.
func waitWorkers(t *testing.T, ctx context.Context, u string, n int) {
	t.Helper()
	c := loadgen.NewSessionClient(u, 2*time.Second)
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if held, err := c.Tokens(ctx, n); err == nil && len(held) == n {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %d workers never answered", u, n)
}
