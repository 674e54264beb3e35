package payload

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/deploylab/deploylab/internal/fail"
)

// builds caches one build per architecture for the tests of this package.
var builds = map[string]*Set{}

func buildFor(t *testing.T, goarch, cache string) *Set {
	t.Helper()
	if s, ok := builds[goarch]; ok && cache == "" {
		return s
	}
	if cache == "" {
		cache = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s, err := Build(ctx, Options{GOARCH: goarch, CacheDir: cache, NoEmbedded: true})
	if err != nil {
		t.Fatalf("Build(%s): %v", goarch, err)
	}
	t.Logf("built %s payload %s in %s", goarch, s.Hash, s.Took.Round(time.Millisecond))
	return s
}

func TestBuildArches(t *testing.T) {
	tests := []struct {
		goarch  string
		machine elf.Machine
	}{
		{"amd64", elf.EM_X86_64},
		{"arm64", elf.EM_AARCH64},
	}
	for _, tt := range tests {
		t.Run(tt.goarch, func(t *testing.T) {
			cache := t.TempDir()
			s := buildFor(t, tt.goarch, cache)
			if s.Origin != Built {
				t.Errorf("origin = %s, want %s", s.Origin, Built)
			}
			if len(s.Binaries) != len(Programs) {
				t.Fatalf("got %d binaries, want %d", len(s.Binaries), len(Programs))
			}
			for _, b := range s.Binaries {
				f, err := elf.NewFile(bytes.NewReader(b.Data))
				if err != nil {
					t.Fatalf("%s: not an ELF file: %v", b.Name, err)
				}
				if f.Machine != tt.machine {
					t.Errorf("%s: machine %s, want %s", b.Name, f.Machine, tt.machine)
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
						t.Errorf("%s: dynamically linked (has %s): want a static binary", b.Name, p.Type)
					}
				}
				f.Close()
			}
			// The same sources again: from the cache, identical.
			again := buildFor(t, tt.goarch, cache)
			if again.Origin != Cached || again.Hash != s.Hash {
				t.Errorf("second build: origin %s hash %s, want cached %s", again.Origin, again.Hash, s.Hash)
			}
			if tt.goarch == "amd64" {
				builds["amd64"] = s
			}
		})
	}
}

