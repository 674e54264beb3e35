package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"

	"github.com/deploylab/deploylab/internal/fail"
)

func TestKeyAuthAndRun(t *testing.T) {
	c := dialTest(t, testHost())
	ctx := testCtx(t)
	tests := []struct {
		name     string
		cmd      string
		wantOut  string
		wantErr  string
		wantCode int
	}{
		{"ok", "echo hello", "hello\n", "", 0},
		{"stderr and code", "echo out; echo err >&2; exit 3", "out\n", "err\n", 3},
		{"false", "false", "", "", 1},
		{"missing command", "no-such-command-deploylab", "", "", 127},
		{"killed by signal", "kill -KILL $$", "", "", 128 + 9},
		{"shell features", "x=$((6*7)); printf '%s' \"$x\"", "42", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := c.Run(ctx, tt.cmd)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if r.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d (stderr %q)", r.ExitCode, tt.wantCode, r.Stderr)
			}
			if got := string(r.Stdout); got != tt.wantOut {
				t.Errorf("stdout %q, want %q", got, tt.wantOut)
			}
			if tt.wantErr != "" && string(r.Stderr) != tt.wantErr {
				t.Errorf("stderr %q, want %q", r.Stderr, tt.wantErr)
			}
			if (r.Err(tt.cmd) == nil) != (tt.wantCode == 0) {
				t.Errorf("Result.Err = %v for exit code %d", r.Err(tt.cmd), r.ExitCode)
			}
		})
	}
	// The client reports the resolved host without secrets.
	if h := c.Host(); h.Port != env.sshd.port || h.User != currentUser() {
		t.Errorf("Host() = %+v", h)
	}
}

func TestRunSudoAsRoot(t *testing.T) {
	if currentUser() != "root" {
		t.Fatalf("this test logs in as the test process's user, which must be root (got %s)", currentUser())
	}
	c := dialTest(t, testHost())
	r, err := c.RunSudo(testCtx(t), "id -u")
	if err != nil || strings.TrimSpace(string(r.Stdout)) != "0" {
		t.Fatalf("RunSudo(id -u) = %q, %v", r.Stdout, err)
	}
}

