// Package need is the one place where a test says what it needs from the
// machine (a tool, root, lab hosts, time) and what happens when it is
// missing:
//
//   - with CI=true a missing prerequisite fails the test, never skips it:
//     CI installs everything (scripts/install-deps.sh), so a skip there
//     would hide a test that silently stopped running;
//   - with go test -short (a newcomer's machine with only Go) the test is
//     skipped with a one-line reason saying what to install;
//   - otherwise (the full suite, the README's test command) it fails with
//     that reason.
package need

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// Missing ends t for a missing prerequisite: a skip under -short (outside
// CI), a failure otherwise.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if testing.Short() && !CI() {
		t.Skip("-short: " + reason)
	}
	if CI() {
		reason += " (CI=true: a missing prerequisite is a failure, never a skip)"
	}
	t.Fatal(reason)
}

// Tool returns the path of the program name, or ends t (see Missing) with
// install as the way to get it ("apt-get install curl").
func Tool(t testing.TB, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found: %s", name, install)
	}
	return p
}

// Root ends t (see Missing) unless the test runs as root.
func Root(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "needs root (%s): run the tests as root, or with -short", why)
	}
}

// Slow skips a long test under -short (outside CI): the newcomer's run
// stays under two minutes; CI and the full suite run it.
func Slow(t testing.TB, what string) {
	t.Helper()
	if testing.Short() && !CI() {
		t.Skip("-short: skipping " + what)
	}
}

// Check is Missing for a TestMain, before any test runs: ok false means
// the package's tests cannot run. Under -short (outside CI) it prints the
// one-line reason and returns true: the caller exits 0 (all skipped).
// Otherwise it returns false and the caller fails. flag.Parse must have
// been called.
func Check(reason string) (skipAll bool) {
	if testing.Short() && !CI() {
		fmt.Printf("-short: skipping every test of this package: %s\n", reason)
		return true
	}
	return false
}
