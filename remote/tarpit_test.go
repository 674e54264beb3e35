package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// tarpit is an in-process SSH server that misbehaves in one way: the
// faults of a VM that hangs, or of a student who makes it hang on purpose.
type tarpitMode int

const (
	silentTCP      tarpitMode = iota // accepts TCP, never says a word
	noSessionReply                   // never answers a channel open
	noExecReply                      // accepts the session, never answers exec
	sftpSilent                       // accepts the sftp subsystem, never speaks it
	sftpStall                        // serves sftp, then stops reading mid-upload
)

type tarpit struct {
	ln        net.Listener
	knownHost string
	mu        sync.Mutex
	conns     []net.Conn
}

func (p *tarpit) host() Host {
	return Host{Name: "tarpit", Address: "127.0.0.1", Port: p.ln.Addr().(*net.TCPAddr).Port, User: "deploy",
		KnownHostsFile: p.knownHost, KeyFiles: []string{}, Timeout: 30 * time.Second}
}

func startTarpit(t *testing.T, mode tarpitMode) *tarpit {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(signer)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tarpit{ln: ln, knownHost: filepath.Join(t.TempDir(), "known_hosts")}
	line := fmt.Sprintf("[127.0.0.1]:%d %s", ln.Addr().(*net.TCPAddr).Port, bytes.TrimSpace(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	os.WriteFile(p.knownHost, []byte(line+"\n"), 0o600)
	hold := make(chan struct{})
	t.Cleanup(func() {
		close(hold)
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, nc)
			p.mu.Unlock()
			if mode == silentTCP {
				continue
			}
			go func() {
				_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
				if err != nil {
					return
				}
				go ssh.DiscardRequests(reqs)
				for nch := range chans {
					if mode == noSessionReply {
						continue // neither accepted nor rejected
					}
					ch, creqs, err := nch.Accept()
					if err != nil {
						continue
					}
					go func() {
						for req := range creqs {
							switch {
							case mode == noExecReply:
								// never replied
							case req.Type == "subsystem" && mode == sftpSilent:
								req.Reply(true, nil) // then silence
							case req.Type == "subsystem" && mode == sftpStall:
								req.Reply(true, nil)
								go func() {
									srv, err := sftp.NewServer(struct {
										io.Reader
										io.WriteCloser
									}{&stallReader{r: ch, after: 256 << 10, hold: hold}, ch})
									if err == nil {
										srv.Serve()
									}
								}()
							default:
								if req.WantReply {
									req.Reply(false, nil)
								}
							}
						}
					}()
				}
			}()
		}
	}()
	return p
}

// stallReader passes the first after bytes, then blocks until hold closes.
type stallReader struct {
	r     io.Reader
	after int
	n     int
	hold  chan struct{}
}

func (s *stallReader) Read(b []byte) (int, error) {
	if s.n >= s.after {
		<-s.hold
		return 0, io.EOF
	}
	b = b[:min(len(b), s.after-s.n)]
	n, err := s.r.Read(b)
	s.n += n
	return n, err
}

// TestTarpit: every remote step on a host that stops answering ends when
// its context does (deadline or cancel), within a second or two, with the
// context's error.
func TestTarpit(t *testing.T) {
	const limit = time.Second
	data := bytes.Repeat([]byte("x"), 4<<20)
	steps := []struct {
		name string
		mode tarpitMode
		step func(ctx context.Context, c *Client) error
	}{
		{"run, channel open never answered", noSessionReply, func(ctx context.Context, c *Client) error {
			_, err := c.Run(ctx, "true")
			return err
		}},
		{"run, exec never answered", noExecReply, func(ctx context.Context, c *Client) error {
			_, err := c.Run(ctx, "true")
			return err
		}},
		{"sudo, exec never answered", noExecReply, func(ctx context.Context, c *Client) error {
			_, err := c.RunSudo(ctx, "true")
			return err
		}},
		{"upload, sftp never answers", sftpSilent, func(ctx context.Context, c *Client) error {
			w := clientWriter{c}
			src, _ := readerSource(bytes.NewReader(data), int64(len(data)))
			_, err := w.writeTemp(ctx, src, "/tmp/deploylab-tarpit", true, 0o644)
			return err
		}},
		{"upload, stalls mid-way", sftpStall, func(ctx context.Context, c *Client) error {
			w := clientWriter{c}
			src, _ := readerSource(bytes.NewReader(data), int64(len(data)))
			_, err := w.writeTemp(ctx, src, filepath.Join(t.TempDir(), "big"), true, 0o644)
			return err
		}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			p := startTarpit(t, s.mode)
			c := dialTest(t, p.host())
			for _, how := range []string{"deadline", "cancel"} {
				var ctx context.Context
				var cancel context.CancelFunc
				if how == "deadline" {
					ctx, cancel = context.WithTimeout(context.Background(), limit)
				} else {
					ctx, cancel = context.WithCancel(context.Background())
					time.AfterFunc(limit, cancel)
				}
				start := time.Now()
				done := make(chan error, 1)
				go func() { done <- s.step(ctx, c) }()
				select {
				case err := <-done:
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						t.Errorf("%s: got %v, want the context's error", how, err)
					}
					if d := time.Since(start); d > limit+3*time.Second {
						t.Errorf("%s: ended after %s", how, d)
					}
				case <-time.After(limit + 10*time.Second):
					t.Fatalf("%s: still hanging %s after its context ended", how, 10*time.Second)
				}
				cancel()
			}
		})
	}

	t.Run("dial, TCP answered by no ssh", func(t *testing.T) {
		t.Parallel()
		p := startTarpit(t, silentTCP)
		ctx, cancel := context.WithTimeout(context.Background(), limit)
		defer cancel()
		start := time.Now()
		_, err := Dial(ctx, p.host(), baseOpts()...)
		if err == nil || time.Since(start) > limit+3*time.Second {
			t.Fatalf("dial: %v after %s", err, time.Since(start))
		}
	})
}