func TestHostKeyVerification(t *testing.T) {
	port := env.sshd.port
	edLine := knownHostsLine(port, env.hostKeys[0]) // ed25519 only
	otherKey := filepath.Join(env.dir, "keys", "stranger")

	t.Run("known keys verify", func(t *testing.T) {
		c := dialTest(t, testHost())
		if _, err := c.Run(testCtx(t), "true"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("key type pitfall: only ed25519 known, server offers three types", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(edLine+"\n"), 0o600)
		// Without HostKeyAlgorithms, x/crypto prefers ECDSA and the plain
		// knownhosts callback sees a mismatch: the pitfall is real here.
		cb, err := xknownhosts.New(kh)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ssh.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &ssh.ClientConfig{
			User: currentUser(), HostKeyCallback: cb, Timeout: 10 * time.Second})
		var ke *xknownhosts.KeyError
		if !errors.As(err, &ke) || len(ke.Want) == 0 {
			t.Fatalf("plain x/crypto dial: got %v, want a key mismatch (the pitfall)", err)
		}
		// Ours asks for the known type first.
		h := testHost()
		h.KnownHostsFile = kh
		c := dialTest(t, h)
		if _, err := c.Run(testCtx(t), "true"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("unknown host refused", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		h := testHost()
		h.KnownHostsFile = kh
		_, err := Dial(testCtx(t), h, baseOpts()...)
		var he *HostKeyError
		if !errors.As(err, &he) || he.Problem != HostKeyUnknown {
			t.Fatalf("got %v, want an unknown-host HostKeyError", err)
		}
		if fail.KindOf(err) != fail.Auth || !strings.Contains(fail.HintOf(err), "--accept-new") ||
			!strings.Contains(fail.HintOf(err), "SHA256:") {
			t.Errorf("kind %v hint %q", fail.KindOf(err), fail.HintOf(err))
		}
		if he.Address != fmt.Sprintf("127.0.0.1:%d", port) || he.OfferedFingerprint == "" {
			t.Errorf("fields: %+v", he)
		}
		if _, err := os.Stat(kh); !os.IsNotExist(err) {
			t.Errorf("known_hosts written without AcceptNew: %v", err)
		}
	})

	t.Run("accept new records, then works without it", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "sub", "known_hosts") // directory created too
		h := testHost()
		h.KnownHostsFile = kh
		h.AcceptNew = true
		// Several concurrent first contacts record the host once.
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := Dial(testCtx(t), h, baseOpts()...)
				if err == nil {
					c.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("AcceptNew dial: %v", err)
			}
		}
		data, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], fmt.Sprintf("[127.0.0.1]:%d ", port)) {
			t.Fatalf("known_hosts = %q, want one line for the host", data)
		}
		if st, _ := os.Stat(kh); st.Mode().Perm() != 0o600 {
			t.Errorf("known_hosts mode %v", st.Mode().Perm())
		}
		h.AcceptNew = false
		c := dialTest(t, h)
		if _, err := c.Run(testCtx(t), "true"); err != nil {
			t.Fatal(err)
		}
		// OpenSSH agrees with what we wrote.
		out, err := exec.Command("ssh-keygen", "-F", fmt.Sprintf("[127.0.0.1]:%d", port), "-f", kh).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "found:") {
			t.Errorf("ssh-keygen -F: %v %s", err, out)
		}
	})

	t.Run("append keeps a file without final newline intact", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		other := "[127.0.0.1]:1 " + strings.Join(strings.Fields(mustRead(t, otherKey+".pub"))[:2], " ")
		os.WriteFile(kh, []byte(other), 0o600) // no trailing newline
		h := testHost()
		h.KnownHostsFile, h.AcceptNew = kh, true
		dialTest(t, h)
		lines := strings.Split(strings.TrimSpace(mustRead(t, kh)), "\n")
		if len(lines) != 2 || lines[0] != other {
			t.Fatalf("known_hosts = %q", lines)
		}
	})

	t.Run("changed key refused even with accept new", func(t *testing.T) {
		// A second sshd that is "reinstalled" with another host key on the same port.
		first, err := startSSHD(0, env.hostKeys[:1])
		if err != nil {
			t.Fatal(err)
		}
		kh := filepath.Join(t.TempDir(), "known_hosts")
		h := testHost()
		h.Port, h.KnownHostsFile, h.AcceptNew = first.port, kh, true
		c, err := Dial(testCtx(t), h, baseOpts()...)
		if err != nil {
			first.stop()
			t.Fatalf("first contact: %v", err)
		}
		c.Close()
		first.stop()
		newKey := filepath.Join(t.TempDir(), "host_new")
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", newKey).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v %s", err, out)
		}
		second, err := startSSHD(first.port, []string{newKey})
		if err != nil {
			t.Fatal(err)
		}
		defer second.stop()
		before := mustRead(t, kh)
		_, err = Dial(testCtx(t), h, baseOpts()...)
		var he *HostKeyError
		if !errors.As(err, &he) || he.Problem != HostKeyChanged {
			t.Fatalf("got %v, want a changed-key HostKeyError", err)
		}
		if fail.KindOf(err) != fail.Auth {
			t.Errorf("kind %v", fail.KindOf(err))
		}
		wantHint := fmt.Sprintf("ssh-keygen -R '[127.0.0.1]:%d' -f %s", first.port, kh)
		if !strings.Contains(fail.HintOf(err), wantHint) {
			t.Errorf("hint %q does not contain %q", fail.HintOf(err), wantHint)
		}
		if len(he.Known) != 1 || he.Known[0].Line != 1 || he.Known[0].File != kh {
			t.Errorf("known keys %+v", he.Known)
		}
		if mustRead(t, kh) != before {
			t.Errorf("known_hosts modified on a changed key")
		}
	})

	t.Run("server lost the known key type: changed, not a negotiation error", func(t *testing.T) {
		// known_hosts has an RSA key for the port; the server only has ed25519.
		srv, err := startSSHD(0, env.hostKeys[:1])
		if err != nil {
			t.Fatal(err)
		}
		defer srv.stop()
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte(knownHostsLine(srv.port, env.hostKeys[2])+"\n"), 0o600)
		h := testHost()
		h.Port, h.KnownHostsFile = srv.port, kh
		_, err = Dial(testCtx(t), h, baseOpts()...)
		var he *HostKeyError
		if !errors.As(err, &he) || he.Problem != HostKeyChanged {
			t.Fatalf("got %v, want a changed-key HostKeyError", err)
		}
	})
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAuthFailures(t *testing.T) {
	t.Run("unauthorised key", func(t *testing.T) {
		h := testHost()
		h.KeyFiles = []string{env.strangerKey}
		_, err := Dial(testCtx(t), h, baseOpts()...)
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("got %v, want *AuthError", err)
		}
		if fail.KindOf(err) != fail.Auth || fail.HintOf(err) == "" {
			t.Errorf("kind %v hint %q", fail.KindOf(err), fail.HintOf(err))
		}
		if ae.User != currentUser() || len(ae.Keys) != 1 || ae.Methods[0] != "publickey" {
			t.Errorf("fields %+v", ae)
		}
	})
	t.Run("missing key file is a usage error", func(t *testing.T) {
		h := testHost()
		h.KeyFiles = []string{filepath.Join(env.dir, "nope")}
		_, err := Dial(testCtx(t), h, baseOpts()...)
		if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "nope") {
			t.Fatalf("got %v (kind %v)", err, fail.KindOf(err))
		}
	})
	t.Run("no method at all", func(t *testing.T) {
		h := testHost()
		h.KeyFiles = []string{env.encKey} // encrypted, no passphrase callback: skipped
		_, err := Dial(testCtx(t), h, baseOpts()...)
		var ae *AuthError
		if !errors.As(err, &ae) {
			t.Fatalf("got %v, want *AuthError", err)
		}
	})
}

