package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
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

// step is one request of the scenario and its answer, with tokens masked.
type step struct {
	Req    string
	Status int
	Body   string
}

var tokenRE = regexp.MustCompile(`"token":"[A-Za-z0-9._-]+"`)

// scenario runs the same requests against addr and returns the answers.
func scenario(t *testing.T, addr, mode string) []step {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var steps []step
	var tok string
	do := func(method, path, auth, ctype, body string) {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		s := string(b)
		if m := tokenRE.FindString(s); m != "" {
			var v struct{ Token string }
			_ = json.Unmarshal(b, &v)
			tok = v.Token
			s = tokenRE.ReplaceAllString(s, `"token":"<token>"`)
		}
		if resp.StatusCode >= 400 && strings.Contains(s, `"error"`) {
			s = `{"error":…}` // the wording may differ; the status may not
		}
		steps = append(steps, step{fmt.Sprintf("%s %s auth=%.12q %s %.30q", method, path, auth, ctype, body), resp.StatusCode, s})
	}
	c := loadgen.NewSessionClient("http://"+addr, 10*time.Second)
	// Propagation (master): until both workers hold (dropped) the token.
	propagated := func(tok string, held bool) {
		if mode != "master" {
			return
		}
		if err := c.WaitHeld(context.Background(), tok, 2, held, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	do("POST", "/login", "", "application/json", `{"name":"ana"}`)
	ana := tok
	propagated(ana, true)
	for _, bad := range []string{`{"name":""}`, `{"name":`, `[]`, `{"name":7}`, `{"name":"` + strings.Repeat("x", 65) + `"}`, strings.Repeat(" ", 5000)} {
		do("POST", "/login", "", "application/json", bad)
	}
	do("POST", "/login", "", "text/plain", `{"name":"ana"}`)
	do("GET", "/me", "", "", "")
	do("GET", "/me", "Bearer nope", "", "")
	do("GET", "/me", "Basic "+ana, "", "")
	do("GET", "/me", "Bearer "+ana+"x", "", "")
	do("POST", "/logout", "Bearer nope", "", "")
	if mode != "memory" { // memory's answers depend on the worker reached
		for range 4 {
			do("GET", "/me", "Bearer "+ana, "", "")
		}
		do("POST", "/logout", "Bearer "+ana, "", "")
		propagated(ana, false)
		for range 4 {
			do("GET", "/me", "Bearer "+ana, "", "")
		}
	}
	return steps
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
			goSteps, nodeSteps := scenario(t, goAddr, mode), scenario(t, nodeAddr, mode)
			for i := range max(len(goSteps), len(nodeSteps)) {
				if i >= len(goSteps) || i >= len(nodeSteps) || goSteps[i].Status != nodeSteps[i].Status || goSteps[i].Body != nodeSteps[i].Body {
					t.Errorf("step %d differs:\n  go:   %+v\n  node: %+v", i, at(goSteps, i), at(nodeSteps, i))
				}
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

func at(s []step, i int) any {
	if i < len(s) {
		return s[i]
	}
	return "(none)"
}
