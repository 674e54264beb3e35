package remote

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func fileOwner(t *testing.T, p string) string {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.LookupId(strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)))
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

// executors runs f against a Client on the real sshd and against Local:
// both must behave the same.
func executors(t *testing.T, f func(t *testing.T, ex Executor)) {
	t.Run("ssh", func(t *testing.T) { f(t, dialTest(t, testHost())) })
	t.Run("local", func(t *testing.T) { f(t, &Local{}) })
}

func TestUploadSemantics(t *testing.T) {
	executors(t, func(t *testing.T, ex Executor) {
		ctx := testCtx(t)
		dir := t.TempDir()
		dst := filepath.Join(dir, "sub", "dir", "app.bin") // parents created
		src := filepath.Join(t.TempDir(), "src")
		os.WriteFile(src, []byte("version 1\n"), 0o600)

		steps := []struct {
			name        string
			content     string
			mode        fs.FileMode
			wantChanged bool
		}{
			{"new file", "version 1\n", 0o755, true},
			{"identical: skipped", "version 1\n", 0o755, false},
			{"mode only", "version 1\n", 0o750, true},
			{"identical again", "version 1\n", 0o750, false},
			{"new content", "version 2\n", 0o750, true},
			{"setuid bit", "version 2\n", 0o4750 | fs.ModeSetuid, true},
		}
		for _, s := range steps {
			os.WriteFile(src, []byte(s.content), 0o600)
			mode := s.mode &^ 0o4000 // FileMode spells setuid as ModeSetuid
			changed, err := ex.Upload(ctx, src, dst, mode)
			if err != nil {
				t.Fatalf("%s: %v", s.name, err)
			}
			if changed != s.wantChanged {
				t.Errorf("%s: changed=%v, want %v", s.name, changed, s.wantChanged)
			}
			if got := mustRead(t, dst); got != s.content {
				t.Errorf("%s: content %q", s.name, got)
			}
			st, _ := os.Stat(dst)
			if st.Mode()&(fs.ModePerm|fs.ModeSetuid) != mode {
				t.Errorf("%s: mode %v, want %v", s.name, st.Mode(), mode)
			}
		}
		// No temporary files left next to the target.
		entries, _ := os.ReadDir(filepath.Dir(dst))
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the file", len(entries))
		}

		// WriteFile and UploadReader (non-seekable) share the semantics.
		cfg := filepath.Join(dir, "app.conf")
		for i, want := range []bool{true, false} {
			changed, err := ex.WriteFile(ctx, cfg, []byte("port=3000\n"), 0o644)
			if err != nil || changed != want {
				t.Fatalf("WriteFile #%d: changed=%v %v", i, changed, err)
			}
		}
		type uploader interface {
			UploadReader(ctx context.Context, r io.Reader, size int64, p string, mode fs.FileMode, opts ...FileOption) (bool, error)
		}
		pr, pw := io.Pipe()
		go func() { pw.Write([]byte("port=3001\n")); pw.Close() }()
		changed, err := ex.(uploader).UploadReader(ctx, pr, -1, cfg, 0o644)
		if err != nil || !changed || mustRead(t, cfg) != "port=3001\n" {
			t.Fatalf("UploadReader from a pipe: %v %v", changed, err)
		}
		if _, err := ex.(uploader).UploadReader(ctx, strings.NewReader("abc"), 5, cfg, 0o644); err == nil {
			t.Error("size mismatch accepted")
		}

		// As root with an owner (the test runs as root: RunSudo runs directly,
		// through the same install script a sudo user gets).
		owned := filepath.Join(dir, "root", "owned.conf")
		changed, err = ex.WriteFile(ctx, owned, []byte("x\n"), 0o600, Owner("nobody", ""))
		if err != nil || !changed || fileOwner(t, owned) != "nobody" {
			t.Fatalf("Owner(nobody): %v %v", changed, err)
		}
		changed, err = ex.WriteFile(ctx, owned, []byte("x\n"), 0o600, AsRoot())
		if err != nil || !changed || fileOwner(t, owned) != "root" {
			t.Fatalf("AsRoot after Owner: changed=%v %v owner %s", changed, err, fileOwner(t, owned))
		}
		changed, err = ex.WriteFile(ctx, owned, []byte("x\n"), 0o600, AsRoot())
		if err != nil || changed {
			t.Fatalf("AsRoot identical: changed=%v %v", changed, err)
		}
		entries, _ = os.ReadDir(filepath.Dir(owned))
		if len(entries) != 1 {
			t.Errorf("root directory holds %d entries, want only the file", len(entries))
		}

		// A directory in the way is an error, not a silent overwrite.
		os.Mkdir(filepath.Join(dir, "adir"), 0o755)
		if _, err := ex.WriteFile(ctx, filepath.Join(dir, "adir"), []byte("x"), 0o644); err == nil {
			t.Error("writing over a directory succeeded")
		}
	})
}

