package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

const labPassword = "pa ss'wo\"rd$1"

func TestPasswordAuth(t *testing.T) {
	for _, kbd := range []bool{false, true} {
		name := "password"
		if kbd {
			name = "keyboard-interactive"
		}
		t.Run(name, func(t *testing.T) {
			srv := startTestServer(t, serverConfig{password: labPassword, kbdOnly: kbd})

			t.Run("right password", func(t *testing.T) {
				h := srv.host("deploy")
				h.Password = labPassword
				c := dialTest(t, h)
				r, err := c.Run(testCtx(t), "echo in")
				if err != nil || string(r.Stdout) != "in\n" {
					t.Fatalf("%q %v", r.Stdout, err)
				}
			})

			t.Run("wrong password", func(t *testing.T) {
				h := srv.host("deploy")
				h.Password = "not-it"
				_, err := Dial(testCtx(t), h, baseOpts()...)
				var ae *AuthError
				if !errors.As(err, &ae) || fail.KindOf(err) != fail.Auth {
					t.Fatalf("got %v, want *AuthError", err)
				}
				if strings.Contains(err.Error(), "not-it") || strings.Contains(fail.HintOf(err), "not-it") {
					t.Fatalf("error shows the password: %v", err)
				}
				if ae.User != "deploy" {
					t.Errorf("user %q", ae.User)
				}
			})

			t.Run("password from environment", func(t *testing.T) {
				t.Setenv("DEPLOYLAB_TEST_PASSWORD", labPassword)
				h := srv.host("deploy")
				h.PasswordEnv = "DEPLOYLAB_TEST_PASSWORD"
				c := dialTest(t, h)
				if _, err := c.Run(testCtx(t), "true"); err != nil {
					t.Fatal(err)
				}
				if c.Host().Password != "" {
					t.Error("Host() exposes the password")
				}
			})

			t.Run("prompted once", func(t *testing.T) {
				var asked atomic.Int32
				h := srv.host("deploy")
				c := dialTest(t, h, WithPasswordPrompt(func(ctx context.Context, user, addr string) (string, error) {
					asked.Add(1)
					if user != "deploy" || !strings.HasPrefix(addr, "127.0.0.1:") {
						t.Errorf("prompt for %s@%s", user, addr)
					}
					return labPassword, nil
				}))
				if _, err := c.Run(testCtx(t), "true"); err != nil {
					t.Fatal(err)
				}
				if asked.Load() != 1 {
					t.Errorf("asked %d times", asked.Load())
				}
			})
		})
	}
}

// TestSudoPlumbing logs in as a non-root user name on the in-process server
// (which runs commands as root), so RunSudo goes through the real sudo.
func TestSudoPlumbing(t *testing.T) {
	srv := startTestServer(t, serverConfig{password: labPassword})
	const sudoPW = "sudo-secret-42"

	t.Run("with a sudo password", func(t *testing.T) {
		// A sudo that asks (the real one, run as root here, never does).
		srv := startTestServer(t, serverConfig{password: labPassword, path: askingSudoDir(t, sudoPW)})
		h := srv.host("deploy")
		h.Password, h.SudoPassword = labPassword, sudoPW
		c := dialTest(t, h)
		// cat reads the command's stdin: it must not get the password.
		r, err := c.RunSudo(testCtx(t), "id -u; cat")
		if err != nil {
			t.Fatalf("RunSudo: %v", err)
		}
		if string(r.Stdout) != "0\n" {
			t.Fatalf("stdout %q, want uid 0 and nothing from stdin", r.Stdout)
		}
		recs := srv.recorded()
		last := recs[len(recs)-1]
		if strings.Contains(last.cmd, sudoPW) {
			t.Fatalf("sudo password in the command line: %q", last.cmd)
		}
		if !strings.HasPrefix(last.cmd, "sudo -S -p '' -- sh -c ") {
			t.Errorf("command %q", last.cmd)
		}
		if !bytes.Equal(last.stdin, []byte(sudoPW+"\n")) {
			t.Errorf("stdin %q, want the password line", last.stdin)
		}
		// The command's exit code comes through.
		r, err = c.RunSudo(testCtx(t), "exit 7")
		if err != nil || r.ExitCode != 7 {
			t.Errorf("exit 7: %d %v", r.ExitCode, err)
		}
	})

	t.Run("without a sudo password", func(t *testing.T) {
		h := srv.host("deploy")
		h.Password = labPassword
		c := dialTest(t, h)
		r, err := c.RunSudo(testCtx(t), "id -u")
		if err != nil || string(r.Stdout) != "0\n" {
			t.Fatalf("%q %v", r.Stdout, err)
		}
		recs := srv.recorded()
		if last := recs[len(recs)-1]; !strings.HasPrefix(last.cmd, "sudo -n -- sh -c ") || len(last.stdin) != 0 {
			t.Errorf("command %q stdin %q", last.cmd, last.stdin)
		}
	})

	t.Run("AsRoot upload through sudo install", func(t *testing.T) {
		h := srv.host("deploy")
		h.Password, h.SudoPassword = labPassword, sudoPW
		c := dialTest(t, h)
		dst := filepath.Join(t.TempDir(), "etc", "app.conf")
		changed, err := c.WriteFile(testCtx(t), dst, []byte("port=3000\n"), 0o640, Owner("nobody", "nogroup"))
		if err != nil || !changed {
			t.Fatalf("WriteFile AsRoot: %v %v", changed, err)
		}
		st, err := os.Stat(dst)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o640 || fileOwner(t, dst) != "nobody" {
			t.Errorf("mode %v owner %s", st.Mode().Perm(), fileOwner(t, dst))
		}
		changed, err = c.WriteFile(testCtx(t), dst, []byte("port=3000\n"), 0o640, Owner("nobody", "nogroup"))
		if err != nil || changed {
			t.Fatalf("second WriteFile: changed=%v %v", changed, err)
		}
		for _, rec := range srv.recorded() {
			if strings.Contains(rec.cmd, sudoPW) {
				t.Fatalf("sudo password in a command line: %q", rec.cmd)
			}
		}
		leftovers, _ := filepath.Glob("/tmp/.deploylab-upload-*")
		for _, l := range leftovers {
			if st, err := os.Stat(l); err == nil && time.Since(st.ModTime()) < time.Minute {
				t.Errorf("temporary upload left behind: %s", l)
			}
		}
	})
}

