package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/deploylab/deploylab/internal/safetext"
)

// Result is what a command printed and how it exited. A non-zero ExitCode is
// not an error of Run: errors are transport failures.
type Result struct {
	// Stdout and Stderr are what the command printed, at most MaxOutput and
	// MaxStderr bytes; the counts of the bytes dropped after them follow.
	Stdout, Stderr               []byte
	StdoutDropped, StderrDropped int64
	// ExitCode is the command's exit status; 128+N when killed by signal N
	// (as a shell reports it).
	ExitCode int
}

// Truncated reports whether output was dropped (Run then returns an
// *OutputError).
func (r Result) Truncated() bool { return r.StdoutDropped > 0 || r.StderrDropped > 0 }

// Err returns nil for exit code 0, else an *ExitError for cmd.
func (r Result) Err(cmd string) error {
	if r.ExitCode == 0 {
		return nil
	}
	return &ExitError{Command: cmd, Result: r}
}

// ExitError is a command that exited non-zero, for callers that want one.
type ExitError struct {
	Command string
	Result  Result
}

func (e *ExitError) Error() string {
	msg := strings.TrimSpace(string(e.Result.Stderr))
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:] // the last line is usually the one that says why
	}
	msg = safetext.Line(msg) // the host's words
	if msg == "" {
		return fmt.Sprintf("%s: exit status %d", shortCmd(e.Command), e.Result.ExitCode)
	}
	return fmt.Sprintf("%s: exit status %d: %s", shortCmd(e.Command), e.Result.ExitCode, msg)
}

func shortCmd(cmd string) string {
	cmd = strings.TrimSpace(cmd)
	if i := strings.IndexByte(cmd, '\n'); i >= 0 {
		cmd = cmd[:i] + " ..."
	}
	if len(cmd) > 80 {
		cmd = cmd[:77] + "..."
	}
	return fmt.Sprintf("%q", cmd)
}

// Option configures Dial.
type Option func(*options)

type options struct {
	keys         *keyring
	password     PasswordFunc
	sudoPassword PasswordFunc
	sshConfig    string
	agentSocket  string
	keepalive    time.Duration
	keepaliveMax int
	maxSessions  int
	secrets      *secretLog
	dial         func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults of the options.
const (
	DefaultKeepalive    = 15 * time.Second
	DefaultKeepaliveMax = 3
	// DefaultMaxSessions stays under sshd's MaxSessions (10), leaving one
	// session for SFTP.
	DefaultMaxSessions = 8
)

func defaultOptions() *options {
	var d net.Dialer
	return &options{
		sshConfig:    DefaultSSHConfig(),
		agentSocket:  os.Getenv("SSH_AUTH_SOCK"),
		keepalive:    DefaultKeepalive,
		keepaliveMax: DefaultKeepaliveMax,
		maxSessions:  DefaultMaxSessions,
		dial:         d.DialContext,
	}
}

// WithPassphrase sets the function asked for an encrypted key's passphrase
// (see TerminalPassphrase). Without it, encrypted key files are skipped.
// Every Dial given the same Option shares the keys it decrypted: a key's
// passphrase is asked once per Option however many hosts use it.
func WithPassphrase(f PassphraseFunc) Option {
	if f == nil {
		return func(o *options) { o.keys = nil }
	}
	k := newKeyring(f)
	return func(o *options) { o.keys = k }
}

// WithPasswordPrompt sets the function asked for the login password when the
// server wants one and Host.Password is empty (see TerminalPassword).
func WithPasswordPrompt(f PasswordFunc) Option { return func(o *options) { o.password = f } }

// WithSudoPasswordPrompt sets the function asked for the sudo password
// when a RunSudo finds that sudo wants one and Host.SudoPassword is empty:
// once per client, checked with sudo before the command runs (a wrong one
// is a *SudoError). The terminal's TerminalPassword fits.
func WithSudoPasswordPrompt(f PasswordFunc) Option { return func(o *options) { o.sudoPassword = f } }

// WithSecretWarnings calls warn (once per secret) when a password that came
// from the configuration (Host.Password, Host.SudoPassword: a class-wide
// environment variable, say) is sent to a second host: whoever runs one of
// those hosts can read it there. Every Dial given the same Option counts
// together.
func WithSecretWarnings(warn func(msg string)) Option {
	l := &secretLog{warn: warn, hosts: map[[32]byte][]string{}}
	return func(o *options) { o.secrets = l }
}

// WithSSHConfig reads the ssh client configuration from path instead of
// ~/.ssh/config; "" reads none.
func WithSSHConfig(path string) Option { return func(o *options) { o.sshConfig = path } }

// WithAgent uses the ssh-agent listening on socket instead of $SSH_AUTH_SOCK;
// "" uses no agent.
func WithAgent(socket string) Option { return func(o *options) { o.agentSocket = socket } }

// WithKeepalive sends keepalive@openssh.com every interval and closes the
// connection when no reply came within max intervals; interval 0 disables.
func WithKeepalive(interval time.Duration, max int) Option {
	return func(o *options) {
		o.keepalive = interval
		if max < 1 {
			max = 1
		}
		o.keepaliveMax = max
	}
}

// WithMaxSessions bounds the concurrent commands on the connection (default
// 8: sshd allows 10 sessions per connection and SFTP takes one).
func WithMaxSessions(n int) Option {
	return func(o *options) {
		if n >= 1 {
			o.maxSessions = n
		}
	}
}

// WithDialer replaces the TCP dialer (for a jump host or a network namespace).
func WithDialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) Option {
	return func(o *options) { o.dial = dial }
}

