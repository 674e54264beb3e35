package lab

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestDialTarpit: a lab address that accepts TCP and never speaks SSH (a
// host stuck while booting) ends the dial after the handshake limit, even
// when the caller's context has no deadline: the ClientConfig.Timeout it
// used to set bounds only ssh.Dial's connect, not this handshake.
func TestDialTarpit(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	l := &Lab{dir: dir}
	os.WriteFile(l.KeyPath(), pem.EncodeToMemory(block), 0o600)
	os.WriteFile(l.KnownHostsPath(), nil, 0o600)

	ln, err := net.Listen("tcp", "127.0.0.1:22")
	if err != nil {
		// Port 22 of 127.0.0.1 is taken (an sshd): use another loopback address.
		ln, err = net.Listen("tcp", "127.0.0.2:22")
	}
	if err != nil {
		t.Fatalf("listen on a loopback port 22: %v", err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // accepted, never answered
		}
	}()
	addr, _, _ := net.SplitHostPort(ln.Addr().String())
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		_, err := l.dial(context.Background(), addr, User)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("dial to a tarpit succeeded")
		}
		if d := time.Since(start); d > handshakeTimeout+3*time.Second {
			t.Errorf("took %s", d)
		}
		t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
	case <-time.After(handshakeTimeout + 20*time.Second):
		t.Fatal("dial to a tarpit never ended")
	}
}
