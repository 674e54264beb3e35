package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/syncbuf"
)

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		env     string
		code    int
		out     string // in stdout
		errText string // in stderr
	}{
		{[]string{"--help"}, "", 0, "SIGTERM", ""},
		{[]string{"-h"}, "", 0, "Exit codes:", ""},
		{[]string{"--mode", "fast"}, "", 2, "", `unknown mode "fast"`},
		{[]string{"--port", "x"}, "", 2, "", `bad port "x"`},
		{nil, "99999", 2, "", `bad port "99999"`},
		{[]string{"--nope"}, "", 2, "", "flag provided but not defined"},
		{[]string{"extra"}, "", 2, "", `unexpected argument "extra"`},
		{[]string{"stats"}, "", 2, "", "give --stats-socket PATH"},
		{[]string{"stats", "--stats-socket", "/nonexistent/s.sock"}, "", 1, "", "is sumserver running"},
		{[]string{"--port", "0", "--stats-socket", "/nonexistent/s.sock"}, "", 1, "", "stats socket"},
		{[]string{"--sessions", "redis"}, "", 2, "", `unknown sessions mode "redis"`},
		{[]string{"--sessions", "stateless"}, "", 2, "", "--sessions stateless needs --session-key-file"},
		{[]string{"--session-ttl", "0s"}, "", 2, "", "--session-ttl: must be positive"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, tt.env, &out, &errb)
		if code != tt.code || !strings.Contains(out.String(), tt.out) || !strings.Contains(errb.String(), tt.errText) {
			t.Errorf("run(%q, PORT=%q) = %d, stdout %q, stderr %q; want %d, %q, %q",
				tt.args, tt.env, code, out.String(), errb.String(), tt.code, tt.out, tt.errText)
		}
	}
}

// TestSignalDrains runs the real binary: SIGTERM during a request lets it
// finish, then the process exits 0.
func TestSignalDrains(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "sumserver")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if out, err := exec.Command(gobin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--port", "0", "--addr", "127.0.0.1")
	cmd.Env = append(os.Environ(), "PORT=")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatal("no startup line")
	}
	line := sc.Text()
	m := regexp.MustCompile(`^App listening on port (\d+) \(addr 127\.0\.0\.1:\d+, mode serial, pid \d+\)$`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("startup line %q", line)
	}
	rest := make(chan string, 1)
	go func() { b, _ := io.ReadAll(stdout); rest <- string(b) }()
	base := "http://127.0.0.1:" + m[1]

	type result struct {
		body string
		err  error
	}
	heavy := make(chan result, 1)
	go func() {
		resp, err := http.Get(base + "/api/1000000000") // ~1 s of loop
		if err != nil {
			heavy <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		heavy <- result{string(b), err}
	}()
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-heavy
	if r.err != nil || r.body != "Final count is 500000000067109000" {
		t.Errorf("request in flight during SIGTERM: %q, %v", r.body, r.err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30 s after SIGTERM")
	}
	if out := <-rest; !strings.Contains(out, "stopped") {
		t.Errorf("stdout after SIGTERM %q, want a stop line", out)
	}
	if _, err := http.Get(base + "/"); err == nil {
		t.Error("still answering after exit")
	}
}

// TestStatsSocket: with --stats-socket the server counts the requests it
// answers (any route and status) and serves the count; "sumserver stats"
// prints it; the socket goes when the server stops.
func TestStatsSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "stats.sock")
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--port", "0", "--addr", "127.0.0.1", "--stats-socket", sock}, "", &out, io.Discard)
	}()
	var port string
	deadline := time.Now().Add(10 * time.Second)
	for port == "" {
		if m := regexp.MustCompile(`App listening on port (\d+)`).FindStringSubmatch(out.String()); m != nil {
			port = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no start line: %q", out.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, p := range []string{"/", "/api/50", "/nope"} {
		r, err := http.Get("http://127.0.0.1:" + port + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"stats", "--stats-socket", sock}, "", &stdout, &stderr); code != 0 {
		t.Fatalf("stats: exit %d: %s", code, stderr.String())
	}
	var st stats
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		t.Fatalf("stats: %v: %q", err, stdout.String())
	}
	if st.Served != 3 || st.Mode != "serial" || st.Uptime <= 0 {
		t.Errorf("stats %+v, want 3 served in serial mode with an uptime", st)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel", code)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("stats socket left after stop: %v", err)
	}
}

// TestSessions: --sessions memory serves the session routes beside the app
// (one process: every request finds the token).
func TestSessions(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out syncbuf.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--port", "0", "--addr", "127.0.0.1", "--sessions", "master"}, "", &out, io.Discard)
	}()
	var port string
	deadline := time.Now().Add(10 * time.Second)
	for port == "" {
		if m := regexp.MustCompile(`App listening on port (\d+)`).FindStringSubmatch(out.String()); m != nil {
			port = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no start line: %q", out.String())
		} else {
			time.Sleep(20 * time.Millisecond)
		}
	}
	base := "http://127.0.0.1:" + port
	r, err := http.Post(base+"/login", "application/json", strings.NewReader(`{"name":"ana"}`))
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Token string }
	err = json.NewDecoder(r.Body).Decode(&v)
	r.Body.Close()
	if err != nil || r.StatusCode != 200 || v.Token == "" {
		t.Fatalf("login: %d %v", r.StatusCode, err)
	}
	me := func() int {
		req, _ := http.NewRequest("GET", base+"/me", nil)
		req.Header.Set("Authorization", "Bearer "+v.Token)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if c := me(); c != 200 {
		t.Errorf("GET /me: %d", c)
	}
	req, _ := http.NewRequest("POST", base+"/logout", nil)
	req.Header.Set("Authorization", "Bearer "+v.Token)
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != 204 {
		t.Fatalf("logout: %v %v", r, err)
	}
	if c := me(); c != 401 {
		t.Errorf("GET /me after logout: %d", c)
	}
	if r, err := http.Get(base + "/api/50"); err != nil || r.StatusCode != 200 {
		t.Errorf("the app beside the sessions: %v %v", r, err)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d after cancel", code)
	}
}
