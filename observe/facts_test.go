package observe

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/internal/golden"
)

// TestFactsGolden parses captured outputs of the script run for deploy's
// and bench's parts (FactsParts; testdata/facts/*.txt) and compares what
// they read (facts, listeners and their holders, the tools the login user
// would run) with *.golden.json (-update rewrites).
func TestFactsGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/facts/*.txt")
	if err != nil || len(files) < 3 {
		t.Fatalf("want at least 3 samples in testdata/facts, got %d (%v)", len(files), err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".txt")
		t.Run(name, func(t *testing.T) {
			out, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			h, err := Parse(out)
			if err != nil || !h.Complete {
				t.Fatalf("Parse: %v (complete %v)", err, h.Complete)
			}
			seen := struct {
				Facts
				ListenersFrom string
				Holders       map[int][]Holder
				UserTools     map[string]Tool
			}{Facts: h.Facts, ListenersFrom: h.ListenersFrom, Holders: map[int][]Holder{}, UserTools: map[string]Tool{}}
			for _, l := range h.Listeners {
				seen.Holders[l.Port] = h.Holders(l.Port)
			}
			for _, name := range []string{"node", "npm", "pm2", "loadtest"} {
				if tool, ok := h.UserTool(name); ok {
					seen.UserTools[name] = tool
				}
			}
			got, _ := json.MarshalIndent(seen, "", "  ")
			got = append(got, '\n')
			golden.Check(t, strings.TrimSuffix(in, ".txt")+".golden.json", got)
		})
	}
}

// TestGatherIncomplete: output that is not the script's, or cut short, is
// an error for Gather.
func TestGatherIncomplete(t *testing.T) {
	for _, out := range []string{"", "@@hostname\nvm\n@@os\nID=debian\n", "bash: sh: command not found\n", "#deploylab-probe 2 @@M\n@@M meta\nhostname=vm\n"} {
		run := func(context.Context, string) ([]byte, []byte, int, error) {
			return []byte(out), []byte("sh: oops\n"), 1, nil
		}
		if _, err := Gather(context.Background(), run, Options{Parts: FactsParts}); err == nil {
			t.Errorf("Gather with output %q succeeded", out)
		} else if !strings.Contains(err.Error(), "exit status 1") || !strings.Contains(err.Error(), "sh: oops") {
			t.Errorf("Gather error %q does not say the exit status and stderr", err)
		}
	}
}
