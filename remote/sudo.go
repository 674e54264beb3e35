package remote

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/deploylab/deploylab/internal/safetext"
)

// secretLog remembers which hosts a configured secret was sent to (by its
// hash) and warns when one reaches a second host.
type secretLog struct {
	warn  func(string)
	mu    sync.Mutex
	hosts map[[32]byte][]string
}

func (l *secretLog) sent(kind, secret, addr string) {
	if l == nil || secret == "" {
		return
	}
	k := sha256.Sum256([]byte(kind + "\x00" + secret))
	l.mu.Lock()
	hosts := l.hosts[k]
	if slices.Contains(hosts, addr) {
		l.mu.Unlock()
		return
	}
	hosts = append(hosts, addr)
	l.hosts[k] = hosts
	l.mu.Unlock()
	if len(hosts) == 2 && l.warn != nil {
		l.warn(fmt.Sprintf("the same %s was sent to 2 hosts (%s and %s, and it goes to every other host that asks): "+
			"whoever controls one of them can read it and use it on the others; give each host its own "+
			"(sudo_password_env / password_env per host in the inventory) or allow passwordless sudo and keys",
			kind, hosts[0], hosts[1]))
	}
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("@%_-+=:,./", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// sudoCommand returns the command line running cmd as root, and the stdin to
// feed it. The password is only ever on stdin: never in the command line.
// With a password, the command's own stdin is /dev/null so that it cannot
// read the password when sudo did not need it (NOPASSWD, cached credentials).
func sudoCommand(cmd, password string) (line string, stdin []byte) {
	if password == "" {
		return "sudo -n -- sh -c " + ShellQuote(cmd), nil
	}
	return "sudo -S -p '' -- sh -c " + ShellQuote("exec </dev/null\n"+cmd), []byte(password + "\n")
}

// sudo's own messages when it refuses to run a command.
var sudoRefusals = []string{
	"a password is required",
	"no password was provided",
	"incorrect password attempt",
	"Sorry, try again.",
	"is not in the sudoers file",
	"is not allowed to execute",
	"may not run sudo",
	"a terminal is required",
	"no tty present",
}

// sudoRefusal returns a *SudoError (classified) when r shows that sudo
// itself refused, nil when sudo ran the command (whatever its exit code).
func sudoRefusal(user, addr string, r Result) error {
	if r.ExitCode == 0 {
		return nil
	}
	stderr := string(r.Stderr)
	if r.ExitCode == 127 && strings.Contains(stderr, "sudo") && strings.Contains(stderr, "not found") {
		return sudoFail(&SudoError{User: user, Address: addr, Reason: "sudo is not installed", Result: r})
	}
	if r.ExitCode != 1 {
		return nil
	}
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		for _, m := range sudoRefusals {
			if strings.Contains(line, m) && (strings.HasPrefix(line, "sudo:") || strings.HasPrefix(line, "Sorry") || strings.HasPrefix(line, user)) {
				reason := safetext.Line(strings.TrimPrefix(line, "sudo: "))
				if m == "Sorry, try again." || m == "incorrect password attempt" {
					reason = "the sudo password is wrong"
				}
				return sudoFail(&SudoError{User: user, Address: addr, Reason: reason, Result: r})
			}
		}
	}
	return nil
}
