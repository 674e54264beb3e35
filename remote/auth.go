package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/deploylab/deploylab/internal/fail"
)

// PassphraseFunc returns the passphrase of an encrypted private key file. It
// is called only when the server is willing to accept that key. It should
// return ctx.Err() promptly when ctx is cancelled.
type PassphraseFunc func(ctx context.Context, keyFile string) ([]byte, error)

// PasswordFunc returns the login password for user at address; it is called
// only when the server asks for a password and Host.Password is empty.
type PasswordFunc func(ctx context.Context, user, address string) (string, error)

// passphraseTries is how many times a wrong passphrase is asked again.
const passphraseTries = 3

// authSetup collects what Dial offers, for AuthError's fields.
type authSetup struct {
	methods []ssh.AuthMethod
	names   []string
	keys    []string // fingerprints
	agent   net.Conn
	signErr error // set by a lazy signer whose key could not be decrypted
	mu      sync.Mutex
}

func (a *authSetup) close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

func (a *authSetup) setSignErr(err error) {
	a.mu.Lock()
	if a.signErr == nil {
		a.signErr = err
	}
	a.mu.Unlock()
}

func (a *authSetup) getSignErr() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.signErr
}

// pause is called around interactive prompts, so that the handshake timeout
// does not run while the user types.
type pauser interface {
	pause()
	resume()
}

// buildAuth prepares the authentication methods for h: one "publickey"
// method offering the agent's keys then the key files' (x/crypto/ssh tries
// each method name once, so they must share one method), then password and
// keyboard-interactive when a password is available or can be prompted for.
func buildAuth(ctx context.Context, h Host, o *options, p pauser) (*authSetup, error) {
	a := &authSetup{}
	var signers []ssh.Signer
	seen := map[string]bool{}
	add := func(s ssh.Signer) {
		k := string(s.PublicKey().Marshal())
		if seen[k] {
			return
		}
		seen[k] = true
		signers = append(signers, s)
		a.keys = append(a.keys, ssh.FingerprintSHA256(s.PublicKey()))
	}

	if o.agentSocket != "" {
		// An agent that cannot be reached is not an error: keys and
		// passwords may still work (OpenSSH behaves the same).
		var d net.Dialer
		if conn, err := d.DialContext(ctx, "unix", o.agentSocket); err == nil {
			a.agent = conn
			if ss, err := agent.NewClient(conn).Signers(); err == nil {
				for _, s := range ss {
					add(s)
				}
			}
		}
	}

	for _, file := range h.KeyFiles {
		s, err := loadKeyFile(ctx, file, o.keys, a, p)
		if err != nil {
			a.close()
			return nil, err
		}
		if s != nil {
			add(s)
		}
	}
	if len(signers) > 0 {
		a.methods = append(a.methods, ssh.PublicKeys(signers...))
		a.names = append(a.names, "publickey")
	}

	if h.Password != "" || o.password != nil {
		var once sync.Once
		var pw string
		var pwErr error
		get := func() (string, error) {
			once.Do(func() {
				if h.Password != "" {
					pw = h.Password
					o.secrets.sent("SSH password", pw, h.addr())
					return
				}
				p.pause()
				defer p.resume()
				pw, pwErr = o.password(ctx, h.User, h.addr())
			})
			return pw, pwErr
		}
		a.methods = append(a.methods,
			ssh.PasswordCallback(get),
			ssh.KeyboardInteractive(func(name, instruction string, questions []string, echos []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range questions {
					if echos[i] {
						// Only answer hidden (password) questions.
						return nil, errors.New("unsupported keyboard-interactive question")
					}
					v, err := get()
					if err != nil {
						return nil, err
					}
					answers[i] = v
				}
				return answers, nil
			}))
		a.names = append(a.names, "password", "keyboard-interactive")
	}
	return a, nil
}