func TestUploadAtomic(t *testing.T) {
	executors(t, func(t *testing.T, ex Executor) {
		ctx := testCtx(t)
		dst := filepath.Join(t.TempDir(), "big.bin")
		// Two 24 MiB versions; a reader polling the target must only ever
		// see one or the other in full.
		a := bytes.Repeat([]byte("A"), 24<<20)
		b := bytes.Repeat([]byte("B"), 24<<20)
		sumA, sumB := sha256.Sum256(a), sha256.Sum256(b)
		if _, err := ex.WriteFile(ctx, dst, a, 0o644); err != nil {
			t.Fatal(err)
		}
		var stop atomic.Bool
		var bad atomic.Value
		var reads atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				data, err := os.ReadFile(dst)
				if err != nil {
					bad.Store(err.Error())
					return
				}
				reads.Add(1)
				if s := sha256.Sum256(data); s != sumA && s != sumB {
					bad.Store("partial file seen: " + strconv.Itoa(len(data)) + " bytes")
					return
				}
			}
		}()
		for i := 0; i < 4; i++ {
			data := b
			if i%2 == 1 {
				data = a
			}
			if changed, err := ex.WriteFile(ctx, dst, data, 0o644); err != nil || !changed {
				t.Fatalf("write %d: %v %v", i, changed, err)
			}
		}
		stop.Store(true)
		wg.Wait()
		if v := bad.Load(); v != nil {
			t.Fatal(v)
		}
		if reads.Load() == 0 {
			t.Fatal("the reader never read the file")
		}
		t.Logf("%d reads during 4 uploads, all whole", reads.Load())
	})
}

func TestUploadCancelled(t *testing.T) {
	executors(t, func(t *testing.T, ex Executor) {
		dir := t.TempDir()
		dst := filepath.Join(dir, "big.bin")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		data := bytes.Repeat([]byte("C"), 8<<20)
		r := &cancelMidUpload{Reader: bytes.NewReader(data), after: 4 << 20, cancel: cancel}
		type uploader interface {
			UploadReader(ctx context.Context, r io.Reader, size int64, p string, mode fs.FileMode, opts ...FileOption) (bool, error)
		}
		_, err := ex.(uploader).UploadReader(ctx, r, int64(len(data)), dst, 0o644)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			t.Errorf("left behind after cancel: %s", e.Name())
		}
	})
}

// cancelMidUpload cancels once `after` bytes were read after the rewind
// that follows hashing, i.e. in the middle of the transfer.
type cancelMidUpload struct {
	*bytes.Reader
	rewound bool
	read    int
	after   int
	cancel  func()
}

func (c *cancelMidUpload) Seek(off int64, whence int) (int64, error) {
	if whence == io.SeekStart {
		c.rewound, c.read = true, 0
	}
	return c.Reader.Seek(off, whence)
}

func (c *cancelMidUpload) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	n, err := c.Reader.Read(p)
	if c.rewound {
		c.read += n
		if c.read >= c.after {
			c.cancel()
		}
	}
	return n, err
}

func TestLocalRun(t *testing.T) {
	l := &Local{}
	ctx := testCtx(t)
	r, err := l.Run(ctx, "echo out; echo err >&2; exit 4")
	if err != nil || string(r.Stdout) != "out\n" || string(r.Stderr) != "err\n" || r.ExitCode != 4 {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = l.Run(ctx, "kill -TERM $$")
	if err != nil || r.ExitCode != 128+15 {
		t.Fatalf("signal exit: %d %v", r.ExitCode, err)
	}
	r, err = l.RunSudo(ctx, "id -u")
	if err != nil || string(r.Stdout) != "0\n" {
		t.Fatalf("RunSudo: %q %v", r.Stdout, err)
	}
	// Cancel kills the whole process group, grandchildren included.
	marker := "sleep 62." + strconv.Itoa(int(time.Now().UnixNano()%1000000))
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = l.Run(cctx, "("+marker+"; true) & wait")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("took %s", d)
	}
	waitGone(t, marker)
}

func TestStateScriptOddNames(t *testing.T) {
	executors(t, func(t *testing.T, ex Executor) {
		dir := t.TempDir()
		for _, name := range []string{"with space", "quote'd", "$dollar", "-dash", "back\\slash"} {
			p := filepath.Join(dir, name)
			for i, want := range []bool{true, false} {
				changed, err := ex.WriteFile(testCtx(t), p, []byte(name), 0o644)
				if err != nil || changed != want {
					t.Fatalf("%q #%d: changed=%v %v", name, i, changed, err)
				}
			}
			if mustRead(t, p) != name {
				t.Errorf("%q: wrong content", name)
			}
		}
	})
}

// BenchmarkUpload measures an SFTP upload of 16 MiB over loopback (content
// alternates so that nothing is skipped), against Local's plain file write.
func BenchmarkUpload(b *testing.B) {
	data := [2][]byte{bytes.Repeat([]byte("x"), 16<<20), bytes.Repeat([]byte("y"), 16<<20)}
	run := func(b *testing.B, ex Executor) {
		dst := filepath.Join(b.TempDir(), "bench.bin")
		ctx := context.Background()
		b.SetBytes(16 << 20)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := ex.WriteFile(ctx, dst, data[i%2], 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("ssh", func(b *testing.B) {
		c, err := Dial(context.Background(), testHost(), baseOpts()...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		run(b, c)
	})
	b.Run("local", func(b *testing.B) { run(b, &Local{}) })
}
