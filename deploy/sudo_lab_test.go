package deploy

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/deploylab/deploylab/payload"
	"github.com/deploylab/deploylab/remote"
)

// TestSudoPasswordLab: a student's usual VM user, whose sudo asks for a
// password (Debian's %sudo rule), on a real lab host with real sudo. Without
// a password up stops at facts with one line saying how to give it; a wrong
// one from the prompt is refused there too (and never printed); the right
// one is asked once and works; from the environment (--sudo-password-env)
// down runs its root commands through sudo -S.
func TestSudoPasswordLab(t *testing.T) {
	l := labtest.Start(t, labtest.Options{})
	h := l.Hosts()[0]
	const user, pw = "alumno", "s3cret pass'word"
	remoteRun(t, h, `useradd -m -s /bin/bash -G sudo `+user+` && echo `+q(user+":"+pw)+` | chpasswd
install -d -m 700 -o `+user+` -g `+user+` /home/`+user+`/.ssh
install -m 600 -o `+user+` -g `+user+` /home/deploy/.ssh/authorized_keys /home/`+user+`/.ssh/authorized_keys`)
	target := labTargets(h)
	target[0].Host.User = user

	// Up's facts task is what checks sudo; the build after it is stopped.
	errStop := errors.New("stop after facts")
	upFacts := func(t *testing.T, opts ...remote.Option) TaskResult {
		t.Helper()
		dial := func(ctx context.Context, rh remote.Host) (remote.Executor, error) {
			return remote.Dial(ctx, rh, append([]remote.Option{remote.WithSSHConfig(""), remote.WithAgent("")}, opts...)...)
		}
		rc, err := Up(verbCtx(t), target, UpOptions{Dial: dial,
			Build: func(context.Context, string) (*payload.Set, error) { return nil, errStop }})
		if err != nil {
			t.Fatal(err)
		}
		tasks := rc.Hosts[0].Tasks
		if len(tasks) == 0 || tasks[0].Task != TaskFacts {
			t.Fatalf("no facts task: %+v", tasks)
		}
		r := tasks[0]
		t.Logf("facts: %s %s%s (hint %q)", r.Status, r.Msg, r.Error, r.Hint)
		if strings.Contains(r.Msg+r.Error+r.Hint, pw) || strings.Contains(r.Msg+r.Error+r.Hint, "wrong-one") {
			t.Errorf("a password is in the task's output: %+v", r)
		}
		if r.Status == Failed && fail.KindOf(rc.Hosts[0].Err()) != fail.Auth {
			t.Errorf("facts failed with kind %v, want an authentication error", fail.KindOf(rc.Hosts[0].Err()))
		}
		return r
	}
	prompt := func(answer string, calls *atomic.Int32) remote.Option {
		return remote.WithSudoPasswordPrompt(func(_ context.Context, u, _ string) (string, error) {
			calls.Add(1)
			if u != user {
				t.Errorf("sudo prompt for user %q, want %q", u, user)
			}
			return answer, nil
		})
	}

	t.Run("no password", func(t *testing.T) {
		r := upFacts(t)
		if r.Status != Failed || !strings.Contains(r.Error, "a password is required") || !strings.Contains(r.Hint, "--sudo-password-env") {
			t.Errorf("facts: %+v, want a failure saying a password is required and how to give it", r)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		var calls atomic.Int32
		r := upFacts(t, prompt("wrong-one", &calls))
		if r.Status != Failed || !strings.Contains(r.Error, "the sudo password is wrong") {
			t.Errorf("facts: %+v, want sudo's refusal of the wrong password", r)
		}
		if calls.Load() != 1 {
			t.Errorf("asked %d times, want once", calls.Load())
		}
	})
	t.Run("password asked", func(t *testing.T) {
		var calls atomic.Int32
		r := upFacts(t, prompt(pw, &calls))
		if r.Status != OK {
			t.Errorf("facts: %+v, want ok", r)
		}
		if calls.Load() != 1 {
			t.Errorf("asked %d times, want once", calls.Load())
		}
	})
	t.Run("password from the environment", func(t *testing.T) {
		t.Setenv("DEPLOYLAB_TEST_SUDO", pw)
		tg := append([]Target(nil), target...)
		tg[0].Host.SudoPasswordEnv = "DEPLOYLAB_TEST_SUDO"
		rc, err := Down(verbCtx(t), tg, DownOptions{Dial: labDial})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rc.Hosts[0].Tasks {
			t.Logf("down %s: %s %s%s", r.Task, r.Status, r.Msg, r.Error)
		}
		if err := rc.Err(); err != nil {
			t.Errorf("down as %s with the sudo password from the environment: %v", user, err)
		}
	})
}
