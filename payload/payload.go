// Package payload provides the programs deploylab installs on a VM — the
// single server (sumserver), the clustered server (sumcluster) and the load
// generator (loadgen) — as static Linux binaries for the VM's architecture,
// built on the workstation so that the VM needs no toolchain.
//
// Binaries come from one of two places, in this order:
//
//   - binaries embedded in deploylab at release time: build deploylab with
//     -tags embedpayload after `go generate ./payload` has written
//     payload/dist/linux-<arch>/<program> (see gen_dist.go); a teacher with
//     only the released deploylab binary needs no Go toolchain;
//   - a cross-compilation (CGO_ENABLED=0, -trimpath) of this source tree with
//     the local go command, cached by a hash of the payload's sources, the
//     toolchain version, the architecture and the flags in
//     $XDG_CACHE_HOME/deploylab/payload (~/.cache/deploylab/payload).
package payload

//go:generate go run gen_dist.go

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// The payload's programs, by the name they have on the VM.
const (
	Sumserver  = "sumserver"
	Sumcluster = "sumcluster"
	Loadgen    = "loadgen"
)

// Programs are the payload's programs and the packages they are built from,
// relative to the module root.
var Programs = map[string]string{
	Sumserver:  "./payload/sumserver/cmd/sumserver",
	Sumcluster: "./payload/cluster/cmd/sumcluster",
	Loadgen:    "./payload/loadgen/cmd/loadgen",
}

// Arches are the VM architectures (GOARCH) the payload is built for.
var Arches = []string{"amd64", "arm64"}

// ModulePath is the module whose sources Build compiles.
const ModulePath = "github.com/deploylab/deploylab"

// Origin says where a Set came from.
type Origin string

const (
	// Embedded: compiled into deploylab at release time.
	Embedded Origin = "embedded"
	// Built: cross-compiled now.
	Built Origin = "built"
	// Cached: cross-compiled earlier from the same sources.
	Cached Origin = "cached"
)

// Binary is one program of a Set.
type Binary struct {
	Name string
	Data []byte
	// Sum is the SHA-256 of Data, in hex.
	Sum string
}

// Set is the payload for one architecture.
type Set struct {
	GOARCH string
	// Binaries are sorted by name.
	Binaries []Binary
	// Hash identifies the set's content (names and bytes): 16 hex digits.
	// Equal hashes mean identical binaries; it names the release directory
	// on the VM.
	Hash   string
	Origin Origin
	// Took is how long getting the set took (the build, when Built).
	Took time.Duration
}

// Binary returns the program named name.
func (s *Set) Binary(name string) (Binary, bool) {
	for _, b := range s.Binaries {
		if b.Name == name {
			return b, true
		}
	}
	return Binary{}, false
}

// Size is the total size of the binaries in bytes.
func (s *Set) Size() int64 {
	var n int64
	for _, b := range s.Binaries {
		n += int64(len(b.Data))
	}
	return n
}

// Options say how to get a Set.
type Options struct {
	// GOARCH is the VM's architecture: amd64 or arm64.
	GOARCH string
	// SourceDir is the module root to build from; "" finds it (see
	// FindSource).
	SourceDir string
	// CacheDir holds built sets; "" means os.UserCacheDir()/deploylab/payload.
	CacheDir string
	// LDFlags are extra linker flags (e.g. "-X main.version=1.2"); they are
	// part of the cache key.
	LDFlags string
	// NoEmbedded builds from source even when binaries are embedded.
	NoEmbedded bool
	// Go is the go command; "" finds it (PATH, then GOROOT/bin, then
	// /usr/local/go/bin).
	Go string
}

// Binaries returns the payload's programs for goarch, name → content: the
// embedded ones when deploylab was released with them, else a (cached)
// cross-compilation of the source tree.
func Binaries(ctx context.Context, goarch string) (map[string][]byte, error) {
	s, err := Build(ctx, Options{GOARCH: goarch})
	if err != nil {
		return nil, err
	}
	m := make(map[string][]byte, len(s.Binaries))
	for _, b := range s.Binaries {
		m[b.Name] = b.Data
	}
	return m, nil
}

// Program returns one of the payload's programs (Loadgen, Sumcluster, ...)
// for goarch, from Binaries.
func Program(ctx context.Context, goarch, name string) ([]byte, error) {
	bins, err := Binaries(ctx, goarch)
	if err != nil {
		return nil, err
	}
	b, ok := bins[name]
	if !ok {
		return nil, fmt.Errorf("the payload for %s has no %s", goarch, name)
	}
	return b, nil
}

