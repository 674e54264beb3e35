package remote

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"

	"github.com/deploylab/deploylab/internal/fail"
)

// hostKeyChecker verifies a server's host key against one known_hosts file
// and, with AcceptNew, records an unknown host's key in it.
type hostKeyChecker struct {
	host Host
	file string
	db   *knownhosts.HostKeyDB // nil when the file does not exist yet

	mu       sync.Mutex
	verified bool
	accepted bool
	err      *HostKeyError
}

func newHostKeyChecker(h Host) (*hostKeyChecker, error) {
	c := &hostKeyChecker{host: h, file: h.KnownHostsFile}
	db, err := loadKnownHosts(c.file)
	if err != nil {
		return nil, err
	}
	c.db = db
	return c, nil
}

func loadKnownHosts(file string) (*knownhosts.HostKeyDB, error) {
	if _, err := os.Stat(file); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := knownhosts.NewDB(file)
	if err != nil {
		return nil, knownHostsFail(file, err)
	}
	return db, nil
}

// KnownHostsError is a known_hosts file that cannot be read or has a line
// that does not parse. It is wrapped in a fail.Usage error: it is the same
// for every host, and no host is at fault.
type KnownHostsError struct {
	File string
	Line int // 0 when the file as a whole could not be read
	Err  error
}

func (e *KnownHostsError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("known_hosts %s line %d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("known_hosts %s: %v", e.File, e.Err)
}

func (e *KnownHostsError) Unwrap() error { return e.Err }

// Hint says what to do.
func (e *KnownHostsError) Hint() string {
	if e.Line > 0 {
		return fmt.Sprintf("fix or delete line %d of %s (or point --known-hosts at another file)", e.Line, e.File)
	}
	return fmt.Sprintf("check %s (or point --known-hosts at another file)", e.File)
}

// knownhosts reports a bad line as "knownhosts: FILE:LINE: reason".
var knownHostsLineErr = regexp.MustCompile(`^knownhosts: .*:(\d+): (.*)$`)

func knownHostsFail(file string, err error) error {
	e := &KnownHostsError{File: file, Err: err}
	if m := knownHostsLineErr.FindStringSubmatch(err.Error()); m != nil {
		e.Line, _ = strconv.Atoi(m[1])
		e.Err = errors.New(strings.TrimPrefix(m[2], "knownhosts: "))
	}
	return fail.New(fail.Usage, e.Hint(), e)
}

// CheckKnownHosts reads each known_hosts file (a missing one is fine: it
// is created when a key is accepted) and returns a *KnownHostsError
// (fail.Usage) for the first that cannot be read or has a malformed line.
// Run it once before working on many hosts: one error instead of one per
// host.
func CheckKnownHosts(files ...string) error {
	seen := map[string]bool{}
	for _, f := range files {
		f = expandTilde(f)
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		if _, err := loadKnownHosts(f); err != nil {
			return err
		}
	}
	return nil
}

// algorithms returns the host key algorithms to negotiate with addr: the
// types known_hosts holds for it first, then every other supported type, so
// that a host known by its ed25519 key is asked for that key even though the
// client would otherwise prefer ecdsa (the key-type pitfall), while a host
// that no longer has a key of a known type is still refused as "changed"
// rather than failing the negotiation. Nil (library default) for unknown hosts.
func (c *hostKeyChecker) algorithms(addr string) []string {
	if c.db == nil {
		return nil
	}
	known := c.db.HostKeyAlgorithms(addr)
	if len(known) == 0 {
		return nil
	}
	out := slices.Clone(known)
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func (c *hostKeyChecker) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := c.check(c.db, hostname, remote, key)
	if err == nil {
		c.setVerified(false)
		return nil
	}
	var ke *xknownhosts.KeyError
	if !errors.As(err, &ke) {
		var re *xknownhosts.RevokedError
		if errors.As(err, &re) {
			return c.refuse(&HostKeyError{Problem: HostKeyChanged, Host: c.host.String(), Address: hostname, File: c.file,
				OfferedType: key.Type(), OfferedFingerprint: ssh.FingerprintSHA256(key),
				Known: []KnownKey{{File: re.Revoked.Filename, Line: re.Revoked.Line, Type: "revoked " + re.Revoked.Key.Type(), Fingerprint: ssh.FingerprintSHA256(re.Revoked.Key)}}})
		}
		return err
	}
	if len(ke.Want) > 0 {
		return c.refuse(changedError(c.host, hostname, c.file, key, ke.Want))
	}
	if !c.host.AcceptNew {
		return c.refuse(&HostKeyError{Problem: HostKeyUnknown, Host: c.host.String(), Address: hostname, File: c.file,
			OfferedType: key.Type(), OfferedFingerprint: ssh.FingerprintSHA256(key)})
	}
	if err := c.record(hostname, remote, key); err != nil {
		return err
	}
	c.setVerified(true)
	return nil
}

func (c *hostKeyChecker) check(db *knownhosts.HostKeyDB, hostname string, remote net.Addr, key ssh.PublicKey) error {
	if db == nil {
		return &xknownhosts.KeyError{}
	}
	return db.HostKeyCallback()(hostname, remote, key)
}

func changedError(h Host, hostname, file string, key ssh.PublicKey, want []xknownhosts.KnownKey) *HostKeyError {
	e := &HostKeyError{Problem: HostKeyChanged, Host: h.String(), Address: hostname, File: file,
		OfferedType: key.Type(), OfferedFingerprint: ssh.FingerprintSHA256(key)}
	for _, w := range want {
		e.Known = append(e.Known, KnownKey{File: w.Filename, Line: w.Line, Type: w.Key.Type(), Fingerprint: ssh.FingerprintSHA256(w.Key)})
	}
	return e
}

func (c *hostKeyChecker) refuse(e *HostKeyError) error {
	c.mu.Lock()
	c.err = e
	c.mu.Unlock()
	return e
}

func (c *hostKeyChecker) setVerified(accepted bool) {
	c.mu.Lock()
	c.verified, c.accepted = true, accepted
	c.mu.Unlock()
}

func (c *hostKeyChecker) state() (verified bool, herr *HostKeyError) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.verified, c.err
}

