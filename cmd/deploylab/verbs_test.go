package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/rogpeppe/go-internal/testscript"
)

// TestVerbsLabScripts runs the scripts in testdata/script/lab-verbs against
// a lab host of its own with PM2 (node variant): they run up and down, so
// they cannot share TestUpLabScripts' host with up_lab.txtar, which runs at
// the same time. They find lab.yaml in $WORK.
func TestVerbsLabScripts(t *testing.T) {
	t.Parallel() // its own lab host; no throughput assertion
	l := labtest.Start(t, labtest.Options{Hosts: 1, Variant: lab.VariantNode})
	h := l.Hosts()[0]
	goEnv := goEnvironment(t)
	cache := t.TempDir()
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script/lab-verbs",
		Setup: func(e *testscript.Env) error {
			e.Setenv("XDG_CONFIG_HOME", e.WorkDir+"/.config")
			e.Setenv("HOME", e.WorkDir)
			e.Setenv("XDG_CACHE_HOME", cache)
			for k, v := range goEnv {
				e.Setenv(k, v)
			}
			inv := fmt.Sprintf("vars:\n  user: %s\n  key: %s\n  known_hosts: %s\nhosts:\n  %s: {address: %s, port: %d}\n",
				h.User, h.KeyPath, h.KnownHostsPath, h.Name, h.Address, h.Port)
			return os.WriteFile(filepath.Join(e.WorkDir, "lab.yaml"), []byte(inv), 0o644)
		},
	})
}