func TestBuildLDFlagsChangeHash(t *testing.T) {
	cache := t.TempDir()
	ctx := context.Background()
	a, err := Build(ctx, Options{GOARCH: "amd64", CacheDir: cache, NoEmbedded: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(ctx, Options{GOARCH: "amd64", CacheDir: cache, NoEmbedded: true, LDFlags: "-B 0x0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash == b.Hash {
		t.Fatalf("hash %s unchanged by different linker flags", a.Hash)
	}
	// Reproducible: the same flags give the same bytes.
	c, err := Build(ctx, Options{GOARCH: "amd64", CacheDir: t.TempDir(), NoEmbedded: true})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash != a.Hash {
		t.Errorf("two builds of the same sources differ: %s and %s", a.Hash, c.Hash)
	}
}

// TestBuiltServerAnswers runs the built sumserver on loopback.
func TestBuiltServerAnswers(t *testing.T) {
	s := buildFor(t, "amd64", "")
	b, _ := s.Binary(Sumserver)
	exe := filepath.Join(t.TempDir(), Sumserver)
	if err := os.WriteFile(exe, b.Data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "--port", "0", "--addr", "127.0.0.1")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	portRe := regexp.MustCompile(`127\.0\.0\.1:(\d+)`)
	sc := bufio.NewScanner(out)
	port := ""
	for sc.Scan() {
		if m := portRe.FindStringSubmatch(sc.Text()); m != nil {
			port = m[1]
			break
		}
	}
	if port == "" {
		t.Fatal("sumserver did not print its address")
	}
	go io.Copy(io.Discard, out)
	resp, err := http.Get("http://127.0.0.1:" + port + "/api/50")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "Final count is 1275" {
		t.Errorf("GET /api/50 = %q", body)
	}
}

func TestEmbedded(t *testing.T) {
	fsys := fstest.MapFS{
		"linux-amd64/sumserver":  {Data: []byte("server")},
		"linux-amd64/sumcluster": {Data: []byte("cluster")},
		"linux-amd64/loadgen":    {Data: []byte("loadgen")},
		"linux-arm64/sumserver":  {Data: []byte("server-arm")},
	}
	old := embedded
	embedded = fsys
	t.Cleanup(func() { embedded = old })

	s, err := Build(context.Background(), Options{GOARCH: "amd64", Go: "/nonexistent/go"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Origin != Embedded {
		t.Errorf("origin = %s, want embedded", s.Origin)
	}
	var names []string
	for _, b := range s.Binaries {
		names = append(names, b.Name)
	}
	if got := strings.Join(names, ","); got != "loadgen,sumcluster,sumserver" {
		t.Errorf("binaries = %s", got)
	}
	m, err := Binaries(context.Background(), "amd64")
	if err != nil {
		t.Fatal(err)
	}
	if string(m[Sumcluster]) != "cluster" {
		t.Errorf("Binaries()[sumcluster] = %q", m[Sumcluster])
	}
	// arm64 is incomplete in the embedded tree: it falls back to building,
	// which fails without a toolchain with a Prereq error.
	_, err = Build(context.Background(), Options{GOARCH: "arm64", Go: "/nonexistent/go", SourceDir: t.TempDir()})
	if err == nil {
		t.Fatal("arm64 with an incomplete embedded tree and no go: no error")
	}
}

func TestNoToolchain(t *testing.T) {
	old := embedded
	embedded = nil
	t.Cleanup(func() { embedded = old })
	t.Setenv("PATH", t.TempDir())
	_, err := findGoIn("", []string{"/nonexistent/go"})
	if fail.KindOf(err) != fail.Prereq || fail.HintOf(err) == "" {
		t.Fatalf("findGo without go: %v (kind %v), want a Prereq error with a hint", err, fail.KindOf(err))
	}
}

func TestUnsupportedArch(t *testing.T) {
	_, err := Build(context.Background(), Options{GOARCH: "riscv64"})
	if err == nil || !strings.Contains(err.Error(), `"riscv64" is not supported`) {
		t.Fatalf("Build(riscv64) = %v", err)
	}
}

func TestSourceHash(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module "+ModulePath+"\n")
	write("payload/payload.go", "package payload\n")
	write("payload/sumserver/a.go", "package sumserver\n")
	h0, err := SourceHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	same := []struct{ rel, data string }{
		{"payload/sumserver/a_test.go", "package sumserver // test"},
		{"payload/sumserver/testdata/x.golden", "golden"},
		{"payload/dist/linux-amd64/sumserver", "binary"},
		{"cmd/deploylab/main.go", "package main"},
	}
	for _, f := range same {
		write(f.rel, f.data)
		h, err := SourceHash(dir)
		if err != nil {
			t.Fatal(err)
		}
		if h != h0 {
			t.Errorf("adding %s changed the source hash", f.rel)
		}
	}
	changes := []struct{ rel, data string }{
		{"payload/sumserver/a.go", "package sumserver // changed\n"},
		{"internal/fail/fail.go", "package fail\n"},
		{"go.sum", "example.com/x v1.0.0 h1:abc\n"},
	}
	prev := h0
	for _, f := range changes {
		write(f.rel, f.data)
		h, err := SourceHash(dir)
		if err != nil {
			t.Fatal(err)
		}
		if h == prev {
			t.Errorf("changing %s left the source hash unchanged", f.rel)
		}
		prev = h
	}
	if !isModuleRoot(dir) {
		t.Errorf("isModuleRoot(%s) = false", dir)
	}
	t.Setenv("DEPLOYLAB_SOURCE", dir)
	if got, err := FindSource(); err != nil || got != dir {
		t.Errorf("FindSource with DEPLOYLAB_SOURCE = %q, %v; want %q", got, err, dir)
	}
	t.Setenv("DEPLOYLAB_SOURCE", t.TempDir())
	if _, err := FindSource(); fail.KindOf(err) != fail.Usage {
		t.Errorf("FindSource with a wrong DEPLOYLAB_SOURCE: %v, want a usage error", err)
	}
}
