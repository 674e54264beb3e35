// Package golden compares test output with golden files, and rewrites them
// when the tests run with -update (go test ./... -update). Every test
// package of deploylab that keeps golden files uses it.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files (and other recorded test data) instead of comparing")

// Update reports whether the run was asked to rewrite golden files.
func Update() bool { return *update }

// Check compares got with the file at path and reports whether they are
// equal; with -update it writes got there instead (creating the directory)
// and reports true.
func Check(t testing.TB, path string, got []byte) bool {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return true
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update creates it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it if the change is meant):\n%s", path, d)
		return false
	}
	return true
}
