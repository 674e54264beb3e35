package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/need"
	"github.com/deploylab/deploylab/nodeapp"
	"github.com/deploylab/deploylab/payload/loadgen"
)

// The Node model answer (payload/sessions/node/sessions.js) against the Go
// cluster: the same scenario on real processes gives the same answers.

// nodeModules returns the practice's Express node_modules (package nodeapp's
// directory; npm ci from its package-lock.json if missing). Node is a
// prerequisite, asked of internal/need.
func nodeModules(t *testing.T) string {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		need.Tool(t, tool, "apt-get install nodejs npm")
	}
	dir, err := nodeapp.Dir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "express", "package.json")); err != nil {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	return filepath.Join(dir, "node_modules")
}

// startNodeSessions runs the Node model answer with 2 workers and waits
// until both listen.
func startNodeSessions(t *testing.T, mode, key string) string {
	t.Helper()
	mods := nodeModules(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	app, _ := filepath.Abs(filepath.Join("..", "..", "..", "sessions", "node", "sessions.js"))
	cmd := exec.Command("node", app)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods, "NODE_ENV=production", "SESSIONS="+mode, "WORKERS=2",
		"PORT="+port, "SESSION_KEY_FILE="+key)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("node output:\n%s", out.String())
		}
	})
	addr := "127.0.0.1:" + port
	c := loadgen.NewSessionClient("http://"+addr, 2*time.Second)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if held, err := c.Tokens(context.Background(), 2); err == nil && len(held) == 2 {
			return addr
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the Node app's 2 workers never answered on %s", addr)
	return ""
}

func TestNodeModelAnswerMatchesGo(t *testing.T) {
	for _, mode := range []string{"memory", "master", "stateless"} {
		t.Run(mode, func(t *testing.T) {
			key := keyFile(t)
			nodeAddr := startNodeSessions(t, mode, key)
			// Round robin, as Node's cluster hands connections out: the
			// same conditions on both sides (the default, least busy,
			// sends an idle client's requests to the same worker).
			args := []string{"--instances", "2", "--schedule", "rr", "--sessions", mode, "--session-key-file", key}
			goAddr := startCluster(t, startOpts{args: args}).addr
			ctx := context.Background()
			goSteps, err := loadgen.SessionsAnswers(ctx, "http://"+goAddr, mode, 2)
			if err != nil {
				t.Fatalf("go: %v", err)
			}
			nodeSteps, err := loadgen.SessionsAnswers(ctx, "http://"+nodeAddr, mode, 2)
			if err != nil {
				t.Fatalf("node: %v", err)
			}
			for _, d := range loadgen.DiffAnswers(goSteps, nodeSteps) {
				t.Errorf("go and node differ at %s", d)
			}
			// The lesson's result holds for both.
			for name, addr := range map[string]string{"go": goAddr, "node": nodeAddr} {
				o := loadgen.SessionsOptions{URL: "http://" + addr, Users: 20, Gets: 4, Concurrency: 5, Settle: 20 * time.Millisecond}
				if mode == "master" {
					o.Propagate, o.Workers = 30*time.Second, 2
				}
				res, err := loadgen.RunSessions(context.Background(), o)
				if err != nil || res.Logins != 20 || res.Errors != 0 || res.PropagateTimeouts != 0 {
					t.Fatalf("%s: %v %+v", name, err, res)
				}
				t.Logf("%s %s: lost %d of %d", name, mode, res.Lost, res.FollowUps)
				if lostSome := res.Lost > 0 && res.Lost < res.FollowUps; (mode == "memory") != lostSome || mode != "memory" && res.Lost != 0 {
					t.Errorf("%s %s: lost %d of %d follow-ups", name, mode, res.Lost, res.FollowUps)
				}
			}
		})
	}
}
