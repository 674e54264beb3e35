package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/deploylab/deploylab/bench"
)

// --plan sessions is the built-in sessions plan, unless a file of that
// name exists in the working directory (then it is that file).
func TestLoadPlanSessions(t *testing.T) {
	t.Chdir(t.TempDir())
	p, err := loadPlan("sessions")
	if err != nil || len(p.Scenarios) != 1 || p.Scenarios[0].Kind != bench.KindSessions {
		t.Fatalf("loadPlan(sessions) = %+v, %v; want the sessions plan", p, err)
	}
	own := "servers: [{name: single, port: 3000}]\nscenarios: [{route: /, requests: 1, concurrency: 1}]\n"
	if err := os.WriteFile(filepath.Join(".", "sessions"), []byte(own), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err = loadPlan("sessions")
	if err != nil || p.Scenarios[0].Kind != bench.KindLoad {
		t.Fatalf("with a file named sessions: %+v, %v; want the file's plan", p, err)
	}
}
