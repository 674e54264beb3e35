package remote

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
	"github.com/google/go-cmp/cmp"
)

// TestParseFactsGolden parses captured outputs of the facts script
// (testdata/facts/*.txt) and compares with *.golden.json (-update rewrites).
func TestParseFactsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/facts/*.txt")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 samples in testdata/facts, got %d (%v)", len(files), err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".txt")
		t.Run(name, func(t *testing.T) {
			out, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f, err := ParseFacts(out)
			if err != nil {
				t.Fatalf("ParseFacts: %v", err)
			}
			got, _ := json.MarshalIndent(f, "", "  ")
			got = append(got, '\n')
			golden.Check(t, strings.TrimSuffix(in, ".txt")+".golden.json", got)
		})
	}
}

func TestParseFactsIncomplete(t *testing.T) {
	for _, out := range []string{"", "@@hostname\nvm\n@@os\nID=debian\n", "bash: sh: command not found\n"} {
		if _, err := ParseFacts([]byte(out)); err == nil {
			t.Errorf("ParseFacts(%q) succeeded", out)
		}
	}
}

// TestFactsThisMachine gathers the real facts of this machine, over SSH
// and locally, and checks them against what Go sees.
func TestFactsThisMachine(t *testing.T) {
	target := filepath.Join(t.TempDir(), "not", "yet", "there")
	var uts syscall.Utsname
	syscall.Uname(&uts)
	kernel := utsString(uts.Release[:])
	hostname, _ := os.Hostname()

	var results []Facts
	executors(t, func(t *testing.T, ex Executor) {
		f, err := ex.Facts(testCtx(t), target)
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
		for _, l := range f.ListenersOn(env.sshd.port) {
			for _, p := range l.Processes {
				if p.Name == "sshd" && p.PID == env.sshd.cmd.Process.Pid {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("sshd on port %d (pid %d) not among listeners %+v", env.sshd.port, env.sshd.cmd.Process.Pid, f.Listeners)
		}
		for _, tool := range FactTools {
			p, err := exec.LookPath(tool)
			got := f.Tools[tool]
			if (err == nil) != got.Present {
				t.Errorf("%s: present=%v, but LookPath says %q %v", tool, got.Present, p, err)
			}
			if got.Present && got.Version == "" {
				t.Errorf("%s present without a version", tool)
			}
		}
		if node := f.Tools["node"]; node.Present {
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