func TestSudoRefusalParsing(t *testing.T) {
	tests := []struct {
		name   string
		code   int
		stderr string
		refuse bool
	}{
		{"password required", 1, "sudo: a password is required\n", true},
		{"wrong password", 1, "Sorry, try again.\nsudo: no password was provided\nsudo: 1 incorrect password attempt\n", true},
		{"not in sudoers", 1, "deploy is not in the sudoers file.\n", true},
		{"not allowed", 1, "Sorry, user deploy may not run sudo on vm01.\n", true},
		{"no sudo", 127, "sh: 1: sudo: not found\n", true},
		{"command failed", 1, "grep: nothing\n", false},
		{"command exit 2", 2, "sudo: a password is required\n", false},
		{"ok", 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sudoRefusal("deploy", "vm01:22", Result{ExitCode: tt.code, Stderr: []byte(tt.stderr)})
			var se *SudoError
			if got := errors.As(err, &se); got != tt.refuse {
				t.Fatalf("refusal = %v (%v), want %v", got, err, tt.refuse)
			}
			if tt.refuse && (fail.KindOf(err) != fail.Auth || fail.HintOf(err) == "") {
				t.Errorf("kind %v hint %q", fail.KindOf(err), fail.HintOf(err))
			}
			if tt.name == "wrong password" && se.Reason != "the sudo password is wrong" {
				t.Errorf("reason %q, want it to say the password is wrong", se.Reason)
			}
		})
	}
}

func TestSudoCommandQuoting(t *testing.T) {
	for _, cmd := range []string{"echo 'a b' \"c\"", "printf '%s\\n' $HOME", "a'b"} {
		line, stdin := sudoCommand(cmd, "")
		if stdin != nil {
			t.Errorf("stdin without password: %q", stdin)
		}
		// Run the inner sh -c part (sudo stripped) and compare with a direct run.
		inner := strings.TrimPrefix(line, "sudo -n -- ")
		l := &Local{}
		got, err1 := l.Run(testCtx(t), inner)
		want, err2 := l.Run(testCtx(t), cmd)
		if err1 != nil || err2 != nil || !bytes.Equal(got.Stdout, want.Stdout) || got.ExitCode != want.ExitCode {
			t.Errorf("%q: quoted %q gives %q/%d, direct %q/%d", cmd, inner, got.Stdout, got.ExitCode, want.Stdout, want.ExitCode)
		}
	}
}

func TestKeepaliveDeadServer(t *testing.T) {
	srv := startTestServer(t, serverConfig{password: labPassword, ignoreAlive: true})
	h := srv.host("deploy")
	h.Password = labPassword
	c := dialTest(t, h, WithKeepalive(50*time.Millisecond, 2))
	deadline := time.Now().Add(10 * time.Second)
	for c.lostErr() == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if c.lostErr() == nil || !strings.Contains(c.lostErr().Error(), "keepalive") {
		t.Fatalf("connection not closed after unanswered keepalives: %v", c.lostErr())
	}
	_, err := c.Run(testCtx(t), "true")
	if fail.KindOf(err) != fail.Unreachable || !strings.Contains(err.Error(), "keepalive") {
		t.Fatalf("Run after keepalive failure: %v", err)
	}
}

// TestCancelSignalsNonRoot: for a non-root login, a cancelled command is
// stopped with an SSH "signal" request (OpenSSH kills the session's process
// group), without the PID-file wrapper used for root.
func TestCancelSignalsNonRoot(t *testing.T) {
	srv := startTestServer(t, serverConfig{password: labPassword})
	h := srv.host("deploy")
	h.Password = labPassword
	c := dialTest(t, h)
	marker := fmt.Sprintf("sleep 63.%d", time.Now().UnixNano()%1000000)
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := c.Run(ctx, marker); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
	waitGone(t, marker)
	recs := srv.recorded()
	if last := recs[len(recs)-1]; last.cmd != marker {
		t.Errorf("command sent as %q, want it unwrapped", last.cmd)
	}
}