// Client is one SSH connection to a host, shared by every task on it.
// It is safe for concurrent use.
type Client struct {
	host Host
	addr string
	conn *ssh.Client
	sem  chan struct{}
	// out bounds the output kept for the commands running at once.
	out *outputBudget

	done      chan struct{}
	closeOnce sync.Once
	lostMu    sync.Mutex
	lost      error

	sftpMu sync.Mutex
	sftp   *sftp.Client

	inflight, maxInflight atomic.Int64
	openRetries           atomic.Int64

	// sudoMu guards sudoUse and sudoChecked (sudoPassword's work).
	sudoMu      sync.Mutex
	sudoPrompt  PasswordFunc
	sudoChecked bool
	sudoUse     string // the sudo password sudo asked for, "" for sudo -n
	secrets     *secretLog
}

// handshakeTimer closes nothing itself: it holds the connection's deadline
// and lifts it while a prompt waits for the user.
type handshakeTimer struct {
	conn    net.Conn
	timeout time.Duration
}

func (t *handshakeTimer) pause()  { t.conn.SetDeadline(time.Time{}) }
func (t *handshakeTimer) resume() { t.conn.SetDeadline(time.Now().Add(t.timeout)) }

// Dial connects to h, verifies its host key and authenticates. The context
// bounds the whole dial (and Host.Timeout the connect and the handshake); it
// does not bound the returned client's life.
func Dial(ctx context.Context, h Host, opts ...Option) (*Client, error) {
	o := defaultOptions()
	for _, opt := range opts {
		opt(o)
	}
	h, err := ResolveHost(h, o.sshConfig)
	if err != nil {
		return nil, err
	}
	addr := h.addr()
	checker, err := newHostKeyChecker(h)
	if err != nil {
		return nil, err
	}

	dctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	conn, err := o.dial(dctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connect to %s: %w", addr, ctx.Err())
		}
		if dctx.Err() != nil {
			err = fmt.Errorf("no answer in %s", h.Timeout)
		}
		return nil, unreachable(addr, err)
	}
	timer := &handshakeTimer{conn: conn, timeout: h.Timeout}
	timer.resume()

	setup, err := buildAuth(ctx, h, o, timer)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer setup.close()

	cfg := &ssh.ClientConfig{
		User:              h.User,
		Auth:              setup.methods,
		HostKeyCallback:   checker.callback,
		HostKeyAlgorithms: checker.algorithms(addr),
	}
	type handshake struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	ch := make(chan handshake, 1)
	go func() {
		c, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
		ch <- handshake{c, chans, reqs, err}
	}()
	var hs handshake
	select {
	case hs = <-ch:
	case <-ctx.Done():
		conn.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, ctx.Err())
	}
	if hs.err != nil {
		conn.Close()
		return nil, classifyHandshake(ctx, h, addr, checker, setup, hs.err)
	}
	conn.SetDeadline(time.Time{})

	c := &Client{
		host:       h,
		addr:       addr,
		sudoPrompt: o.sudoPassword,
		secrets:    o.secrets,
		conn:       ssh.NewClient(hs.c, hs.chans, hs.reqs),
		sem:        make(chan struct{}, o.maxSessions),
		out:        newOutputBudget(HostOutputBudget),
		done:       make(chan struct{}),
	}
	if o.keepalive > 0 {
		go c.keepalive(o.keepalive, o.keepaliveMax)
	}
	go func() {
		// Notice a connection that died on its own.
		err := c.conn.Wait()
		select {
		case <-c.done:
		default:
			if err == nil {
				err = errors.New("connection closed by the host")
			}
			c.setLost(err)
		}
	}()
	return c, nil
}

