package need

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestMissing runs this test binary again in the three situations and
// checks each outcome: -short skips, CI=true fails (even with -short), the
// full run fails.
func TestMissing(t *testing.T) {
	if os.Getenv("NEED_CHILD") == "1" {
		Tool(t, "deploylab-no-such-tool", "apt-get install nothing")
		return
	}
	for _, tc := range []struct {
		name, ci string
		short    bool
		want     string
		fails    bool
	}{
		{"newcomer -short", "", true, "--- SKIP", false},
		{"full run", "", false, "--- FAIL", true},
		{"CI with -short", "true", true, "CI=true: a missing prerequisite is a failure", true},
		{"CI", "true", false, "--- FAIL", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-test.run=^TestMissing$", "-test.v"}
			if tc.short {
				args = append(args, "-test.short")
			}
			cmd := exec.Command(os.Args[0], args...)
			cmd.Env = append(os.Environ(), "NEED_CHILD=1", "CI="+tc.ci)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.fails || !strings.Contains(string(out), tc.want) {
				t.Errorf("err %v, output:\n%s\nwant %q", err, out, tc.want)
			}
			if !strings.Contains(string(out), "deploylab-no-such-tool not found: apt-get install nothing") {
				t.Errorf("the reason is not given:\n%s", out)
			}
		})
	}
}
