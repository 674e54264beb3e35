package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/internal/fail"
)

func TestStoreRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "results")
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	runs := practiceRecords()
	for i, r := range runs {
		r.At = t0.Add(time.Duration(i) * time.Second)
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	if runs[0].ID != "20261122-103000-alu01-single-api-n10000" {
		t.Errorf("ID = %q", runs[0].ID)
	}
	// The same run saved twice gets a second ID, never overwrites.
	again := *runs[0]
	again.ID = ""
	again.At = t0.Add(time.Minute)
	if err := s.Save(&again); err != nil {
		t.Fatal(err)
	}
	if again.ID != runs[0].ID+"-2" {
		t.Errorf("second ID = %q", again.ID)
	}
	// Files are one per run, under the host's directory, no temp left.
	ents, err := os.ReadDir(filepath.Join(dir, "alu01"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(runs)+1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files: %v", names)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "alu01", runs[1].ID+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema"] != Schema || doc["result"].(map[string]any)["schema"] != "deploylab.loadgen/v1" {
		t.Errorf("document: schema %v, result %v", doc["schema"], doc["result"])
	}
	for _, k := range []string{"host", "tool", "scenario", "server", "cpu", "workers"} {
		if doc[k] == nil {
			t.Errorf("document lacks %q", k)
		}
	}

	got, err := s.List("alu01")
	if err != nil {
		t.Fatal(err)
	}
	want := append(runs, &again)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("List (-want +got):\n%s", d)
	}
	if all, _ := s.List(""); len(all) != len(want) {
		t.Errorf("List(\"\") = %d runs", len(all))
	}
	if none, err := s.List("nobody"); err != nil || len(none) != 0 {
		t.Errorf("List(nobody) = %v, %v", none, err)
	}
	r, err := s.Load(runs[3].ID)
	if err != nil || r.ID != runs[3].ID || r.Result.RPS != 2592 {
		t.Errorf("Load = %+v, %v", r, err)
	}
	r, err = s.Load("20261122-103000-alu01-cluster-bl")
	if err != nil || r.Scenario.Kind != KindBlocking {
		t.Errorf("Load by prefix = %+v, %v", r, err)
	}
	if _, err := s.Load("20261122-103000-alu01-single"); err == nil || !strings.Contains(err.Error(), "matches 4 results") {
		t.Errorf("ambiguous prefix: %v", err)
	}
	if _, err := s.Load("nope"); err == nil || fail.KindOf(err) != fail.Usage {
		t.Errorf("unknown ID: %v", err)
	}
	b, err := s.Batch("20261122-103000")
	if err != nil || len(b) != len(want) {
		t.Errorf("Batch = %d runs, %v", len(b), err)
	}
	// Damaged and foreign files are skipped.
	os.WriteFile(filepath.Join(dir, "alu01", "junk.json"), []byte("{"), 0o644)
	os.WriteFile(filepath.Join(dir, "alu01", "other.json"), []byte(`{"schema":"x/v1"}`), 0o644)
	if got, err := s.List("alu01"); err != nil || len(got) != len(want) {
		t.Errorf("with junk: %d runs, %v", len(got), err)
	}
}

func TestSummaries(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	old := synth{mode: ModeSingle, scenario: scAPI1000, rps: 900, meanMS: 100, at: t0}.record()
	newer := synth{mode: ModeSingle, scenario: scAPI10000, rps: 1358, meanMS: 73, at: t0.Add(time.Minute)}.record()
	cl := synth{mode: ModeCluster, scenario: scAPI10000, rps: 1474, meanMS: 67.5, errors: 3, at: t0.Add(2 * time.Minute)}.record()
	root := synth{mode: ModeCluster, scenario: scRoot, rps: 2592, meanMS: 38.6, at: t0.Add(3 * time.Minute)}.record()
	blk := blockingRecord(ModeSingle, 5000, 4600)
	blk.At = t0.Add(4 * time.Minute)
	intr := synth{mode: ModeCluster, scenario: scRoot, rps: 10, meanMS: 1, at: t0.Add(5 * time.Minute)}.record()
	intr.Result.Interrupted = true
	other := synth{mode: ModeSingle, scenario: scRoot, rps: 1, meanMS: 1, at: t0}.record()
	other.Host.Name = "alu02"
	for _, r := range []*Record{newer, old, cl, root, blk, intr, other} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Summaries("alu01")
	if err != nil {
		t.Fatal(err)
	}
	// Ordered by route, single before cluster; the latest per server
	// and route; blocking, interrupted and other hosts' runs left out.
	want := []checks.BenchSummary{
		{Server: "cluster", Route: "/", RPS: 2592, P50us: 38.6 * 900, P99us: 38.6 * 2500, Tool: "loadgen 0.1.0", At: root.At},
		{Server: "single", Route: "/api/500000", RPS: 1358, P50us: 73 * 900, P99us: 73 * 2500, Tool: "loadgen 0.1.0", At: newer.At},
		{Server: "cluster", Route: "/api/500000", RPS: 1474, P50us: 67.5 * 900, P99us: 67.5 * 2500, Errors: 3, Tool: "loadgen 0.1.0", At: cl.At},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Summaries (-want +got):\n%s", d)
	}
	if got, err := s.Summaries("nobody"); err != nil || len(got) != 0 {
		t.Errorf("Summaries(nobody) = %v, %v", got, err)
	}
}