func classifyHandshake(ctx context.Context, h Host, addr string, checker *hostKeyChecker, setup *authSetup, err error) error {
	verified, herr := checker.state()
	if herr != nil {
		return hostKeyFail(herr)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("connect to %s: %w", addr, ctx.Err())
	}
	if signErr := setup.getSignErr(); signErr != nil {
		if errors.Is(signErr, context.Canceled) || errors.Is(signErr, context.DeadlineExceeded) {
			return fmt.Errorf("connect to %s: %w", addr, signErr)
		}
		return authFail(&AuthError{User: h.User, Address: addr, Methods: setup.names, Keys: setup.keys, Err: signErr})
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return unreachable(addr, fmt.Errorf("ssh handshake timed out after %s", h.Timeout))
	}
	if !verified {
		// Failed before the host was even identified: not an ssh server,
		// or it dropped us (MaxStartups, a firewall, a crash).
		return unreachable(addr, fmt.Errorf("ssh handshake: %w", err))
	}
	return authFail(&AuthError{User: h.User, Address: addr, Methods: setup.names, Keys: setup.keys,
		Err: errors.New(strings.TrimPrefix(err.Error(), "ssh: handshake failed: "))})
}

// Host is the resolved host this client is connected to.
func (c *Client) Host() Host {
	c.sudoMu.Lock()
	h := c.host
	c.sudoMu.Unlock()
	h.Password, h.SudoPassword = "", ""
	return h
}

// Address is the host:port dialled.
func (c *Client) Address() string { return c.addr }

func (c *Client) setLost(err error) {
	c.lostMu.Lock()
	if c.lost == nil {
		c.lost = err
	}
	c.lostMu.Unlock()
}

func (c *Client) lostErr() error {
	c.lostMu.Lock()
	defer c.lostMu.Unlock()
	return c.lost
}

func (c *Client) keepalive(interval time.Duration, max int) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		replied := make(chan error, 1)
		go func() {
			// OpenSSH answers with a failure message: any answer is a reply.
			_, _, err := c.conn.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		wait := time.NewTimer(interval * time.Duration(max))
		select {
		case <-c.done:
			wait.Stop()
			return
		case err := <-replied:
			wait.Stop()
			if err != nil {
				c.setLost(fmt.Errorf("keepalive: %w", err))
				c.conn.Close()
				return
			}
		case <-wait.C:
			c.setLost(fmt.Errorf("no keepalive reply in %s", interval*time.Duration(max)))
			c.conn.Close()
			return
		}
	}
}

