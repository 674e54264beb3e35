package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/deploylab/deploylab/internal/fail"
)

// promptMu serialises prompts: with many hosts dialled at once, one question
// at a time reaches the terminal, and one reader at a time reads it.
var promptMu sync.Mutex

// maxSecret bounds a typed secret.
const maxSecret = 4096

// pollEvery is how often a waiting prompt looks at its context.
const pollEvery = 50 * time.Millisecond

// ReadSecret writes prompt to out and reads a line from the terminal in
// without echoing it. It fails (fail.Usage) when in is not a terminal, and
// returns ctx.Err() within pollEvery when ctx is cancelled. The line is read
// by this call itself (no goroutine is left reading after it returns), the
// terminal's settings are restored exactly once before it returns, and a
// half-typed line of a cancelled prompt is discarded, so it can neither
// leak into nor swallow what is typed next.
func ReadSecret(ctx context.Context, in *os.File, out io.Writer, prompt string) ([]byte, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		return nil, fail.Errorf(fail.Usage, "run it from a terminal, or give the secret in an environment variable",
			"cannot ask for a secret: standard input is not a terminal")
	}
	promptMu.Lock()
	defer promptMu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	fmt.Fprint(out, prompt)
	defer fmt.Fprintln(out)

	var line []byte
	buf := make([]byte, 256)
	defer clear(buf)
	for {
		if err := ctx.Err(); err != nil {
			// Drop what was typed so far: it is part of a secret.
			unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
			clear(line)
			return nil, err
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, int(pollEvery/time.Millisecond))
		if errors.Is(err, unix.EINTR) || n == 0 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read secret: %w", err)
		}
		// Canonical mode: readable means a whole line (or end of input).
		m, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read secret: %w", err)
		}
		if m == 0 {
			clear(line)
			return nil, fmt.Errorf("read secret: %w", io.EOF)
		}
		line = append(line, buf[:m]...)
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			secret := bytes.Clone(bytes.TrimSuffix(line[:i], []byte("\r")))
			clear(line)
			return secret, nil
		}
		if len(line) > maxSecret {
			unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
			clear(line)
			return nil, errors.New("read secret: line too long")
		}
	}
}

// TerminalPassphrase asks for key passphrases on the terminal (stdin, with
// the prompt on stderr).
func TerminalPassphrase() PassphraseFunc {
	return func(ctx context.Context, keyFile string) ([]byte, error) {
		return ReadSecret(ctx, os.Stdin, os.Stderr, fmt.Sprintf("Enter passphrase for key '%s': ", keyFile))
	}
}

// TerminalSudoPassword asks for the sudo password on the terminal, as
// "[sudo] password for user@address: ".
func TerminalSudoPassword() PasswordFunc { return terminalPassword("[sudo] password for %s@%s: ") }

// TerminalPassword asks for login passwords on the terminal.
func TerminalPassword() PasswordFunc { return terminalPassword("%s@%s's password: ") }

// terminalPassword asks on the terminal (no echo), with prompt's %s filled
// in by the user and the address; an empty answer is an error.
func terminalPassword(prompt string) PasswordFunc {
	return func(ctx context.Context, user, address string) (string, error) {
		b, err := ReadSecret(ctx, os.Stdin, os.Stderr, fmt.Sprintf(prompt, user, address))
		if err != nil {
			return "", err
		}
		if len(b) == 0 {
			return "", errors.New("empty password")
		}
		return string(b), nil
	}
}

// TerminalPrompts are the options that ask on the terminal for what a run
// needs: encrypted keys' passphrases, login passwords (for hosts whose key
// is refused and that have no password configured) and sudo passwords (when
// sudo wants one and none is configured). One prompt at a time however many
// hosts connect at once; give the same options to every Dial of the run, so
// that a key's passphrase is asked once.
func TerminalPrompts() []Option {
	var mu sync.Mutex
	askPassphrase, askPassword, askSudo := TerminalPassphrase(), TerminalPassword(), TerminalSudoPassword()
	return []Option{
		WithPassphrase(func(ctx context.Context, keyFile string) ([]byte, error) {
			mu.Lock()
			defer mu.Unlock()
			return askPassphrase(ctx, keyFile)
		}),
		WithPasswordPrompt(func(ctx context.Context, user, address string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			return askPassword(ctx, user, address)
		}),
		WithSudoPasswordPrompt(func(ctx context.Context, user, address string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			return askSudo(ctx, user, address)
		}),
	}
}
