package remote

import (
	"errors"
	"fmt"
	"strings"

	"github.com/deploylab/deploylab/internal/fail"
)

// HostKeyProblem says why a host key was refused.
type HostKeyProblem int

const (
	// HostKeyUnknown: known_hosts has no key for the host (and AcceptNew is off).
	HostKeyUnknown HostKeyProblem = iota + 1
	// HostKeyChanged: known_hosts has a different key for the host.
	HostKeyChanged
)

func (p HostKeyProblem) String() string {
	switch p {
	case HostKeyUnknown:
		return "unknown"
	case HostKeyChanged:
		return "changed"
	}
	return "invalid"
}

// KnownKey is a key known_hosts holds for a host.
type KnownKey struct {
	File        string
	Line        int
	Type        string // e.g. ssh-ed25519
	Fingerprint string // SHA256:...
}

// HostKeyError is a refused host key. It is always wrapped in a fail.Auth
// error whose hint says what to do.
type HostKeyError struct {
	Problem HostKeyProblem
	Host    string // the host's name as the user gave it
	Address string // host:port dialled
	// File is the known_hosts file consulted (the one AcceptNew writes to).
	File string
	// Offered is the key the server presented.
	OfferedType        string
	OfferedFingerprint string
	// Known are the keys known_hosts holds for the host (HostKeyChanged only).
	Known []KnownKey
}

func (e *HostKeyError) Error() string {
	switch e.Problem {
	case HostKeyChanged:
		var known []string
		for _, k := range e.Known {
			known = append(known, fmt.Sprintf("%s %s at %s:%d", k.Type, k.Fingerprint, k.File, k.Line))
		}
		return fmt.Sprintf("host key for %s changed: it offered %s %s, known_hosts has %s",
			e.Address, e.OfferedType, e.OfferedFingerprint, strings.Join(known, "; "))
	default:
		return fmt.Sprintf("host key for %s is unknown: it offered %s %s, not in %s",
			e.Address, e.OfferedType, e.OfferedFingerprint, e.File)
	}
}

// Hint says what the user should do about the refused key.
func (e *HostKeyError) Hint() string {
	if e.Problem == HostKeyChanged {
		file := e.File
		if len(e.Known) > 0 {
			file = e.Known[0].File
		}
		return fmt.Sprintf("the host key changed: if the VM was reinstalled, remove the old line with ssh-keygen -R '%s' -f %s",
			knownHostsName(e.Address), file)
	}
	return fmt.Sprintf("verify the fingerprint %s, then re-run with --accept-new", e.OfferedFingerprint)
}

// AuthError is an authentication failure: the server refused every method
// we could offer. It is always wrapped in a fail.Auth error.
type AuthError struct {
	User    string
	Address string
	// Methods are the methods we offered (publickey, password, ...).
	Methods []string
	// Keys are the public keys offered (fingerprints), agent's and files'.
	Keys []string
	Err  error
}

func (e *AuthError) Error() string {
	methods := "none"
	if len(e.Methods) > 0 {
		methods = strings.Join(e.Methods, ", ")
	}
	s := fmt.Sprintf("authentication as %s at %s failed (tried %s)", e.User, e.Address, methods)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *AuthError) Unwrap() error { return e.Err }

// Hint says what the user should do about the failure.
func (e *AuthError) Hint() string {
	return fmt.Sprintf("check the user name (%s), that your public key is in ~%s/.ssh/authorized_keys on the host (ssh-copy-id), or use a password (prompted or from an environment variable)",
		e.User, e.User)
}

// SudoError reports that sudo refused to run a command: a password is
// required and none is configured, the password is wrong, or the user may not
// use sudo. Result holds what the command printed. It is wrapped in a fail.Auth
// error.
type SudoError struct {
	User    string
	Address string
	// Reason is sudo's own message, without any password.
	Reason string
	Result Result
}

func (e *SudoError) Error() string {
	return fmt.Sprintf("sudo as %s on %s refused: %s", e.User, e.Address, e.Reason)
}

// Hint says what the user should do about the refusal.
func (e *SudoError) Hint() string {
	return "give the sudo password: run deploylab on a terminal (it asks), or export it and pass --sudo-password-env NAME (sudo_password_env in an inventory); or allow the user passwordless sudo"
}

// classify wraps err in a fail error with the typed error's hint.
func hostKeyFail(e *HostKeyError) error { return fail.New(fail.Auth, e.Hint(), e) }
func authFail(e *AuthError) error       { return fail.New(fail.Auth, e.Hint(), e) }
func sudoFail(e *SudoError) error       { return fail.New(fail.Auth, e.Hint(), e) }

func unreachable(addr string, err error) error {
	return fail.New(fail.Unreachable,
		fmt.Sprintf("check that the host is up and that sshd listens on %s", addr),
		fmt.Errorf("connect to %s: %w", addr, err))
}

// IsHostKeyError reports whether err is (or wraps) a *HostKeyError.
func IsHostKeyError(err error) bool {
	var e *HostKeyError
	return errors.As(err, &e)
}
