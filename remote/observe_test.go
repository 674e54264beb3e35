package remote

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/deploylab/deploylab/observe"
	"github.com/google/go-cmp/cmp"
)

// observeOn gathers deploy's facts (observe.FactsParts) through ex, as
// deploy's facts task does.
func observeOn(ctx context.Context, ex Executor, dirs ...string) (observe.Host, error) {
	return observe.Gather(ctx, func(ctx context.Context, cmd string) ([]byte, []byte, int, error) {
		r, err := ex.Run(ctx, cmd)
		return r.Stdout, r.Stderr, r.ExitCode, err
	}, observe.Options{Parts: observe.FactsParts, Dirs: dirs})
}

// TestFactsThisMachine gathers the real facts of this machine with
// observe's script, over SSH and locally, and checks them against what Go
// sees.
func TestFactsThisMachine(t *testing.T) {
	target := filepath.Join(t.TempDir(), "not", "yet", "there")
	var uts syscall.Utsname
	syscall.Uname(&uts)
	kernel := utsString(uts.Release[:])
	hostname, _ := os.Hostname()

	var results []observe.Host
	executors(t, func(t *testing.T, ex Executor) {
		f, err := observeOn(testCtx(t), ex, target)
		if err != nil {
			t.Fatalf("Facts: %v", err)
		}
		checks := []struct {
			name string
			ok   bool
		}{
			{"arch", f.Arch == runtime.GOARCH},
			{"cpus", f.CPUs == runtime.NumCPU()},
			{"kernel", f.Kernel == kernel},
			{"hostname", f.Hostname == hostname},
			{"os", f.OSID != "" && f.OSVersion != ""},
			{"memory", f.MemTotal > 64<<20},
			{"user", f.User == currentUser() && f.UID == os.Getuid()},
			{"sudo", f.Sudo == "root"},
			{"disk /", f.DiskFree["/"] > 0},
			{"disk target", f.DiskFree[target] > 0},
			{"init", f.Init != ""},
		}
		for _, c := range checks {
			if !c.ok {
				t.Errorf("%s wrong: %+v", c.name, f)
			}
		}
		// The test sshd listens, and as root we see its process.
		found := false
		for _, p := range f.Holders(env.sshd.port) {
			if p.Name == "sshd" && p.PID == env.sshd.cmd.Process.Pid {
				found = true
			}
		}
		if !found {
			t.Errorf("sshd on port %d (pid %d) not among listeners %+v", env.sshd.port, env.sshd.cmd.Process.Pid, f.Listeners)
		}
		for _, tool := range []string{"node", "npm", "pm2", "loadtest"} {
			p, err := exec.LookPath(tool)
			got, present := f.UserTool(tool)
			if (err == nil) != present {
				t.Errorf("%s: present=%v, but LookPath says %q %v", tool, present, p, err)
			}
			if present && got.Version == "" {
				t.Errorf("%s present without a version", tool)
			}
		}
		if node, ok := f.UserTool("node"); ok {
			out, _ := exec.Command("node", "--version").Output()
			if "v"+node.Version != strings.TrimSpace(string(out)) {
				t.Errorf("node version %q, node says %q", node.Version, out)
			}
		}
		results = append(results, f)
	})
	if len(results) == 2 {
		a, b := results[0], results[1]
		a.Home, b.Home = "", "" // the test changes $HOME locally
		// The sockets may change between the two calls (other tests), not the host.
		a.Listeners, b.Listeners = nil, nil
		a.Programs, b.Programs = nil, nil
		a.DiskFree, b.DiskFree = nil, nil
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("ssh and local facts differ (-ssh +local):\n%s", diff)
		}
	}
}

func utsString(b []int8) string {
	var s []byte
	for _, c := range b {
		if c == 0 {
			break
		}
		s = append(s, byte(c))
	}
	return string(s)
}
