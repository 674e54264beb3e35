package remote

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/deploylab/deploylab/internal/need"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/syncbuf"
)

// env is the test environment built by TestMain: a real OpenSSH sshd on a
// loopback port, with host keys of three types and a set of client keys.
var env struct {
	dir  string // temp root, also $HOME of the test process
	sshd *sshd

	userKey      string // ed25519, unencrypted, authorised
	encKey       string // ed25519, OpenSSH format, passphrase "s3cret", authorised
	encPEMKey    string // RSA, legacy PEM, passphrase "s3cret", authorised (public key only in .pub)
	agentKey     string // ed25519, unencrypted, authorised, meant for the agent
	strangerKey  string // ed25519, NOT authorised
	hostKeys     []string
	authorized   string
	sftpServer   string
	knownHostsOK string // known_hosts with all three host keys of env.sshd
}

const testPassphrase = "s3cret"

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := setupAndRun(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, "remote tests:", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setupAndRun(m *testing.M) (int, error) {
	for _, tool := range []string{"/usr/sbin/sshd", "ssh-keygen", "ssh-agent", "ssh-add", "sudo", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			reason := fmt.Sprintf("%s not found: install the Debian packages openssh-server, openssh-client, sudo and iproute2 (apt-get install openssh-server openssh-client sudo iproute2)", tool)
			if need.Check(reason) {
				return 0, nil
			}
			return 0, errors.New(reason)
		}
	}
	dir, err := os.MkdirTemp("", "deploylab-remote-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	env.dir = dir
	// Isolate from the developer's ~/.ssh (config, known_hosts, id_*) and agent.
	os.Setenv("HOME", dir)
	os.Unsetenv("SSH_AUTH_SOCK")

	for _, s := range []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server"} {
		if _, err := os.Stat(s); err == nil {
			env.sftpServer = s
		}
	}
	if env.sftpServer == "" {
		return 0, fmt.Errorf("sftp-server not found: install openssh-sftp-server")
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return 0, fmt.Errorf("sshd needs /run/sshd: %w", err)
	}

	keys := filepath.Join(dir, "keys")
	os.Mkdir(keys, 0o700)
	gen := func(name string, args ...string) (string, error) {
		p := filepath.Join(keys, name)
		all := append([]string{"-q", "-f", p, "-C", name}, args...)
		if out, err := exec.Command("ssh-keygen", all...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("ssh-keygen %s: %v: %s", name, err, out)
		}
		return p, nil
	}
	type spec struct {
		dst  *string
		name string
		args []string
	}
	for _, s := range []spec{
		{&env.userKey, "user", []string{"-t", "ed25519", "-N", ""}},
		{&env.encKey, "enc", []string{"-t", "ed25519", "-N", testPassphrase}},
		{&env.encPEMKey, "encpem", []string{"-t", "rsa", "-b", "2048", "-m", "PEM", "-N", testPassphrase}},
		{&env.agentKey, "agent", []string{"-t", "ed25519", "-N", ""}},
		{&env.strangerKey, "stranger", []string{"-t", "ed25519", "-N", ""}},
	} {
		p, err := gen(s.name, s.args...)
		if err != nil {
			return 0, err
		}
		*s.dst = p
	}
	for _, t := range []string{"ed25519", "ecdsa", "rsa"} {
		args := []string{"-t", t, "-N", ""}
		if t == "rsa" {
			args = append(args, "-b", "2048")
		}
		p, err := gen("host_"+t, args...)
		if err != nil {
			return 0, err
		}
		env.hostKeys = append(env.hostKeys, p)
	}
	var auth bytes.Buffer
	for _, k := range []string{env.userKey, env.encKey, env.encPEMKey, env.agentKey} {
		b, err := os.ReadFile(k + ".pub")
		if err != nil {
			return 0, err
		}
		auth.Write(b)
	}
	env.authorized = filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(env.authorized, auth.Bytes(), 0o600); err != nil {
		return 0, err
	}

	env.sshd, err = startSSHD(0, env.hostKeys)
	if err != nil {
		return 0, err
	}
	defer env.sshd.stop()

	env.knownHostsOK = filepath.Join(dir, "known_hosts_all")
	var kh bytes.Buffer
	for _, hk := range env.hostKeys {
		kh.WriteString(knownHostsLine(env.sshd.port, hk) + "\n")
	}
	if err := os.WriteFile(env.knownHostsOK, kh.Bytes(), 0o600); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// knownHostsLine is the known_hosts line for host key file hk on port.
func knownHostsLine(port int, hk string) string {
	pub, err := os.ReadFile(hk + ".pub")
	if err != nil {
		panic(err)
	}
	f := strings.Fields(string(pub))
	return fmt.Sprintf("[127.0.0.1]:%d %s %s", port, f[0], f[1])
}

// sshd is a running OpenSSH server.
type sshd struct {
	port    int
	cfgPath string
	cmd     *exec.Cmd
	log     *syncbuf.Buffer
	done    chan struct{}
}

// sshdLogLevel is ERROR, or $DEPLOYLAB_TEST_SSHD_LOG (e.g. DEBUG3) when debugging.
func sshdLogLevel() string {
	if l := os.Getenv("DEPLOYLAB_TEST_SSHD_LOG"); l != "" {
		return l
	}
	return "ERROR"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startSSHD starts sshd on port (0: a free one) with the given host keys and
// waits until it accepts connections.
func startSSHD(port int, hostKeys []string) (*sshd, error) {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return nil, err
			}
		}
		s, err := tryStartSSHD(p, hostKeys)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if port != 0 {
			time.Sleep(200 * time.Millisecond) // the old instance may still hold the port
		}
	}
	return nil, lastErr
}