// transportErr classifies an error from the connection.
func (c *Client) transportErr(what string, err error) error {
	select {
	case <-c.done:
		return fmt.Errorf("%s on %s: client is closed", what, c.addr)
	default:
	}
	if lost := c.lostErr(); lost != nil {
		return unreachable(c.addr, fmt.Errorf("%s: connection lost: %w", what, lost))
	}
	return unreachable(c.addr, fmt.Errorf("%s: %w", what, err))
}

func (c *Client) acquire(ctx context.Context) (func(), error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.done:
		return nil, fmt.Errorf("run on %s: client is closed", c.addr)
	}
	n := c.inflight.Add(1)
	for {
		m := c.maxInflight.Load()
		if n <= m || c.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	return func() {
		c.inflight.Add(-1)
		<-c.sem
	}, nil
}

// Run runs cmd through the remote user's shell and returns its output and
// exit code. Cancelling ctx signals the command (TERM), closes the session
// and returns ctx's error at once.
func (c *Client) Run(ctx context.Context, cmd string) (Result, error) {
	return c.run(ctx, cmd, nil)
}

// cancelGrace is how long a cancelled Run waits for the session to wind down
// before returning anyway.
const cancelGrace = 2 * time.Second

func (c *Client) run(ctx context.Context, cmd string, stdin []byte) (Result, error) {
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("run %s: %w", shortCmd(cmd), err)
	}
	release, err := c.acquire(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("run %s: %w", shortCmd(cmd), err)
	}
	defer release()
	sess, err := c.openSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer sess.Close()
	out := newCapture(c.out)
	sess.Stdout, sess.Stderr = out.stdout, out.stderr
	if stdin != nil {
		sess.Stdin = bytes.NewReader(stdin)
	}
	line, marker := cmd, ""
	if c.host.User == "root" {
		line, marker = markCommand(cmd)
	}
	// A host may never answer the exec request: wait for it with ctx.
	started := make(chan error, 1)
	go func() { started <- sess.Start(line) }()
	select {
	case err := <-started:
		if err != nil {
			return Result{}, c.transportErr("start command", err)
		}
	case <-ctx.Done():
		go sess.Close()
		return Result{ExitCode: -1}, fmt.Errorf("run %s: %w", shortCmd(cmd), ctx.Err())
	case <-c.done:
		return Result{ExitCode: -1}, fmt.Errorf("run %s on %s: client is closed", shortCmd(cmd), c.addr)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		return c.finish(cmd, out, err)
	case <-ctx.Done():
		// Signal and close in the background: on a host that stopped
		// reading, even sending them may block.
		go func() {
			sess.Signal(ssh.SIGTERM)
			sess.Close()
			if marker != "" {
				select {
				case err := <-done: // it ended anyway
					done <- err
				default:
					c.killMarked(marker)
				}
			}
		}()
		select {
		case <-done:
			return out.result(Result{ExitCode: -1}), fmt.Errorf("run %s: %w", shortCmd(cmd), ctx.Err())
		case <-time.After(cancelGrace):
			// The session may still write: its output stays with it.
			return Result{ExitCode: -1}, fmt.Errorf("run %s: %w", shortCmd(cmd), ctx.Err())
		}
	}
}