func TestEncryptedKeys(t *testing.T) {
	for _, key := range []string{env.encKey, env.encPEMKey} {
		t.Run(filepath.Base(key), func(t *testing.T) {
			var mu sync.Mutex
			var asked []string
			prompt := func(pass string) PassphraseFunc {
				return func(ctx context.Context, file string) ([]byte, error) {
					mu.Lock()
					asked = append(asked, file)
					mu.Unlock()
					return []byte(pass), nil
				}
			}
			h := testHost()
			h.KeyFiles = []string{key}
			c := dialTest(t, h, WithPassphrase(prompt(testPassphrase)))
			if _, err := c.Run(testCtx(t), "true"); err != nil {
				t.Fatal(err)
			}
			if len(asked) != 1 || asked[0] != key {
				t.Errorf("passphrase asked for %v, want once for %s", asked, key)
			}

			asked = nil
			_, err := Dial(testCtx(t), h, baseOpts(WithPassphrase(prompt("wrong")))...)
			var ae *AuthError
			if !errors.As(err, &ae) || !strings.Contains(err.Error(), "incorrect passphrase") {
				t.Fatalf("wrong passphrase: got %v", err)
			}
			if len(asked) != passphraseTries {
				t.Errorf("asked %d times, want %d", len(asked), passphraseTries)
			}
			if strings.Contains(err.Error(), "wrong") {
				t.Errorf("error shows the passphrase: %v", err)
			}
		})
	}
	t.Run("cancelled prompt", func(t *testing.T) {
		h := testHost()
		h.KeyFiles = []string{env.encKey}
		ctx, cancel := context.WithCancel(testCtx(t))
		start := time.Now()
		_, err := Dial(ctx, h, baseOpts(WithPassphrase(func(ctx context.Context, _ string) ([]byte, error) {
			cancel()
			<-ctx.Done()
			return nil, ctx.Err()
		}))...)
		if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Interrupted {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s", d)
		}
	})
}

