package observe

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// runLocal runs the script with sh on this machine, as a host would, and
// parses it.
func runLocal(t *testing.T, o Options, env ...string) (Host, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-s")
	cmd.Stdin = bytes.NewReader(Script(o))
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("probe wrote to stderr:\n%s", stderr.String())
	}
	h, err := Parse(out)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	if !h.Complete {
		t.Errorf("output incomplete:\n%s", out)
	}
	return h, out
}