// openSession opens a session, retrying briefly when sshd refuses it: its
// MaxSessions count still includes sessions whose close it has received but
// not yet processed, so a slot freed by the semaphore may not be free there.
func (c *Client) openSession(ctx context.Context) (*ssh.Session, error) {
	delay := 10 * time.Millisecond
	deadline := time.Now().Add(openRetryFor)
	for {
		sess, err := c.newSession(ctx)
		if err == nil {
			return sess, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var oe *ssh.OpenChannelError
		if !errors.As(err, &oe) || time.Now().After(deadline) {
			return nil, c.transportErr("open session", err)
		}
		c.openRetries.Add(1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, c.transportErr("open session", err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 200*time.Millisecond)
	}
}

// newSession opens a session, or gives up when ctx ends: a host may never
// answer the channel open. A session that opens after that is closed.
func (c *Client) newSession(ctx context.Context) (*ssh.Session, error) {
	type opened struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := c.conn.NewSession()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
	case <-c.done:
	}
	go func() {
		if o := <-ch; o.s != nil {
			o.s.Close()
		}
	}()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errors.New("client is closed")
}

// openRetryFor bounds the retries of a refused session.
const openRetryFor = 5 * time.Second

// OpenSSH does not deliver "signal" requests to sessions of root logins (they
// run without privilege separation). So for root, the command runs with a
// unique marker in its environment, inherited by every process it starts;
// a cancelled command's processes are found by it (/proc/*/environ) from a
// second session and killed. (The marker cannot be in the command line: the
// shell execs the last command of a -c string.)
func markCommand(cmd string) (line, marker string) {
	marker = randomSuffix()
	return "export DEPLOYLAB_RUN=" + marker + "\n" + cmd, marker
}

// killGrace bounds the best-effort kill of a cancelled root command.
const killGrace = 4 * time.Second

// killMarked TERMs the processes carrying marker (waiting up to 2s for the
// command to have started), TERMs any it forked meanwhile, and KILLs what is
// left two seconds later (in the background on the host). Best effort.
func (c *Client) killMarked(marker string) {
	ctx, cancel := context.WithTimeout(context.Background(), killGrace)
	defer cancel()
	sess, err := c.newSession(ctx)
	if err != nil {
		return
	}
	defer sess.Close()
	script := fmt.Sprintf(`m=%s
find_pids() { grep -lzx "DEPLOYLAB_RUN=$m" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3; }
i=0
while :; do
  p=$(find_pids)
  [ -n "$p" ] && break
  i=$((i+1)); [ $i -ge 20 ] && exit 0
  sleep 0.1
done
kill -TERM $p 2>/dev/null
sleep 0.2
p=$(find_pids); [ -n "$p" ] && kill -TERM $p 2>/dev/null
( sleep 2; p=$(find_pids); [ -n "$p" ] && kill -KILL $p ) </dev/null >/dev/null 2>&1 &
exit 0`, marker)
	done := make(chan error, 1)
	go func() { done <- sess.Run(script) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (c *Client) finish(cmd string, out capture, err error) (Result, error) {
	r := out.result(Result{})
	if err == nil {
		return r, truncated(cmd, r)
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		r.ExitCode = ee.ExitStatus()
		if sig := ee.Signal(); sig != "" {
			r.ExitCode = 128 + signalNumber(sig)
		}
		return r, truncated(cmd, r)
	}
	r.ExitCode = -1
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return r, c.transportErr(fmt.Sprintf("run %s", shortCmd(cmd)), errors.New("command ended without an exit status"))
	}
	return r, c.transportErr(fmt.Sprintf("run %s", shortCmd(cmd)), err)
}

func signalNumber(sig string) int {
	n := map[string]int{"HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "ABRT": 6, "FPE": 8, "KILL": 9, "USR1": 10,
		"SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15}[sig]
	return n
}

// RunSudo runs cmd as root: directly when the user is root, otherwise with
// sudo, fed the sudo password on stdin when one is configured (sudo -S, the
// command itself gets /dev/null as stdin), sudo -n otherwise. When sudo
// refuses, it returns a *SudoError (fail.Auth) along with the Result.
func (c *Client) RunSudo(ctx context.Context, cmd string) (Result, error) {
	if c.host.User == "root" {
		return c.Run(ctx, cmd)
	}
	pw, err := c.sudoPassword(ctx)
	if err != nil {
		return Result{}, err
	}
	line, stdin := sudoCommand(cmd, pw)
	r, err := c.run(ctx, line, stdin)
	if err != nil {
		return r, err
	}
	return r, sudoRefusal(c.host.User, c.addr, r)
}

// sudoPassword returns the sudo password to feed sudo, "" for sudo -n. The
// first time, it asks sudo whether it wants a password at all (sudo -n
// true): a configured password (Host.SudoPassword) is sent only to a host
// whose sudo asks for one, else (with WithSudoPasswordPrompt) the prompt's
// answer is, once sudo has accepted it.
func (c *Client) sudoPassword(ctx context.Context) (string, error) {
	c.sudoMu.Lock()
	defer c.sudoMu.Unlock()
	if c.sudoChecked {
		return c.sudoUse, nil
	}
	if c.host.SudoPassword == "" && c.sudoPrompt == nil {
		c.sudoChecked = true // sudo -n: nothing to send anyway
		return "", nil
	}
	r, err := c.run(ctx, "sudo -n true", nil)
	if err != nil {
		return "", err
	}
	var se *SudoError
	if r.ExitCode == 0 || !errors.As(sudoRefusal(c.host.User, c.addr, r), &se) || !strings.Contains(se.Reason, "password") {
		// No password needed, or sudo refuses for another reason the
		// command itself will report.
		c.sudoChecked = true
		return "", nil
	}
	pw, configured := c.host.SudoPassword, true
	if pw == "" {
		configured = false
		if pw, err = c.sudoPrompt(ctx, c.host.User, c.addr); err != nil {
			return "", err
		}
	}
	if configured {
		c.secrets.sent("sudo password", pw, c.addr)
	}
	line, stdin := sudoCommand("true", pw)
	if r, err = c.run(ctx, line, stdin); err != nil {
		return "", err
	}
	if err := sudoRefusal(c.host.User, c.addr, r); err != nil {
		return "", err
	}
	if r.ExitCode != 0 {
		return "", fmt.Errorf("sudo true on %s: exit status %d", c.addr, r.ExitCode)
	}
	c.sudoUse, c.sudoChecked = pw, true
	return pw, nil
}

// Close closes the connection; commands running on it fail.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		close(c.done)
		c.sftpMu.Lock()
		if c.sftp != nil {
			go c.sftp.Close() // the connection's close below ends it anyway
			c.sftp = nil
		}
		c.sftpMu.Unlock()
		err = c.conn.Close()
		if err != nil && (errors.Is(err, net.ErrClosed) || c.lostErr() != nil) {
			err = nil
		}
	})
	return err
}