// startAgent runs a real ssh-agent on a temp socket holding key.
func startAgent(t *testing.T, key string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The socket file appears at bind(2), before listen(2): retry ssh-add.
	deadline := time.Now().Add(10 * time.Second)
	for {
		add := exec.Command("ssh-add", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		out, err := add.CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh-add: %v %s", err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return sock
}

func TestAgentAuth(t *testing.T) {
	sock := startAgent(t, env.agentKey)
	h := testHost()
	h.KeyFiles = nil // $HOME/.ssh is empty: the agent is the only way in
	c, err := Dial(testCtx(t), h, WithSSHConfig(""), WithAgent(sock))
	if err != nil {
		t.Fatalf("agent dial: %v", err)
	}
	defer c.Close()
	if _, err := c.Run(testCtx(t), "true"); err != nil {
		t.Fatal(err)
	}

	// The agent's key is offered before an encrypted file's, whose
	// passphrase is then never asked.
	h.KeyFiles = []string{env.encKey}
	asked := 0
	c2, err := Dial(testCtx(t), h, WithSSHConfig(""), WithAgent(sock), WithPassphrase(func(context.Context, string) ([]byte, error) {
		asked++
		return []byte(testPassphrase), nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if asked != 0 {
		t.Errorf("passphrase asked %d times although the agent's key was accepted", asked)
	}

	// $SSH_AUTH_SOCK is the default.
	t.Setenv("SSH_AUTH_SOCK", sock)
	h.KeyFiles = nil
	c3, err := Dial(testCtx(t), h, WithSSHConfig(""))
	if err != nil {
		t.Fatalf("dial with SSH_AUTH_SOCK: %v", err)
	}
	c3.Close()

	// An agent socket that does not answer is not fatal when a key works.
	h.KeyFiles = []string{env.userKey}
	c4, err := Dial(testCtx(t), h, WithSSHConfig(""), WithAgent(filepath.Join(env.dir, "no-agent.sock")))
	if err != nil {
		t.Fatalf("dial with a dead agent socket: %v", err)
	}
	c4.Close()
}

func TestSSHConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`Host vm-*
  HostName 127.0.0.1
  Port %d
  User %s
  IdentityFile %s

Host *
  User nobody-default
`, env.sshd.port, currentUser(), env.userKey)), 0o600)

	h, err := ResolveHost(Host{Name: "vm-01"}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := Host{Name: "vm-01", Address: "127.0.0.1", Port: env.sshd.port, User: currentUser(), KeyFiles: []string{env.userKey}}
	if h.Address != want.Address || h.Port != want.Port || h.User != want.User || strings.Join(h.KeyFiles, ",") != env.userKey {
		t.Fatalf("resolved %+v, want %+v", h, want)
	}
	// Explicit fields win.
	h2, err := ResolveHost(Host{Name: "vm-01", Port: 2222, User: "alice"}, cfg)
	if err != nil || h2.Port != 2222 || h2.User != "alice" || h2.Address != "127.0.0.1" {
		t.Fatalf("explicit fields: %+v %v", h2, err)
	}
	// Other hosts only get the catch-all.
	h3, _ := ResolveHost(Host{Name: "other"}, cfg)
	if h3.Address != "other" || h3.Port != 22 || h3.User != "nobody-default" {
		t.Fatalf("catch-all: %+v", h3)
	}
	// And Dial uses it.
	c, err := Dial(testCtx(t), Host{Name: "vm-01", KnownHostsFile: env.knownHostsOK}, WithSSHConfig(cfg), WithAgent(""))
	if err != nil {
		t.Fatalf("dial through ssh config: %v", err)
	}
	c.Close()

	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("Host x\n  Port notanumber\n"), 0o600)
	if _, err := ResolveHost(Host{Name: "x"}, bad); fail.KindOf(err) != fail.Usage {
		t.Errorf("bad port: %v", err)
	}
}

func TestPasswordEnvMissing(t *testing.T) {
	_, err := ResolveHost(Host{Name: "x", PasswordEnv: "DEPLOYLAB_TEST_NO_SUCH_VAR"}, "")
	if fail.KindOf(err) != fail.Usage || !strings.Contains(err.Error(), "DEPLOYLAB_TEST_NO_SUCH_VAR") {
		t.Fatalf("got %v", err)
	}
}

func TestCancelAndTimeout(t *testing.T) {
	c := dialTest(t, testHost())
	timeout := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 300*time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		cmd  string // %s is the sleep's argument
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"timeout", "sleep %s", timeout, context.DeadlineExceeded},
		{"cancel", "sleep %s", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"compound command", "echo start; (sleep %s; echo never) & wait; echo end", timeout, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := fmt.Sprintf("61.%d", time.Now().UnixNano()%1000000)
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.Run(ctx, fmt.Sprintf(tc.cmd, marker))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			d := time.Since(start)
			if d > 10*time.Second {
				t.Fatalf("cancelled Run took %s", d)
			}
			t.Logf("cancelled Run returned after %s", d.Round(time.Millisecond))
			// The remote sleep is gone (sshd runs on this machine).
			if os.Getenv("DEPLOYLAB_TEST_SSHD_LOG") != "" {
				time.Sleep(time.Second)
				t.Log(env.sshd.log.String())
			}
			waitGone(t, "sleep "+marker)
			// The connection is still good and the session slot was released.
			for range DefaultMaxSessions + 2 {
				if r, err := c.Run(testCtx(t), "echo ok"); err != nil || string(r.Stdout) != "ok\n" {
					t.Fatalf("after cancel: %q %v", r.Stdout, err)
				}
			}
		})
	}
}