func TestSummariesStacks(t *testing.T) {
	rec := func(stack string, rps float64, min int) *Record {
		r := synth{mode: ModeSingle, scenario: scAPI1000, rps: rps, meanMS: 10, at: t0.Add(time.Duration(min) * time.Minute)}.record()
		r.Server.Stack = stack
		return r
	}
	tests := []struct {
		name string
		runs []*Record
		want float64 // the RPS of the run kept for single /api/500000
	}{
		{"go kept over a newer node run", []*Record{rec(LangGo, 1, 0), rec(LangNode, 2, 1)}, 1},
		{"go kept over an older node run", []*Record{rec(LangNode, 2, 0), rec(LangGo, 1, 1)}, 1},
		{"a record without stack is go", []*Record{rec("", 1, 0), rec(LangNode, 2, 1)}, 1},
		{"latest go of several", []*Record{rec(LangGo, 1, 0), rec(LangNode, 2, 1), rec("", 3, 2)}, 3},
		{"node only: its latest", []*Record{rec(LangNode, 2, 0), rec(LangNode, 4, 1)}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summaries(tt.runs)
			if len(got) != 1 || got[0].RPS != tt.want {
				t.Errorf("Summaries = %+v, want one with %.0f rps", got, tt.want)
			}
		})
	}
}

func TestStackInRecord(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	node := synth{mode: ModeCluster, scenario: scRoot, rps: 1, meanMS: 1, at: t0}.record()
	node.Server.Stack = LangNode
	old := synth{mode: ModeCluster, scenario: scRoot, rps: 1, meanMS: 1, at: t0}.record() // written before the field
	for _, r := range []*Record{node, old} {
		if err := s.Save(r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		r         *Record
		id, stack string
		inJSON    bool
	}{
		{node, "20261122-103000-alu01-node-cluster-root-n10000", LangNode, true},
		{old, "20261122-103000-alu01-cluster-root-n10000", LangGo, false},
	}
	for _, tt := range tests {
		if tt.r.ID != tt.id {
			t.Errorf("ID = %s, want %s", tt.r.ID, tt.id)
		}
		back, err := s.Load(tt.r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if back.Server.StackName() != tt.stack {
			t.Errorf("%s: stack %q, want %q", tt.id, back.Server.StackName(), tt.stack)
		}
		b, _ := os.ReadFile(filepath.Join(s.Dir(), "alu01", tt.id+".json"))
		if got := strings.Contains(string(b), `"stack"`); got != tt.inJSON {
			t.Errorf("%s: stack in the JSON = %v, want %v", tt.id, got, tt.inJSON)
		}
	}
	custom := ServerInfo{Mode: ModeCustom}
	if custom.StackName() != "" {
		t.Errorf("a custom URL run's stack = %q, want none", custom.StackName())
	}
}

func TestOpenStoreErrors(t *testing.T) {
	if _, err := OpenStore(""); err == nil || fail.KindOf(err) != fail.Usage {
		t.Errorf("OpenStore(\"\") = %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := OpenStore(filepath.Join(f, "sub")); err == nil || fail.KindOf(err) != fail.Usage {
		t.Errorf("OpenStore(under a file) = %v", err)
	}
}

// TestStoreConcurrentSaves: two benches (two Stores on one directory, as two
// processes) saving runs with the same ID at once: every run gets its own
// file, none is overwritten, no temp file is left.
func TestStoreConcurrentSaves(t *testing.T) {
	dir := t.TempDir()
	a, _ := OpenStore(dir)
	b, _ := OpenStore(dir)
	const n = 20
	errs := make(chan error, 2*n)
	ids := make(chan string, 2*n)
	for _, s := range []*Store{a, b} {
		for range n {
			go func() {
				r := *practiceRecords()[0]
				r.ID = ""
				err := s.Save(&r)
				errs <- err
				ids <- r.ID
			}()
		}
	}
	seen := map[string]bool{}
	for range 2 * n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		id := <-ids
		if seen[id] {
			t.Errorf("ID %s given twice", id)
		}
		seen[id] = true
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "alu01"))
	if len(ents) != 2*n {
		t.Errorf("%d files for %d saves", len(ents), 2*n)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temp file left: %s", e.Name())
		}
	}
}

// TestStoreNamesDamagedFiles: a damaged result file is skipped, and the
// warning names it and says why (once, however often the store is read).
func TestStoreNamesDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	s, _ := OpenStore(dir)
	var warn strings.Builder
	s.Warn = &warn
	if err := s.Save(practiceRecords()[0]); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "alu01", "cut.json")
	os.WriteFile(bad, []byte(`{"schema": "deploylab.bench/v1", "result": {`), 0o644)
	other := filepath.Join(dir, "alu01", "other.json")
	os.WriteFile(other, []byte(`{"hello": 1}`), 0o644)
	for range 2 {
		runs, err := s.List("")
		if err != nil || len(runs) != 1 {
			t.Fatalf("%d runs, %v", len(runs), err)
		}
	}
	want := "warning: results: skipped " + bad + ": unexpected end of JSON input\n" +
		"warning: results: skipped " + other + ": not a deploylab.bench/v1 document\n"
	if warn.String() != want {
		t.Errorf("warnings:\n%s\nwant:\n%s", warn.String(), want)
	}
}
