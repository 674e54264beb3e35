package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/term"

	"github.com/deploylab/deploylab/internal/fail"
)

// promptMu serialises prompts: with many hosts dialled at once, one question
// at a time reaches the terminal.
var promptMu sync.Mutex

// ReadSecret writes prompt to out and reads a line from the terminal in
// without echoing it. It fails (fail.Usage) when in is not a terminal, and
// returns ctx.Err() at once when ctx is cancelled, restoring the terminal.
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
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("read secret: %w", err)
	}
	fmt.Fprint(out, prompt)
	type answer struct {
		b   []byte
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		b, err := term.ReadPassword(fd)
		ch <- answer{b, err}
	}()
	select {
	case a := <-ch:
		fmt.Fprintln(out)
		if a.err != nil {
			return nil, fmt.Errorf("read secret: %w", a.err)
		}
		return a.b, nil
	case <-ctx.Done():
		// The reading goroutine stays blocked until a line comes; give the
		// terminal its echo back now.
		term.Restore(fd, state)
		fmt.Fprintln(out)
		return nil, ctx.Err()
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
