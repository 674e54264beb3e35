package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/golden"
)

// TestAptSources reads apt configurations (one-line and deb822 files,
// disabled files and stanzas, options in brackets) and checks the mirror
// given to debootstrap, the image's sources.list and the apt settings
// copied, against testdata/<case>.golden.
func TestAptSources(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wantErr string
	}{
		{name: "etc-mixed"},
		{name: "etc-none", wantErr: "no apt source for debian bookworm main"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etc := filepath.Join("testdata", tc.name)
			srcs, err := aptSources(etc)
			if err != nil {
				t.Fatal(err)
			}
			mirror, lines, err := debianMirror(srcs, "bookworm")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			snippets, err := aptConfSnippets(etc)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "mirror: %s\nsources.list:\n", mirror)
			for _, l := range lines {
				fmt.Fprintf(&b, "  %s\n", l)
			}
			b.WriteString("apt.conf.d copied:\n")
			var names []string
			for name := range snippets {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				fmt.Fprintf(&b, "  %s\n", name)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".golden"), []byte(b.String()))
		})
	}
}

// TestBuildOnce runs the image cache's build-and-rename under concurrent
// callers, failures and cancellation.
func TestBuildOnce(t *testing.T) {
	ctx := context.Background()
	t.Run("concurrent callers build once", func(t *testing.T) {
		cache := t.TempDir()
		var builds atomic.Int32
		build := func(ctx context.Context, tmp string) error {
			builds.Add(1)
			time.Sleep(200 * time.Millisecond)
			if err := os.MkdirAll(filepath.Join(tmp, "etc"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(tmp, "etc", "os-release"), []byte("x"), 0o644)
		}
		var wg sync.WaitGroup
		paths := make([]string, 6)
		errs := make([]error, 6)
		for i := range paths {
			wg.Add(1)
			go func() {
				defer wg.Done()
				paths[i], errs[i] = buildOnce(ctx, cache, "img", quiet(), build)
			}()
		}
		wg.Wait()
		for i := range paths {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if paths[i] != filepath.Join(cache, "images", "img") {
				t.Errorf("path %q", paths[i])
			}
		}
		if n := builds.Load(); n != 1 {
			t.Errorf("built %d times, want 1", n)
		}
		if _, err := os.Stat(filepath.Join(cache, "images", "img", "etc", "os-release")); err != nil {
			t.Error(err)
		}
		assertEmptyDir(t, filepath.Join(cache, "tmp"))
	})
	t.Run("failed build leaves nothing", func(t *testing.T) {
		cache := t.TempDir()
		_, err := buildOnce(ctx, cache, "img", quiet(), func(ctx context.Context, tmp string) error {
			os.MkdirAll(filepath.Join(tmp, "half"), 0o755)
			return errors.New("mirror unreachable")
		})
		if err == nil || !strings.Contains(err.Error(), "mirror unreachable") {
			t.Fatalf("err = %v", err)
		}
		assertEmptyDir(t, filepath.Join(cache, "tmp"))
		assertEmptyDir(t, filepath.Join(cache, "images"))
	})
	t.Run("cancelled build leaves nothing and says so", func(t *testing.T) {
		cache := t.TempDir()
		cctx, cancel := context.WithCancel(ctx)
		_, err := buildOnce(cctx, cache, "img", quiet(), func(ctx context.Context, tmp string) error {
			os.MkdirAll(filepath.Join(tmp, "half"), 0o755)
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) || fail.KindOf(err) != fail.Interrupted {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		assertEmptyDir(t, filepath.Join(cache, "tmp"))
		assertEmptyDir(t, filepath.Join(cache, "images"))
	})
	t.Run("leftover of a killed build is cleaned", func(t *testing.T) {
		cache := t.TempDir()
		os.MkdirAll(filepath.Join(cache, "tmp", "img.dead", "etc"), 0o755)
		os.MkdirAll(filepath.Join(cache, "images", "img", "etc"), 0o755) // unfinished: no marker
		p, err := buildOnce(ctx, cache, "img", quiet(), func(ctx context.Context, tmp string) error {
			return os.MkdirAll(filepath.Join(tmp, "new"), 0o755)
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(p, "new")); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(filepath.Join(p, "etc")); !os.IsNotExist(err) {
			t.Errorf("unfinished image not replaced: %v", err)
		}
		assertEmptyDir(t, filepath.Join(cache, "tmp"))
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func quiet() discard { return discard{} }

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("%s not empty: %v", dir, names)
	}
}

// TestRemoveTreeStaysOnItsFileSystem checks that removing a build tree
// never empties a file system mounted below it (a bind of /dev left by a
// killed debootstrap would otherwise be wiped).
func TestRemoveTreeStaysOnItsFileSystem(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs: run it as root")
	}
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	precious := filepath.Join(dir, "precious")
	os.MkdirAll(filepath.Join(tree, "dev"), 0o755)
	os.MkdirAll(precious, 0o755)
	os.WriteFile(filepath.Join(precious, "keep"), []byte("x"), 0o644)
	if err := run(context.Background(), "mount", "--bind", precious, filepath.Join(tree, "dev")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountAll(tree) })
	if err := removeTree(tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(precious, "keep")); err != nil {
		t.Errorf("the bind-mounted directory was emptied: %v", err)
	}
	if _, err := os.Stat(tree); !os.IsNotExist(err) {
		t.Errorf("tree still there: %v", err)
	}
}

// TestPrereqs: without the tools on PATH, the error names them and the
// packages to install, in one line, as a Prereq failure.
func TestPrereqs(t *testing.T) {
	if os.Geteuid() != 0 {
		err := checkPrereqs()
		if fail.KindOf(err) != fail.Prereq || !strings.Contains(err.Error(), "needs root") {
			t.Fatalf("not root: err = %v", err)
		}
		return
	}
	t.Setenv("PATH", t.TempDir())
	err := checkPrereqs()
	if fail.KindOf(err) != fail.Prereq {
		t.Fatalf("err = %v, want a Prereq failure", err)
	}
	msg, hint := err.Error(), fail.HintOf(err)
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "systemd-nspawn and debootstrap") {
		t.Errorf("message %q", msg)
	}
	if !strings.HasPrefix(hint, "apt-get install systemd-container debootstrap") {
		t.Errorf("hint %q", hint)
	}
}

// TestSlots allocates subnets in a private run directory: distinct slots,
// stale claims (maker dead, no namespace) taken back, live ones kept.
func TestSlots(t *testing.T) {
	old := runDir
	runDir = t.TempDir()
	t.Cleanup(func() { runDir = old })
	ctx := context.Background()
	a, err := allocSlot(ctx, "aaaa", "/x", "deploylab-aaaa-1")
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocSlot(ctx, "aaaa", "/x", "deploylab-aaaa-2")
	if err != nil {
		t.Fatal(err)
	}
	if a != 1 || b != 2 {
		t.Errorf("slots %d, %d; want 1, 2", a, b)
	}
	if g, h := slotAddrs(1); g != "10.77.1.1" || h != "10.77.1.2" {
		t.Errorf("slot 1: %s %s", g, h)
	}
	if g, h := slotAddrs(300); g != "10.78.44.1" || h != "10.78.44.2" {
		t.Errorf("slot 300: %s %s", g, h)
	}
	// A claim by a dead process whose namespace does not exist is stale.
	os.WriteFile(slotPath(1), []byte(`{"lab":"dead","pid":999999999,"start":1,"netns":"deploylab-dead-1"}`), 0o644)
	c, err := allocSlot(ctx, "bbbb", "/y", "deploylab-bbbb-1")
	if err != nil {
		t.Fatal(err)
	}
	if c != 1 {
		t.Errorf("stale slot not reused: got %d", c)
	}
	// Freeing checks ownership.
	if err := freeSlot(2, "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(slotPath(2)); err != nil {
		t.Errorf("freeSlot removed another lab's slot: %v", err)
	}
	if err := freeSlotsOf("aaaa"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(slotPath(2)); !os.IsNotExist(err) {
		t.Errorf("slot 2 not freed: %v", err)
	}
}

// TestPruneImages: building an image removes the variant's outdated images,
// but not one a running lab host has mounted, nor the other variant's.
func TestPruneImages(t *testing.T) {
	cache := t.TempDir()
	for _, name := range []string{"base-old1", "base-old2", "node-old1"} {
		if err := os.MkdirAll(filepath.Join(cache, "images", name, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mounted := filepath.Join(cache, "images", "base-old2")
	mountinfo := "24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n" +
		"99 24 0:50 / /var/lib/deploylab/lab/hosts/lab1/root rw,relatime shared:60 - overlay overlay rw,lowerdir=" + mounted + ",upperdir=/u,workdir=/w,uuid=on\n"
	if !imageMounted(mountinfo, mounted) || imageMounted(mountinfo, filepath.Join(cache, "images", "base-old1")) {
		t.Fatal("imageMounted misreads mountinfo")
	}
	if !imageMounted("1 2 0:5 / /r rw - overlay none rw,lowerdir=/x:"+mounted+"/,upperdir=/u", mounted) {
		t.Error("imageMounted: a second lower directory (with a trailing slash) not seen")
	}
	build := func(ctx context.Context, tmp string) error { return os.MkdirAll(filepath.Join(tmp, "etc"), 0o755) }
	var log bytes.Buffer
	if _, err := buildOnce(context.Background(), cache, "base-new", &log, build); err != nil {
		t.Fatal(err)
	}
	// buildOnce reads this machine's mountinfo (no overlay of base-old2):
	// check the rule with the fake one too.
	got, _ := filepath.Glob(filepath.Join(cache, "images", "*"))
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	if want := []string{"base-new", "node-old1"}; !slices.Equal(got, want) {
		t.Errorf("images after building base-new: %v, want %v", got, want)
	}
	if !strings.Contains(log.String(), "removed the outdated image base-old1") {
		t.Errorf("log: %q", log.String())
	}
	if err := os.MkdirAll(mounted, 0o755); err != nil {
		t.Fatal(err)
	}
	if removed := pruneImages(cache, "base-new", mountinfo); len(removed) != 0 {
		t.Errorf("pruned %v, a mounted image among them", removed)
	}
	if _, err := os.Stat(mounted); err != nil {
		t.Errorf("the mounted image is gone: %v", err)
	}
}
