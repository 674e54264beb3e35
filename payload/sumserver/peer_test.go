package sumserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"github.com/deploylab/deploylab/internal/need"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/deploylab/deploylab/nodeapp"
)

// This file holds the helpers of the differential tests: the real Express
// app (package nodeapp, express pinned by its package-lock.json; run with
// PORT) and a raw
// HTTP/1.1 client that sends request targets exactly as given.

const nodeHint = "the differential tests need Node.js and npm: apt-get install nodejs npm"

// needNode fails the test when node or npm is missing.
func needNode(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"node", "npm"} {
		need.Tool(t, tool, nodeHint)
	}
}

var installOnce sync.Once
var installErr error

// expressDir returns the Express app's directory (package nodeapp) with
// its node_modules installed (npm ci from the committed package-lock.json
// when they are missing).
func expressDir(t *testing.T) string {
	t.Helper()
	needNode(t)
	dir, err := nodeapp.Dir()
	if err != nil {
		t.Fatal(err)
	}
	installOnce.Do(func() {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "express", "package.json")); err == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			installErr = fmt.Errorf("npm ci in %s: %w\n%s", dir, err, out)
		}
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
	return dir
}

// startExpress runs the practice's Express app on a free loopback port and
// returns its address; it is stopped when the test ends.
func startExpress(t *testing.T) string {
	t.Helper()
	dir := expressDir(t)
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, "node", "app.js")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_ENV=production", "PORT="+port)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start the Express app: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "App listening") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("the Express app exited before listening:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the Express app did not say it listens within 30 s:\n%s", stderr.String())
	}
	return "127.0.0.1:" + port
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startGo serves NewHandler(o) on a loopback listener wrapped by
// WrapListener, with NewServer's settings, and returns its address.
func startGo(t *testing.T, o Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), NewHandler(o))
	go func() { _ = srv.Serve(WrapListener(ln)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// request is one raw HTTP/1.1 request.
type request struct {
	method, target string
	header         []string // "Name: value" lines
}

func (r request) String() string {
	s := fmt.Sprintf("%s %q", r.method, r.target)
	if len(r.header) > 0 {
		s += fmt.Sprintf(" %q", r.header)
	}
	return s
}

// reply is what came back, reduced to what the tests compare.
type reply struct {
	status int
	header http.Header
	body   string
}

// compared are the headers the differential tests compare.
var compared = []string{"Content-Type", "Content-Length", "ETag", "Allow", "Content-Security-Policy", "X-Content-Type-Options"}

func (r reply) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", r.status)
	for _, h := range compared {
		if v := r.header.Values(h); len(v) > 0 {
			fmt.Fprintf(&b, "\n  %s: %s", h, strings.Join(v, ", "))
		}
	}
	fmt.Fprintf(&b, "\n  body %q", r.body)
	return b.String()
}

// do sends req on a new connection and reads the reply.
func do(addr string, req request, timeout time.Duration) (reply, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", req.method, req.target, addr)
	for _, h := range req.header {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := c.Write([]byte(b.String())); err != nil {
		return reply{}, err
	}
	return readReply(bufio.NewReader(c), req.method)
}

func readReply(br *bufio.Reader, method string) (reply, error) {
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body.String()}, nil
}

// diff describes how two replies differ in what is compared, or "".
func diff(express, got reply) string {
	var d []string
	if express.status != got.status {
		d = append(d, fmt.Sprintf("status %d, Express %d", got.status, express.status))
	}
	if express.body != got.body {
		d = append(d, fmt.Sprintf("body %q, Express %q", got.body, express.body))
	}
	for _, h := range compared {
		e, g := strings.Join(express.header.Values(h), ", "), strings.Join(got.header.Values(h), ", ")
		if h == "Content-Length" && e == "" && got.body == "" {
			continue // Node's bare 400 has none, Go's says 0
		}
		if e != g {
			d = append(d, fmt.Sprintf("%s %q, Express %q", h, g, e))
		}
	}
	return strings.Join(d, "; ")
}
