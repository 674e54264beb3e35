package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/rogpeppe/go-internal/testscript"
	"golang.org/x/crypto/ssh"
)

// TestUpLabScripts runs the scripts in testdata/script/lab against a lab
// host (TestScripts runs only testdata/script, which needs none). They find,
// in $WORK:
//
//	lab.yaml      the lab host
//	mixed.yaml    the lab host and a host that is down (a closed loopback port)
//	badkey.yaml   the lab host with a known_hosts pinning another key
//	password.yaml the lab host with no key: password login, the password in
//	              $LAB_PASSWORD (the lab's deploy password)
func TestUpLabScripts(t *testing.T) {
	t.Parallel() // its own lab host; no throughput assertion
	l := labtest.Start(t, labtest.Options{Hosts: 1})
	h := l.Hosts()[0]
	goEnv := goEnvironment(t)
	down := closedPort(t)
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script/lab",
		Setup: func(e *testscript.Env) error {
			e.Setenv("XDG_CONFIG_HOME", e.WorkDir+"/.config")
			e.Setenv("HOME", e.WorkDir)
			// The payload is built once per test run, with the go
			// command's own caches.
			e.Setenv("XDG_CACHE_HOME", cache)
			for k, v := range goEnv {
				e.Setenv(k, v)
			}
			hostLine := fmt.Sprintf("  %s: {address: %s, port: %d}\n", h.Name, h.Address, h.Port)
			vars := fmt.Sprintf("vars:\n  user: %s\n  key: %s\n  known_hosts: %%s\n", h.User, h.KeyPath)
			badKH := filepath.Join(e.WorkDir, "bad_known_hosts")
			if err := os.WriteFile(badKH, []byte(h.Address+" "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(other)))+"\n"), 0o600); err != nil {
				return err
			}
			pw, err := os.ReadFile(l.PasswordPath())
			if err != nil {
				return err
			}
			e.Setenv("LAB_PASSWORD", strings.TrimSpace(string(pw)))
			files := map[string]string{
				"password.yaml": fmt.Sprintf("vars:\n  user: %s\n  known_hosts: %s\n  password_env: LAB_PASSWORD\n", h.User, h.KnownHostsPath) + "hosts:\n" + hostLine,
				"lab.yaml":      fmt.Sprintf(vars, h.KnownHostsPath) + "hosts:\n" + hostLine,
				"mixed.yaml":    fmt.Sprintf(vars, h.KnownHostsPath) + "hosts:\n" + hostLine + fmt.Sprintf("  down: {address: 127.0.0.1, port: %d}\n", down),
				"badkey.yaml":   fmt.Sprintf(vars, badKH) + "hosts:\n" + hostLine,
			}
			for name, data := range files {
				if err := os.WriteFile(filepath.Join(e.WorkDir, name), []byte(data), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

// goEnvironment is what the go command needs to build the payload inside a
// script (whose HOME is its work directory): its caches and settings.
func goEnvironment(t *testing.T) map[string]string {
	t.Helper()
	gocmd, err := exec.LookPath("go")
	if err != nil {
		gocmd = "/usr/local/go/bin/go"
	}
	keys := []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOPROXY", "GOFLAGS", "GONOSUMDB", "GOPRIVATE", "GOROOT"}
	out, err := exec.Command(gocmd, append([]string{"env"}, keys...)...).Output()
	if err != nil {
		t.Fatalf("go env: %v (the payload is built with the go command: install Go)", err)
	}
	vals := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	env := map[string]string{"GOTOOLCHAIN": "local", "PATH": filepath.Dir(gocmd) + ":" + os.Getenv("PATH")}
	for i, k := range keys {
		if i < len(vals) && vals[i] != "" {
			env[k] = vals[i]
		}
	}
	return env
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}