// sftpClient returns the connection's SFTP client, starting it on first
// use; ctx bounds the start (a host may never answer the subsystem).
func (c *Client) sftpClient(ctx context.Context) (*sftp.Client, error) {
	c.sftpMu.Lock()
	defer c.sftpMu.Unlock()
	select {
	case <-c.done:
		return nil, fmt.Errorf("sftp on %s: client is closed", c.addr)
	default:
	}
	if c.sftp != nil {
		return c.sftp, nil
	}
	type started struct {
		s   *sftp.Client
		err error
	}
	ch := make(chan started, 1)
	go func() {
		s, err := sftp.NewClient(c.conn, sftp.UseConcurrentWrites(true))
		ch <- started{s, err}
	}()
	select {
	case st := <-ch:
		if st.err != nil {
			return nil, c.transportErr("start sftp", st.err)
		}
		c.sftp = st.s
		return st.s, nil
	case <-ctx.Done():
		go func() {
			if st := <-ch; st.s != nil {
				st.s.Close()
			}
		}()
		return nil, fmt.Errorf("start sftp on %s: %w", c.addr, ctx.Err())
	}
}

// withSFTP runs f with the connection's SFTP client and returns when f does,
// or at the latest cancelGrace after ctx ends: then that SFTP client is
// closed (which ends f's blocked requests) and the next use starts a new one.
func (c *Client) withSFTP(ctx context.Context, f func(s *sftp.Client) error) error {
	s, err := c.sftpClient(ctx)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f(s) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// A host that still answers lets f stop and clean up (its reads
		// see ctx); one that stopped answering has its SFTP closed.
		select {
		case err := <-done:
			return err
		case <-time.After(cancelGrace):
		}
	case <-c.done:
	}
	c.sftpMu.Lock()
	if c.sftp == s {
		c.sftp = nil
	}
	c.sftpMu.Unlock()
	go s.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("sftp on %s: client is closed", c.addr)
}
