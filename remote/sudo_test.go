package remote

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/deploylab/deploylab/internal/fail"
)

// askingSudo is a sudo for the in-process server's commands that behaves as
// Debian's does for a user without NOPASSWD: -n fails with "a password is
// required"; -S reads a line from stdin and runs the command when it is the
// password. (The real sudo runs as root here and never asks.)
const askingSudo = `#!/bin/sh
n=; S=
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=1 ;; -S) S=1 ;; -p) shift ;; --) shift; break ;; *) break ;;
  esac
  shift
done
if [ -n "$n" ]; then echo "sudo: a password is required" >&2; exit 1; fi
if [ -n "$S" ]; then
  IFS= read -r pw
  if [ "$pw" != "$SUDO_TEST_PW" ]; then echo "sudo: 1 incorrect password attempt" >&2; exit 1; fi
fi
exec "$@"
`

// askingSudoDir returns a directory holding askingSudo, which wants pw.
func askingSudoDir(t *testing.T, pw string) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte(askingSudo), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUDO_TEST_PW", pw)
	return dir
}

// TestSudoPasswordOnlyWhenAsked: a configured sudo password goes only to a
// host whose sudo asks for one (sudo -n is tried first), only on sudo's
// stdin: never in a command line, the environment of the remote process, an
// error or a Result; a password sent to several hosts is warned about once.
func TestSudoPasswordOnlyWhenAsked(t *testing.T) {
	const sudoPW = "class-wide-S3cret"
	dir := askingSudoDir(t, sudoPW)
	noAsk := startTestServer(t, serverConfig{password: labPassword})
	asks := startTestServer(t, serverConfig{password: labPassword, path: dir})
	asks2 := startTestServer(t, serverConfig{password: labPassword, path: dir})

	var mu sync.Mutex
	var warnings []string
	warn := WithSecretWarnings(func(msg string) {
		mu.Lock()
		warnings = append(warnings, msg)
		mu.Unlock()
	})
	check := func(t *testing.T, srv *testServer, wantSent bool) {
		t.Helper()
		sent := false
		for _, rec := range srv.recorded() {
			if strings.Contains(rec.cmd, sudoPW) {
				t.Errorf("password in a command line: %q", rec.cmd)
			}
			for _, e := range rec.env {
				if strings.Contains(e, sudoPW) {
					t.Errorf("password in the environment: %q", e)
				}
			}
			if bytes.Contains(rec.stdin, []byte(sudoPW)) {
				sent = true
				if !strings.HasPrefix(rec.cmd, "sudo -S") {
					t.Errorf("password on the stdin of %q", rec.cmd)
				}
			}
		}
		if sent != wantSent {
			t.Errorf("password sent: %v, want %v", sent, wantSent)
		}
	}

	t.Run("sudo does not ask", func(t *testing.T) {
		h := noAsk.host("deploy")
		h.Password, h.SudoPassword = labPassword, sudoPW
		c := dialTest(t, h, warn)
		for range 2 {
			r, err := c.RunSudo(testCtx(t), "id -u; cat")
			if err != nil || string(r.Stdout) != "0\n" {
				t.Fatalf("%q %v", r.Stdout, err)
			}
		}
		check(t, noAsk, false)
	})
	t.Run("sudo asks", func(t *testing.T) {
		for _, srv := range []*testServer{asks, asks2} {
			h := srv.host("deploy")
			h.Password, h.SudoPassword = labPassword, sudoPW
			c := dialTest(t, h, warn)
			r, err := c.RunSudo(testCtx(t), "echo ran; cat")
			if err != nil || string(r.Stdout) != "ran\n" {
				t.Fatalf("%q %v", r.Stdout, err)
			}
			check(t, srv, true)
		}
		mu.Lock()
		defer mu.Unlock()
		var sudoWarnings []string
		for _, w := range warnings {
			if strings.Contains(w, sudoPW) {
				t.Errorf("warning shows the password: %q", w)
			}
			if strings.Contains(w, "sudo password") {
				sudoWarnings = append(sudoWarnings, w)
			}
		}
		if len(sudoWarnings) != 1 || !strings.Contains(sudoWarnings[0], "2 hosts") {
			t.Errorf("warnings %q, want one about the sudo password on 2 hosts", warnings)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		h := asks.host("deploy")
		h.Password, h.SudoPassword = labPassword, "not-"+sudoPW
		c := dialTest(t, h)
		r, err := c.RunSudo(testCtx(t), "true")
		if fail.KindOf(err) != fail.Auth {
			t.Fatalf("got %v", err)
		}
		for _, s := range []string{err.Error(), fail.HintOf(err), string(r.Stdout), string(r.Stderr)} {
			if strings.Contains(s, sudoPW) {
				t.Errorf("password shown: %q", s)
			}
		}
	})
}
