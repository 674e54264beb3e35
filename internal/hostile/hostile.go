// Package hostile is a test SSH server playing a student's VM that tries to
// hurt the teacher's deploylab, or a normal one: an in-process
// golang.org/x/crypto/ssh server (no login needed, a known host key) whose
// commands either really run (Normal, Tricky) or get a hostile answer that
// runs nothing (Flood, Stall, Liar). Its SFTP writes go to memory. It is
// for tests of the packages that visit many hosts (grade, deploy).
package hostile

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Mode is how the host behaves.
type Mode int

const (
	// Normal runs every command with /bin/sh on this machine, as root, in
	// namespaces of its own (processes, network): an empty VM.
	Normal Mode = iota
	// Tricky runs every command as Normal does, with fake
	// ps, ss and pm2 first in PATH that print hostile text: processes named
	// with escape sequences and control characters, fields separated by
	// vertical tabs, bogus ss lines, a broken pm2 jlist.
	Tricky
	// Flood answers every command with FloodBytes of escape sequences and
	// junk on stdout, some on stderr, and exit status 0. Nothing runs.
	Flood
	// Stall accepts every command and never answers it.
	Stall
	// Liar answers every command with a screenful of escape sequences and
	// forged lines, and exit status 0. Nothing runs.
	Liar
)

func (m Mode) String() string {
	return [...]string{"normal", "tricky", "flood", "stall", "liar"}[m]
}

// FloodBytes is how much a Flood host prints per command.
var FloodBytes = 50 << 20

// Junk is what Liar and Flood hosts print: a screen clear, a cursor move, a
// window title, a carriage return forging a line, a direction override,
// bytes that are not UTF-8, a vertical tab.
const Junk = "\x1b[2J\x1b[H\x1b]0;pwned\x07ok\rFAKE: all checks passed\n\u202egnp.exe\xff\xfe\v\x00\x1b[31m\n"

// Server is a running hostile host.
type Server struct {
	Mode       Mode
	Port       int
	KnownHosts string // a known_hosts file holding its key

	ln    net.Listener
	dir   string
	mu    sync.Mutex
	conns []net.Conn
	stop  chan struct{}
	execs int
}

// Start starts a host in mode; dir is a directory for its files.
func Start(mode Mode, dir string) (*Server, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Mode: mode, Port: ln.Addr().(*net.TCPAddr).Port, ln: ln, dir: dir, stop: make(chan struct{})}
	s.KnownHosts = filepath.Join(dir, "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", s.Port, bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err := os.WriteFile(s.KnownHosts, []byte(line+"\n"), 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	if mode == Tricky {
		bin := filepath.Join(dir, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			return nil, err
		}
		for name, script := range fakeTools {
			if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
				return nil, err
			}
		}
	}
	go s.serve(cfg)
	return s, nil
}

// Close stops the host and drops its connections.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
}

// Execs is how many commands the host was asked to run.
func (s *Server) Execs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.execs
}

func (s *Server) serve(cfg *ssh.ServerConfig) {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns = append(s.conns, nc)
		s.mu.Unlock()
		go func() {
			_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
			if err != nil {
				nc.Close()
				return
			}
			go ssh.DiscardRequests(reqs)
			for nch := range chans {
				if nch.ChannelType() != "session" {
					nch.Reject(ssh.UnknownChannelType, "only sessions")
					continue
				}
				ch, creqs, err := nch.Accept()
				if err != nil {
					continue
				}
				go s.session(ch, creqs)
			}
		}()
	}
}

func exitStatus(ch ssh.Channel, code int) {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(code))
	ch.SendRequest("exit-status", false, b)
	ch.Close()
}

