package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/deploylab/deploylab/remote"
)

// TestSessionsLab runs the sessions plan (deploylab bench --plan sessions)
// on a real lab host over SSH: the bench uploads sumcluster, starts one
// cluster per mode as the login user, kills a worker and recycles one
// mid-run, and stops it. Structural assertions only (the lesson's shape:
// memory loses sessions with 2 workers, master and stateless none after
// propagation), no timing; nothing is left running.
func TestSessionsLab(t *testing.T) {
	l := labtest.Start(t, labtest.Options{Hosts: 1, Variant: lab.VariantBase})
	h := l.Hosts()[0]
	rh := labtest.RemoteHost(h)
	dial := func(ctx context.Context, t Target) (remote.Executor, error) {
		return remote.Dial(ctx, t.Remote, remote.WithSSHConfig(""), remote.WithAgent(""))
	}
	dir := binaries(t)
	store, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	plan := SessionsPlan()
	plan.Scenarios[0].Users = 120
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	out, err := Run(ctx, []Target{{Name: h.Name, Address: h.Address, Remote: rh}}, Options{
		Plan: plan, Loadgen: buildFor(t), Dial: dial, Store: store, Progress: NewProgress(&progress, false),
		Sumcluster: func(context.Context, string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, "sumcluster")) },
	})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatalf("bench --plan sessions: %v", err)
	}
	recs := out.Records()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3 (one per mode)", len(recs))
	}
	checkSessionsRuns(t, recs)
	for _, r := range recs {
		if r.Host.Name != h.Name || r.Host.CPUs < 1 || r.Server.Workers != 2 || r.Server.Port != DefaultSessionsPort {
			t.Errorf("%s: host %+v server %+v", r.ID, r.Host, r.Server)
		}
	}
	var tbl bytes.Buffer
	if err := WriteTable(&tbl, recs); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(tbl.String(), "SESSIONS: 120 users × 4 GET /me on 2 workers") {
		t.Errorf("table:\n%s", tbl.String())
	}
	t.Logf("\n%s", tbl.String())

	// Nothing of the bench's clusters is left on the host.
	x, err := dial(ctx, Target{Remote: rh})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	res, err := x.Run(ctx, "pgrep -a -f '[s]umcluster --addr 127.0.0.1' || true; ss -Hltn 'sport = :3290'")
	if err != nil {
		t.Fatal(err)
	}
	if s := strings.TrimSpace(string(res.Stdout)); s != "" {
		t.Errorf("left on the host after the bench:\n%s", s)
	}
}