// Build returns the payload for o.GOARCH; see the package comment for where
// it comes from.
func Build(ctx context.Context, o Options) (*Set, error) {
	start := time.Now()
	if !slices.Contains(Arches, o.GOARCH) {
		return nil, fail.Errorf(fail.Failed, "deploylab deploys to amd64 and arm64 VMs",
			"payload: architecture %q is not supported (want %s)", o.GOARCH, strings.Join(Arches, " or "))
	}
	if !o.NoEmbedded && embedded != nil {
		s, err := fromFS(embedded, o.GOARCH)
		if err == nil {
			s.Took = time.Since(start)
			return s, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		// This architecture was not embedded: build it if we can.
	}
	s, err := build(ctx, o)
	if err != nil {
		return nil, err
	}
	s.Took = time.Since(start)
	return s, nil
}

// embedded holds dist/ when deploylab is built with -tags embedpayload.
var embedded fs.FS

// fromFS reads linux-<goarch>/<program> for every program from fsys.
func fromFS(fsys fs.FS, goarch string) (*Set, error) {
	s := &Set{GOARCH: goarch, Origin: Embedded}
	for name := range Programs {
		data, err := fs.ReadFile(fsys, "linux-"+goarch+"/"+name)
		if err != nil {
			return nil, fmt.Errorf("payload: embedded %s for %s: %w", name, goarch, err)
		}
		s.Binaries = append(s.Binaries, newBinary(name, data))
	}
	s.finish()
	return s, nil
}

func newBinary(name string, data []byte) Binary {
	sum := sha256.Sum256(data)
	return Binary{Name: name, Data: data, Sum: hex.EncodeToString(sum[:])}
}

// finish sorts the binaries and computes the hash.
func (s *Set) finish() {
	sort.Slice(s.Binaries, func(i, j int) bool { return s.Binaries[i].Name < s.Binaries[j].Name })
	h := sha256.New()
	for _, b := range s.Binaries {
		fmt.Fprintf(h, "%s %s\n", b.Name, b.Sum)
	}
	s.Hash = hex.EncodeToString(h.Sum(nil))[:16]
}

// buildMu serialises builds in this process: two hosts of the same
// architecture wait for one build.
var buildMu sync.Mutex

func build(ctx context.Context, o Options) (*Set, error) {
	src := o.SourceDir
	if src == "" {
		var err error
		if src, err = FindSource(); err != nil {
			return nil, err
		}
	}
	gocmd, err := findGo(o.Go)
	if err != nil {
		return nil, err
	}
	cache := o.CacheDir
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fail.New(fail.Prereq, "set $HOME or $XDG_CACHE_HOME", fmt.Errorf("payload: no cache directory: %w", err))
		}
		cache = filepath.Join(dir, "deploylab", "payload")
	}

	buildMu.Lock()
	defer buildMu.Unlock()
	goVersion, err := goEnv(ctx, gocmd, "GOVERSION")
	if err != nil {
		return nil, err
	}
	srcHash, err := SourceHash(src)
	if err != nil {
		return nil, err
	}
	key := cacheKey(srcHash, goVersion, o.GOARCH, o.LDFlags)
	dir := filepath.Join(cache, key)
	if s, err := readDir(dir, o.GOARCH); err == nil {
		s.Origin = Cached
		return s, nil
	}

	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	tmp, err := os.MkdirTemp(cache, ".build-*")
	if err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := goBuild(ctx, gocmd, src, tmp, o.GOARCH, o.LDFlags); err != nil {
		return nil, err
	}
	s, err := readDir(tmp, o.GOARCH)
	if err != nil {
		return nil, err
	}
	// Publish the whole directory at once; a concurrent deploylab that
	// got there first wins, with the same content.
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) && !isNotEmpty(err) {
		return nil, fmt.Errorf("payload: cache: %w", err)
	}
	s.Origin = Built
	return s, nil
}

func isNotEmpty(err error) bool {
	var le *os.LinkError
	return errors.As(err, &le) && strings.Contains(le.Err.Error(), "not empty")
}

// cacheKey names the cache entry for a build.
func cacheKey(srcHash, goVersion, goarch, ldflags string) string {
	h := sha256.New()
	fmt.Fprintf(h, "src %s\ngo %s\narch %s\nldflags %q\n", srcHash, goVersion, goarch, ldflags)
	return goarch + "-" + hex.EncodeToString(h.Sum(nil))[:20]
}