func tryStartSSHD(port int, hostKeys []string) (*sshd, error) {
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
PidFile none
AuthorizedKeysFile %s
StrictModes no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxSessions 10
MaxStartups 100
# bash sources ~/.bashrc for commands run by sshd unless SHLVL says it is
# nested: keep the machine's rc files (pyenv init, ...) out of the tests.
SetEnv SHLVL=1
LogLevel %s
Subsystem sftp %s
`, port, env.authorized, sshdLogLevel(), env.sftpServer)
	for _, hk := range hostKeys {
		cfg += "HostKey " + hk + "\n"
	}
	cfgPath := filepath.Join(env.dir, fmt.Sprintf("sshd_config_%d_%d", port, time.Now().UnixNano()))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	s := &sshd{port: port, cfgPath: cfgPath, log: &syncbuf.Buffer{}, done: make(chan struct{})}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfgPath)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	// Session processes (setsid children of sshd) may hold the log pipe
	// after sshd is gone: do not wait for them.
	s.cmd.WaitDelay = time.Second
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return nil, fmt.Errorf("sshd exited: %s", s.log.String())
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			// Make sure it is our sshd answering (banner).
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 4)
			_, rerr := c.Read(buf)
			c.Close()
			if rerr == nil && string(buf) == "SSH-" {
				return s, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.stop()
	return nil, fmt.Errorf("sshd did not listen on port %d: %s", port, s.log.String())
}

// stop kills sshd and the per-connection processes it forked (they call
// setsid, so they are found by parentage, not by process group).
func (s *sshd) stop() {
	if s.cmd.Process == nil {
		return
	}
	pid := s.cmd.Process.Pid
	kids := descendants(pid)
	syscall.Kill(pid, syscall.SIGTERM)
	for _, k := range kids {
		syscall.Kill(k, syscall.SIGKILL)
	}
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(pid, syscall.SIGKILL)
		<-s.done
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// testHost is a Host for env.sshd logging in with the unencrypted user key,
// verified against a known_hosts holding all its keys.
func testHost() Host {
	return Host{
		Name:           "test",
		Address:        "127.0.0.1",
		Port:           env.sshd.port,
		User:           currentUser(),
		KeyFiles:       []string{env.userKey},
		KnownHostsFile: env.knownHostsOK,
		Timeout:        20 * time.Second,
	}
}

func currentUser() string { return localUser() }

// baseOpts are Dial options isolating a test from the machine's agent and config.
func baseOpts(extra ...Option) []Option {
	return append([]Option{WithSSHConfig(""), WithAgent("")}, extra...)
}

func dialTest(t *testing.T, h Host, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, h, baseOpts(opts...)...)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