func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var proc *os.Process
	var procMu sync.Mutex
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Cmd string }
			if ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			s.mu.Lock()
			s.execs++
			s.mu.Unlock()
			req.Reply(true, nil)
			switch s.Mode {
			case Stall:
				go func() {
					<-s.stop
					ch.Close()
				}()
			case Flood:
				go func() {
					io.Copy(io.Discard, ch) // take stdin
					chunk := bytes.Repeat([]byte(Junk), 4096)
					for n := 0; n < FloodBytes; n += len(chunk) {
						if _, err := ch.Write(chunk); err != nil {
							return
						}
					}
					ch.Stderr().Write(bytes.Repeat([]byte(Junk), 100000))
					exitStatus(ch, 0)
				}()
			case Liar:
				go func() {
					io.Copy(io.Discard, ch)
					ch.Write([]byte(strings.Repeat(Junk, 20)))
					ch.Stderr().Write([]byte(Junk))
					exitStatus(ch, 0)
				}()
			default:
				go func() {
					// A VM of its own: its own processes (PID namespace, /proc)
					// and network (loopback only), so that what it shows does
					// not depend on what else runs on this machine.
					cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--net", "--",
						"sh", "-c", "ip link set lo up 2>/dev/null; exec /bin/sh -c \"$0\"", p.Cmd)
					if s.Mode == Tricky {
						cmd.Env = append(os.Environ(), "PATH="+filepath.Join(s.dir, "bin")+":"+os.Getenv("PATH"))
					}
					cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
					cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
					code := 0
					if err := cmd.Start(); err != nil {
						code = 127
					} else {
						procMu.Lock()
						proc = cmd.Process
						procMu.Unlock()
						if err := cmd.Wait(); err != nil {
							var ee *exec.ExitError
							code = 255
							if errors.As(err, &ee) {
								code = ee.ExitCode()
							}
						}
					}
					exitStatus(ch, code)
				}()
			}
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" || s.Mode == Stall {
				req.Reply(s.Mode == Stall, nil) // a stalling host accepts, then says nothing
				continue
			}
			req.Reply(true, nil)
			go func() {
				// Uploads go to memory: nothing is written on this machine.
				srv := sftp.NewRequestServer(ch, sftp.InMemHandler())
				srv.Serve()
				ch.Close()
			}()
		case "signal":
			procMu.Lock()
			if proc != nil {
				syscall.Kill(-proc.Pid, syscall.SIGTERM)
			}
			procMu.Unlock()
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}

// fakeTools are the Tricky host's ps, ss and pm2.
var fakeTools = map[string]string{
	"ps": "#!/bin/sh\n" +
		"printf '    1     0 root                             /sbin/init\\n'\n" +
		"printf '  700     1 alumno                           PM2 v5.3.0: God Daemon (/home/alumno/.pm2)\\n'\n" +
		"printf '  712   700 alumno                           node \\033[2J\\033]0;pwned\\007/home/alumno/app.js\\n'\n" +
		"printf '\\v713\\v700\\valumno\\vnode\\vapp.js\\n'\n" +
		"printf '99999999999999999999 -1 x\\n'\n" +
		"printf '  714   700 alumno \\r\\033[1A\\033[2KFAKE ok\\n'\n",
	"ss": "#!/bin/sh\n" +
		"printf 'State Recv-Q Send-Q Local Address:Port Peer Address:Port Process\\n'\n" +
		"printf 'LISTEN 0 511 *:3000 *:* users:((\"node\\033[31m\",pid=abc,fd=-1))\\n'\n" +
		"printf 'LISTEN 0 511 *:99999 *:* users:((\"x\",pid=712,fd=3),(\"y\",pid=\\n'\n" +
		"printf 'LISTEN\\v0\\v0\\v[::1]:\\v*:*\\n'\n" +
		"printf 'garbage without fields\\n'\n",
	"pm2": "#!/bin/sh\n" +
		"printf '[{\"pid\":712,\"name\":\"app\\\\u001b[2J\",\"pm2_env\":{\"exec_mode\":\"cluster_mode\",\"status\":\"onl'\n",
}