// readDir reads a built set from dir (one file per program).
func readDir(dir, goarch string) (*Set, error) {
	s := &Set{GOARCH: goarch}
	for name := range Programs {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		s.Binaries = append(s.Binaries, newBinary(name, data))
	}
	s.finish()
	return s, nil
}

// BuildFlags are the go build flags of every payload build.
var BuildFlags = []string{"-trimpath", "-buildvcs=false"}

// goBuild cross-compiles every program into out.
func goBuild(ctx context.Context, gocmd, src, out, goarch, ldflags string) error {
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-ldflags", strings.TrimSpace("-s -w "+ldflags), "-o", out+string(filepath.Separator))
	var pkgs []string
	for _, p := range Programs {
		pkgs = append(pkgs, p)
	}
	sort.Strings(pkgs)
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, gocmd, args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("payload: build for %s: %w", goarch, ctx.Err())
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 2000 {
			msg = msg[:2000] + " ..."
		}
		return fmt.Errorf("payload: go build for linux/%s in %s: %w: %s", goarch, src, err, msg)
	}
	return nil
}

// goEnv returns `go env name`.
func goEnv(ctx context.Context, gocmd, name string) (string, error) {
	out, err := exec.CommandContext(ctx, gocmd, "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("payload: %s env %s: %w", gocmd, name, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// noToolchain is the error when the payload must be built and cannot be.
func noToolchain(what string) error {
	return fail.Errorf(fail.Prereq,
		"install Go 1.26 or later (https://go.dev/dl/) and run deploylab from its source tree, or use a released deploylab binary (it carries the payload)",
		"payload: this deploylab has no embedded payload and %s", what)
}

// findGo locates the go command.
func findGo(explicit string) (string, error) {
	return findGoIn(explicit, []string{filepath.Join(runtime.GOROOT(), "bin", "go"), "/usr/local/go/bin/go"})
}

func findGoIn(explicit string, fallbacks []string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	for _, p := range fallbacks {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", noToolchain("no go command was found to build it")
}

// FindSource finds the deploylab source tree to build the payload from:
// $DEPLOYLAB_SOURCE, else the module root above the working directory, else
// the tree this package was compiled from (when it still exists).
func FindSource() (string, error) {
	if d := os.Getenv("DEPLOYLAB_SOURCE"); d != "" {
		if isModuleRoot(d) {
			return d, nil
		}
		return "", fail.Errorf(fail.Usage, "point DEPLOYLAB_SOURCE at the deploylab source tree (the directory holding go.mod)",
			"payload: DEPLOYLAB_SOURCE=%s is not the deploylab source tree", d)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	for _, d := range starts {
		for {
			if isModuleRoot(d) {
				return d, nil
			}
			parent := filepath.Dir(d)
			if parent == d {
				break
			}
			d = parent
		}
	}
	return "", noToolchain("the deploylab source tree was not found to build it from (run deploylab inside it, or set DEPLOYLAB_SOURCE)")
}

// isModuleRoot reports whether dir holds go.mod for ModulePath and the
// payload's sources.
func isModuleRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(data), "\n")
	if strings.TrimSpace(first) != "module "+ModulePath {
		return false
	}
	st, err := os.Stat(filepath.Join(dir, "payload", "payload.go"))
	return err == nil && st.Mode().IsRegular()
}

// SourceHash hashes what a payload build reads from the module root dir:
// go.mod, go.sum and every non-test Go file and embedded asset under
// payload/ and internal/ (the payload imports internal packages), except
// payload/dist and testdata directories.
func SourceHash(dir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := hashFile(h, dir, f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
	}
	for _, top := range []string{"payload", "internal"} {
		root := filepath.Join(dir, top)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == root {
					return filepath.SkipDir
				}
				return err
			}
			name := d.Name()
			if d.IsDir() {
				if p != root && (name == "testdata" || name == "node_modules" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") ||
					p == filepath.Join(dir, "payload", "dist")) {
					return filepath.SkipDir
				}
				return nil
			}
			if !d.Type().IsRegular() || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") {
				return nil
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil {
				return err
			}
			return hashFile(h, dir, rel)
		})
		if err != nil {
			return "", fmt.Errorf("payload: hash sources: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h io.Writer, dir, rel string) error {
	f, err := os.Open(filepath.Join(dir, rel))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(rel), st.Size())
	_, err = io.Copy(h, f)
	return err
}
