package remote

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/deploylab/deploylab/internal/syncbuf"
)

// echoOn reports whether the terminal echoes what is typed.
func echoOn(t *testing.T, tty *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO != 0
}

// waitEcho waits until the terminal's echo is want (a prompt switched it).
func waitEcho(t *testing.T, tty *os.File, want bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for echoOn(t, tty) != want {
		if time.Now().After(deadline) {
			t.Fatalf("echo never became %v", want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReadSecretPTY asks for secrets on a real pseudo-terminal: a cancelled
// prompt gives echo back and leaves no reader behind, so the next prompt
// gets the next line (and that line is not echoed), and echo is on again
// after each prompt, only then.
func TestReadSecretPTY(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	defer tty.Close()
	var screen syncbuf.Buffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	if !echoOn(t, tty) {
		t.Fatal("a new pty should echo")
	}

	// 1. A prompt cancelled while waiting for the user.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := ReadSecret(ctx, tty, &screen, "first: ")
		done <- err
	}()
	waitEcho(t, tty, false)
	ptmx.Write([]byte("half-typ")) // typed, no Enter yet
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled prompt: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cancelled prompt did not return")
	}
	if !echoOn(t, tty) {
		t.Fatal("echo not restored after a cancelled prompt")
	}

	// 2. The next prompt gets the next line, unechoed.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	type answer struct {
		b   []byte
		err error
	}
	got := make(chan answer, 1)
	go func() {
		b, err := ReadSecret(ctx2, tty, &screen, "second: ")
		got <- answer{b, err}
	}()
	waitEcho(t, tty, false)
	time.Sleep(100 * time.Millisecond) // a stray reader would restore echo now
	if echoOn(t, tty) {
		t.Fatal("echo came back on during the second prompt")
	}
	ptmx.Write([]byte("s3cond-secret\n"))
	select {
	case a := <-got:
		if a.err != nil || string(a.b) != "s3cond-secret" {
			t.Fatalf("second prompt: %q %v", a.b, a.err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("the second prompt never got its line (a cancelled prompt's reader swallowed it?)")
	}
	if !echoOn(t, tty) {
		t.Fatal("echo not restored after the second prompt")
	}
	time.Sleep(100 * time.Millisecond)
	s := screen.String()
	if strings.Contains(s, "s3cond-secret") || strings.Contains(s, "half-typ") {
		t.Fatalf("a secret was echoed: %q", s)
	}
	if !strings.Contains(s, "first: ") || !strings.Contains(s, "second: ") {
		t.Fatalf("prompts not shown: %q", s)
	}

	// 3. A line typed after the prompts is the terminal's again (echoed):
	// nothing is left reading it.
	ptmx.Write([]byte("visible\n"))
	buf := make([]byte, 64)
	tty.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := tty.Read(buf)
	if err != nil || string(buf[:n]) != "visible\n" {
		t.Fatalf("next line read by the program: %q %v", buf[:n], err)
	}
}