// waitGone waits until no process has cmdline pattern.
func waitGone(t *testing.T, pattern string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, _ := exec.Command("pgrep", "-f", "^"+pattern+"$").Output()
		if len(strings.TrimSpace(string(out))) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %q still running: %s", pattern, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestConcurrentRuns(t *testing.T) {
	c := dialTest(t, testHost())
	const n = 30
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Run(testCtx(t), fmt.Sprintf("sleep 0.3; echo %d", i))
			if err == nil && string(r.Stdout) != fmt.Sprintf("%d\n", i) {
				err = fmt.Errorf("stdout %q", r.Stdout)
			}
			errs[i] = err
		}()
	}
	// An upload at the same time: the SFTP session counts against sshd's 10 too.
	f := filepath.Join(t.TempDir(), "concurrent")
	if _, err := c.WriteFile(testCtx(t), f, []byte("x"), 0o644); err != nil {
		t.Errorf("WriteFile during runs: %v", err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("run %d: %v", i, err)
		}
	}
	if m := c.maxInflight.Load(); m > DefaultMaxSessions || m < 2 {
		t.Errorf("max concurrent sessions %d, want 2..%d", m, DefaultMaxSessions)
	}

	t.Logf("max concurrent sessions %d, refused opens retried %d times", c.maxInflight.Load(), c.openRetries.Load())

	// Why the bound exists: sshd refuses the 11th session on a connection.
	c2 := dialTest(t, testHost())
	var opened int
	for range 11 {
		s, err := c2.conn.NewSession()
		if err != nil {
			break
		}
		defer s.Close()
		opened++
	}
	if opened != 10 {
		t.Errorf("sshd accepted %d sessions on one connection, want exactly 10 (MaxSessions)", opened)
	}
}

func TestUnreachable(t *testing.T) {
	port, err := freePort() // nothing listens there now
	if err != nil {
		t.Fatal(err)
	}
	h := testHost()
	h.Port = port
	start := time.Now()
	_, err = Dial(testCtx(t), h, baseOpts()...)
	if fail.KindOf(err) != fail.Unreachable || !strings.Contains(err.Error(), "127.0.0.1:"+strconv.Itoa(port)) {
		t.Fatalf("closed port: got %v (kind %v)", err, fail.KindOf(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed port took %s", d)
	}

	// A port that accepts but never speaks SSH: the handshake times out.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()
	h.Port = ln.Addr().(*net.TCPAddr).Port
	h.Timeout = 300 * time.Millisecond
	start = time.Now()
	_, err = Dial(testCtx(t), h, baseOpts()...)
	if fail.KindOf(err) != fail.Unreachable || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("silent port: got %v (kind %v)", err, fail.KindOf(err))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("silent port took %s", d)
	}

	// Ctrl-C during the handshake returns at once.
	h.Timeout = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start = time.Now()
	_, err = Dial(ctx, h, baseOpts()...)
	if fail.KindOf(err) != fail.Interrupted {
		t.Fatalf("cancelled handshake: got %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled handshake took %s", d)
	}
}

func TestKeepaliveRealSSHD(t *testing.T) {
	// A generous window (2s) for the answer: the machine may be loaded.
	c := dialTest(t, testHost(), WithKeepalive(200*time.Millisecond, 10))
	time.Sleep(1200 * time.Millisecond) // ~6 keepalives, answered by sshd
	if r, err := c.Run(testCtx(t), "echo alive"); err != nil || string(r.Stdout) != "alive\n" {
		t.Fatalf("after keepalives: %q %v", r.Stdout, err)
	}
	if c.lostErr() != nil {
		t.Fatalf("connection marked lost: %v", c.lostErr())
	}
}

func TestClosedClient(t *testing.T) {
	c := dialTest(t, testHost())
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Run(testCtx(t), "true"); err == nil {
		t.Fatal("Run on a closed client succeeded")
	}
}

func TestConnectionLost(t *testing.T) {
	srv, err := startSSHD(0, env.hostKeys)
	if err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	h := testHost()
	h.Port, h.KnownHostsFile, h.AcceptNew = srv.port, kh, true
	c := dialTest(t, h)
	ctx := testCtx(t)
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, "sleep 30")
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	srv.stop() // kills sshd and its session processes
	select {
	case err := <-done:
		if fail.KindOf(err) != fail.Unreachable {
			t.Fatalf("run on a dead connection: %v (kind %v)", err, fail.KindOf(err))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the server died")
	}
	if _, err := c.Run(ctx, "true"); fail.KindOf(err) != fail.Unreachable {
		t.Fatalf("next run: %v", err)
	}
}