// knownHostsMu serialises writers in this process; flock serialises
// processes (two deploylab runs, or ssh itself does not lock, but appends).
var knownHostsMu sync.Mutex

// record appends the key for hostname to the known_hosts file, under a lock,
// after re-reading the file: if another writer recorded the host meanwhile,
// its key must match.
func (c *hostKeyChecker) record(hostname string, remote net.Addr, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(c.file), 0o700); err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	f, err := os.OpenFile(c.file, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("record host key: lock %s: %w", c.file, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	// Re-read under the lock.
	db, err := loadKnownHosts(c.file)
	if err != nil {
		return err
	}
	switch err := c.check(db, hostname, remote, key); {
	case err == nil:
		return nil // someone recorded the same key
	case knownhosts.IsHostKeyChanged(err):
		var ke *xknownhosts.KeyError
		errors.As(err, &ke)
		return c.refuse(changedError(c.host, hostname, c.file, key, ke.Want))
	case !knownhosts.IsHostUnknown(err):
		return err
	}

	// Make sure the new line starts on a line of its own.
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("record host key: %w", err)
	}
	prefix := ""
	if st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil && err != io.EOF {
			return fmt.Errorf("record host key: %w", err)
		}
		if last[0] != '\n' {
			prefix = "\n"
		}
	}
	line := prefix + knownhosts.Line([]string{hostname}, key) + "\n"
	// One write(2) on an O_APPEND descriptor: readers see the whole line or nothing.
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("record host key in %s: %w", c.file, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("record host key in %s: %w", c.file, err)
	}
	return nil
}

// knownHostsName is the name known_hosts (and ssh-keygen -R) uses for addr:
// "host" on port 22, "[host]:port" otherwise.
func knownHostsName(addr string) string {
	return knownhosts.Normalize(addr)
}
