package remote

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
	"sync"
	"syscall"
	"testing"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// testServer is an in-process SSH server (x/crypto/ssh) for the flows a real
// sshd here cannot show cheaply: password and keyboard-interactive logins,
// a non-root user (whose RunSudo goes through sudo), a server that stops
// answering keepalives. Commands really run, with /bin/sh, as this process's
// user.
type testServer struct {
	ln        net.Listener
	port      int
	knownHost string // known_hosts file for it

	mu    sync.Mutex
	execs []execRecord
	conns []net.Conn

	// ignoreGlobal: read global requests (keepalives) but never answer.
	ignoreGlobal bool
	path         string
}

type execRecord struct {
	cmd   string
	stdin []byte
	env   []string // "env" requests of its session
}

type serverConfig struct {
	password    string // accepted password ("" none)
	kbdOnly     bool   // offer keyboard-interactive instead of password
	ignoreAlive bool
	// path, when set, is put first in the commands' PATH (a sudo that asks
	// for a password, say).
	path string
}

func startTestServer(t *testing.T, sc serverConfig) *testServer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{}
	if !sc.kbdOnly {
		cfg.PasswordCallback = func(conn ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if sc.password != "" && string(pw) == sc.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	} else {
		cfg.KeyboardInteractiveCallback = func(conn ssh.ConnMetadata, client ssh.KeyboardInteractiveChallenge) (*ssh.Permissions, error) {
			ans, err := client("", "", []string{"Password: "}, []bool{false})
			if err != nil {
				return nil, err
			}
			if len(ans) == 1 && ans[0] == sc.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, ignoreGlobal: sc.ignoreAlive, path: sc.path}
	s.knownHost = filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("[127.0.0.1]:%d %s", s.port, bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	if err := os.WriteFile(s.knownHost, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	go s.serve(cfg)
	t.Cleanup(s.close)
	return s
}

func (s *testServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

func (s *testServer) host(user string) Host {
	return Host{Name: "inproc", Address: "127.0.0.1", Port: s.port, User: user, KnownHostsFile: s.knownHost,
		KeyFiles: []string{}}
}

func (s *testServer) recorded() []execRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]execRecord(nil), s.execs...)
}

func (s *testServer) serve(cfg *ssh.ServerConfig) {
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
			if s.ignoreGlobal {
				go func() {
					for range reqs { // never answered
					}
				}()
			} else {
				go ssh.DiscardRequests(reqs)
			}
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

func (s *testServer) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var proc *os.Process
	var procMu sync.Mutex
	var env []string
	for req := range reqs {
		switch req.Type {
		case "env":
			var kv struct{ Name, Value string }
			if ssh.Unmarshal(req.Payload, &kv) == nil {
				env = append(env, kv.Name+"="+kv.Value)
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		case "exec":
			var payload struct{ Cmd string }
			if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				// Take all of stdin first (the client sends EOF at its end),
				// to record exactly what was sent.
				stdin, _ := io.ReadAll(ch)
				s.mu.Lock()
				s.execs = append(s.execs, execRecord{cmd: payload.Cmd, stdin: stdin, env: env})
				s.mu.Unlock()
				cmd := exec.Command("/bin/sh", "-c", payload.Cmd)
				if s.path != "" {
					cmd.Env = append(os.Environ(), "PATH="+s.path+":"+os.Getenv("PATH"))
				}
				cmd.Stdin = bytes.NewReader(stdin)
				cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // sshd: setsid
				code := 0
				if err := cmd.Start(); err != nil {
					code = 127
				} else {
					procMu.Lock()
					proc = cmd.Process
					procMu.Unlock()
					if err := cmd.Wait(); err != nil {
						var ee *exec.ExitError
						if errors.As(err, &ee) {
							code = ee.ExitCode()
						} else {
							code = 255
						}
					}
				}
				status := make([]byte, 4)
				binary.BigEndian.PutUint32(status, uint32(code))
				ch.SendRequest("exit-status", false, status)
				ch.Close()
			}()
		case "subsystem":
			var payload struct{ Name string }
			if ssh.Unmarshal(req.Payload, &payload) != nil || payload.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				srv, err := sftp.NewServer(ch)
				if err == nil {
					srv.Serve()
				}
				ch.Close()
			}()
		case "signal":
			procMu.Lock()
			if proc != nil {
				syscall.Kill(-proc.Pid, syscall.SIGTERM) // sshd: killpg
			}
			procMu.Unlock()
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
}