// loadKeyFile reads a private key. An encrypted key becomes a signer that
// asks for the passphrase only when the server accepts its public key; with
// no keyring (no PassphraseFunc) it is skipped (the agent may hold it).
func loadKeyFile(ctx context.Context, file string, keys *keyring, a *authSetup, p pauser) (ssh.Signer, error) {
	pemBytes, err := os.ReadFile(file)
	if err != nil {
		return nil, fail.New(fail.Usage, "check the key file's path (--key or IdentityFile in ~/.ssh/config)",
			fmt.Errorf("read key file: %w", err))
	}
	s, err := ssh.ParsePrivateKey(pemBytes)
	if err == nil {
		return s, nil
	}
	var missing *ssh.PassphraseMissingError
	if !errors.As(err, &missing) {
		return nil, fail.New(fail.Usage, "give a private key file (not the .pub)", fmt.Errorf("key file %s: %w", file, err))
	}
	if keys == nil {
		return nil, nil
	}
	pub := missing.PublicKey
	if pub == nil {
		// Old PEM format: the public key is not in the file; try the .pub.
		if b, err := os.ReadFile(file + ".pub"); err == nil {
			if k, _, _, _, err := ssh.ParseAuthorizedKey(b); err == nil {
				pub = k
			}
		}
	}
	ls := &lazySigner{ctx: ctx, file: file, pem: pemBytes, keys: keys, setup: a, p: p, pub: pub}
	if pub == nil {
		// Nothing to offer without decrypting first.
		if _, err := ls.get(); err != nil {
			return nil, err
		}
		ls.pub = ls.signer.PublicKey()
	}
	return ls, nil
}

// keyring holds the keys decrypted during a run, so that a key's passphrase
// is asked once however many hosts are dialled, at once or one after the
// other, with the same WithPassphrase option. A key whose passphrase was
// wrong passphraseTries times is not asked again; a cancelled prompt is.
type keyring struct {
	prompt PassphraseFunc
	mu     sync.Mutex
	keys   map[string]*keyEntry // by file name and content
}

type keyEntry struct {
	turn   chan struct{} // holds a token while someone asks or decrypts
	signer ssh.Signer
	err    error // a final failure (wrong passphrase), never a cancellation
}

func newKeyring(prompt PassphraseFunc) *keyring {
	return &keyring{prompt: prompt, keys: map[string]*keyEntry{}}
}

func (k *keyring) entry(file string, pemBytes []byte) *keyEntry {
	sum := sha256.Sum256(pemBytes)
	id := file + "\x00" + string(sum[:])
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.keys[id]
	if e == nil {
		e = &keyEntry{turn: make(chan struct{}, 1)}
		k.keys[id] = e
	}
	return e
}

// signer returns the decrypted key, asking for its passphrase (up to
// passphraseTries times) unless another dial already did. Dials that need the
// same key meanwhile wait for that answer (p paused: the time a user takes
// to type does not count against the handshake timeout).
func (k *keyring) signer(ctx context.Context, file string, pemBytes []byte, p pauser) (ssh.Signer, error) {
	e := k.entry(file, pemBytes)
	p.pause()
	defer p.resume()
	select {
	case e.turn <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("passphrase for %s: %w", file, ctx.Err())
	}
	defer func() { <-e.turn }()
	if e.signer != nil || e.err != nil {
		return e.signer, e.err
	}
	var err error
	for try := 0; try < passphraseTries; try++ {
		answer, perr := k.prompt(ctx, file)
		if perr != nil {
			return nil, fmt.Errorf("passphrase for %s: %w", file, perr)
		}
		// Work on a copy: the answer belongs to the prompt (it may keep it).
		pass := bytes.Clone(answer)
		s, derr := ssh.ParsePrivateKeyWithPassphrase(pemBytes, pass)
		clear(pass)
		if derr == nil {
			e.signer = s
			return s, nil
		}
		if !errors.Is(derr, x509.IncorrectPasswordError) {
			err = fmt.Errorf("decrypt key %s: %w", file, derr)
			break
		}
		err = fmt.Errorf("decrypt key %s: incorrect passphrase", file)
	}
	e.err = err
	return nil, err
}

// lazySigner decrypts its key (through the run's keyring) on first use.
type lazySigner struct {
	ctx   context.Context
	file  string
	pem   []byte
	keys  *keyring
	setup *authSetup
	p     pauser
	pub   ssh.PublicKey

	once   sync.Once
	signer ssh.Signer
	err    error
}

func (l *lazySigner) PublicKey() ssh.PublicKey { return l.pub }

func (l *lazySigner) get() (ssh.Signer, error) {
	l.once.Do(func() {
		l.signer, l.err = l.keys.signer(l.ctx, l.file, l.pem, l.p)
		if l.err != nil && l.setup != nil {
			l.setup.setSignErr(l.err)
		}
	})
	return l.signer, l.err
}

func (l *lazySigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	return s.Sign(rand, data)
}

func (l *lazySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	s, err := l.get()
	if err != nil {
		return nil, err
	}
	as, ok := s.(ssh.AlgorithmSigner)
	if !ok {
		if algorithm == "" || algorithm == s.PublicKey().Type() {
			return s.Sign(rand, data)
		}
		return nil, fmt.Errorf("key %s cannot sign with %s", l.file, algorithm)
	}
	return as.SignWithAlgorithm(rand, data, algorithm)
}
