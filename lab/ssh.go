package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/deploylab/deploylab/internal/fail"
)

// Limits of a lab dial: the TCP connect, then the SSH handshake.
const (
	connectTimeout   = 5 * time.Second
	handshakeTimeout = 10 * time.Second
)

// dial connects to host h as user with the lab key, checking the host key
// against the lab's known_hosts.
func (l *Lab) dial(ctx context.Context, addr, user string) (*ssh.Client, error) {
	b, err := os.ReadFile(l.KeyPath())
	if err != nil {
		return nil, fmt.Errorf("read the lab key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("read the lab key: %w", err)
	}
	hk, err := knownhosts.New(l.KnownHostsPath())
	if err != nil {
		return nil, fmt.Errorf("read the lab's known_hosts: %w", err)
	}
	// (ClientConfig.Timeout is not set: it bounds only ssh.Dial's connect,
	// which is not used here.)
	cfg := &ssh.ClientConfig{
		User:              user,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   hk,
		HostKeyAlgorithms: []string{ssh.KeyAlgoED25519},
	}
	target := net.JoinHostPort(addr, "22")
	d := net.Dialer{Timeout: connectTimeout}
	conn, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, err
	}
	// Bound the handshake by handshakeTimeout and by ctx.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	dl := time.Now().Add(handshakeTimeout)
	if cdl, ok := ctx.Deadline(); ok && cdl.Before(dl) {
		dl = cdl
	}
	conn.SetDeadline(dl)
	c, chans, reqs, err := ssh.NewClientConn(conn, target, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// runOn runs cmd over client, returning its exit code; ctx cancels it.
func runOn(ctx context.Context, c *ssh.Client, cmd string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	s, err := c.NewSession()
	if err != nil {
		return -1, err
	}
	defer s.Close()
	s.Stdin, s.Stdout, s.Stderr = stdin, stdout, stderr
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	err = s.Run(cmd)
	if ctx.Err() != nil {
		return -1, ctx.Err()
	}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// waitReady waits until h accepts the lab key over SSH and its systemd
// has finished booting in state "running".
func (l *Lab) waitReady(ctx context.Context, h *hostState) error {
	var last error
	for {
		if !alive(h.PID, h.PIDStart) {
			return fmt.Errorf("the container stopped while booting: %s", consoleTail(h))
		}
		c, err := l.dial(ctx, h.Address, User)
		if err == nil {
			var out bytes.Buffer
			_, err = runOn(ctx, c, "systemctl is-system-running --wait", nil, &out, io.Discard)
			state := strings.TrimSpace(out.String())
			if err == nil && state == "running" {
				c.Close()
				return nil
			}
			if err == nil {
				var failed bytes.Buffer
				runOn(ctx, c, "systemctl --failed --no-legend --plain | cut -d' ' -f1 | tr '\\n' ' '", nil, &failed, io.Discard)
				c.Close()
				return fmt.Errorf("systemd is %q, not running (failed units: %s)", state, strings.TrimSpace(failed.String()))
			}
			c.Close()
		}
		last = err
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not ready over ssh in time (last error: %v): %s", last, consoleTail(h))
			}
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func consoleTail(h *hostState) string {
	b, _ := os.ReadFile(h.Dir + "/console.log")
	return "console: " + lastLines(string(b), 3)
}

// Run runs cmd as deploy on the lab host name ("lab1" or "1") over SSH,
// copying its output to stdout and stderr, and returns its exit code.
func (l *Lab) Run(ctx context.Context, name, cmd string, stdout, stderr io.Writer) (int, error) {
	h, err := l.Host(name)
	if err != nil {
		return -1, err
	}
	c, err := l.dial(ctx, h.Address, User)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", h.Name, err)
	}
	defer c.Close()
	code, err := runOn(ctx, c, cmd, nil, stdout, stderr)
	if err != nil {
		return code, fmt.Errorf("%s: %w", h.Name, err)
	}
	return code, nil
}

// SSH logs in to lab host n (1, 2, ...) as deploy. With args, it runs them
// as one command (joined by spaces, as ssh does) over SSH, relaying stdin,
// stdout and stderr, and returns the command's exit code. Without args, it
// runs the system ssh client for an interactive shell, with the lab key and
// strict host key checking, and returns ssh's exit code.
func (l *Lab) SSH(ctx context.Context, n int, args []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	name := "lab" + strconv.Itoa(n)
	if len(args) > 0 {
		h, err := l.Host(name)
		if err != nil {
			return -1, err
		}
		c, err := l.dial(ctx, h.Address, User)
		if err != nil {
			return -1, fail.New(fail.Unreachable, "see deploylab lab status", fmt.Errorf("%s: %w", h.Name, err))
		}
		defer c.Close()
		code, err := runOn(ctx, c, strings.Join(args, " "), stdin, stdout, stderr)
		if err != nil {
			return code, fmt.Errorf("%s: %w", h.Name, err)
		}
		return code, nil
	}
	argv, err := l.SSHArgs(name)
	if err != nil {
		return -1, err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return -1, fail.New(fail.Prereq, "apt-get install openssh-client", fmt.Errorf("an interactive lab shell needs the ssh client: %w", err))
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// SSHArgs returns the argv of the system ssh client logging in as deploy
// to the lab host name, with the lab key and strict host key checking
// against the lab's known_hosts; append "--" and a command to run one.
func (l *Lab) SSHArgs(name string) ([]string, error) {
	h, err := l.Host(name)
	if err != nil {
		return nil, err
	}
	return []string{"ssh", "-i", h.KeyPath, "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + h.KnownHostsPath, "-o", "StrictHostKeyChecking=yes",
		"-o", "GlobalKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
		"-p", strconv.Itoa(h.Port), h.User + "@" + h.Address}, nil
}

// HostStatus is what Status observed of one host.
type HostStatus struct {
	Host
	// Running: its container process is alive.
	Running bool
	// Reachable: SSH login with the lab key worked.
	Reachable bool
	// System is the answer of `systemctl is-system-running` ("running",
	// "degraded", ...), empty if unreachable.
	System string
	// Err says why the host is not reachable.
	Err string
}

// Status checks every host: process alive, SSH login, systemd's state.
func (l *Lab) Status(ctx context.Context) ([]HostStatus, error) {
	hosts := l.Hosts()
	out := make([]HostStatus, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		st := l.st.Hosts[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := HostStatus{Host: h, Running: alive(st.PID, st.PIDStart)}
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			c, err := l.dial(cctx, h.Address, User)
			if err != nil {
				s.Err = err.Error()
			} else {
				s.Reachable = true
				var o bytes.Buffer
				if _, err := runOn(cctx, c, "systemctl is-system-running", nil, &o, io.Discard); err != nil {
					s.Err = err.Error()
				}
				s.System = strings.TrimSpace(o.String())
				c.Close()
			}
			out[i] = s
		}()
	}
	wg.Wait()
	return out, ctx.Err()
}
