package grade

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab"
	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/remote"
)

func rubricForTest(t *testing.T) *checks.Rubric {
	t.Helper()
	r, err := checks.ParseRubric(deploylab.DefaultRubricName, deploylab.DefaultRubric)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func classTargets(n int) []Target {
	var ts []Target
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("alu%02d", i)
		ts = append(ts, Target{Host: remote.Host{Name: name, Address: "127.0.0.1", Port: 1},
			Student: gradebook.Student{Name: "Alumno " + name, Email: name + "@example.org", Host: name}})
	}
	return ts
}

// estados reads column E (Estado) of the sheet, by host (column D).
func estados(t *testing.T, path string) map[string]string {
	t.Helper()
	x, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(gradebook.SheetNotas)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range rows[1:] {
		if len(r) > 4 && strings.HasPrefix(r[3], "alu") {
			out[r[3]] = r[4]
		}
	}
	return out
}

var refused = fmt.Errorf("connect: %w", syscall.ECONNREFUSED)

// TestPanicIsThatHostsRow: a panic while one host is visited (here in its
// dial; in real life a parser of what a hostile VM printed) becomes that
// host's "could not check" row with the reason; the others are graded and
// the sheet is written.
func TestPanicIsThatHostsRow(t *testing.T) {
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	sum, err := Run(context.Background(), Options{
		Rubric: rubricForTest(t), Out: out, Targets: classTargets(3),
		Dial: func(ctx context.Context, h remote.Host) (Runner, error) {
			if h.Name == "alu02" {
				var fields []string
				_ = fields[3]
			}
			return nil, refused
		},
	})
	if err == nil || sum == nil {
		t.Fatalf("err %v, summary %v: want the hosts' errors and a summary", err, sum)
	}
	got := estados(t, out)
	if len(got) != 3 {
		t.Fatalf("rows %v, want 3", got)
	}
	if !strings.Contains(got["alu02"], "could not check: internal error (panic): runtime error: index out of range [3]") {
		t.Errorf("alu02 Estado = %q", got["alu02"])
	}
	for _, h := range []string{"alu01", "alu03"} {
		if got[h] != "inalcanzable: connection refused" {
			t.Errorf("%s Estado = %q: a panic on alu02 must not touch it", h, got[h])
		}
	}
}

// TestStuckHostIsGivenUp: a host whose visit ignores its time limit is
// given up after the grace; its row says it timed out and the run ends.
func TestStuckHostIsGivenUp(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(context.Background(), Options{
			Rubric: rubricForTest(t), Out: out, Targets: classTargets(2), HostTimeout: 50 * time.Millisecond,
			Dial: func(ctx context.Context, h remote.Host) (Runner, error) {
				if h.Name == "alu01" {
					<-hold // a visit that never looks at its context
				}
				return nil, refused
			},
		})
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("grade did not end with a stuck host")
	}
	got := estados(t, out)
	if !strings.Contains(got["alu01"], "timed out after 50ms") || got["alu02"] != "inalcanzable: connection refused" {
		t.Errorf("Estado %q", got)
	}
}

// TestRowsAreJournaledAsEachHostFinishes: when a host's result is known its
// row is already on disk (a crash later keeps it); the journal is removed
// once the sheet is written.
func TestRowsAreJournaledAsEachHostFinishes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	jpath := JournalPath(out)
	var onDisk []int
	_, _ = Run(context.Background(), Options{
		Rubric: rubricForTest(t), Out: out, Targets: classTargets(3), Forks: 1,
		Dial: func(ctx context.Context, h remote.Host) (Runner, error) { return nil, refused },
		Progress: func(h HostResult) {
			rows, bad, err := readJournal(jpath)
			if err != nil || bad != 0 {
				t.Errorf("journal: %v, %d bad lines", err, bad)
			}
			if _, ok := rows[h.Row.Key()]; !ok {
				t.Errorf("%s's row not in the journal when its result was shown", h.Row.Host)
			}
			onDisk = append(onDisk, len(rows))
		},
	})
	if fmt.Sprint(onDisk) != "[1 2 3]" {
		t.Errorf("rows on disk as the hosts finished: %v, want [1 2 3]", onDisk)
	}
	if _, err := os.Stat(jpath); !os.IsNotExist(err) {
		t.Errorf("journal left after the sheet was written: %v", err)
	}
}

// TestJournalOfACrashedRun: rows a crashed run journaled (the last line torn
// by the crash) are used for the hosts the next run does not finish.
func TestJournalOfACrashedRun(t *testing.T) {
	r := rubricForTest(t)
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	ts := classTargets(2)
	j, err := openJournal(JournalPath(out))
	if err != nil {
		t.Fatal(err)
	}
	facts := checks.HostFacts{Host: "alu01", Error: "connection refused (earlier run)"}
	if err := j.add(HostResult{Row: gradebook.Row{Student: ts[0].Student, Scorecard: checks.Score(r, facts, nil)}}); err != nil {
		t.Fatal(err)
	}
	j.f.WriteString(`{"schema":"deploylab.grade-journal/v1","row":{"Na`) // the crash
	j.close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel() // this run is interrupted before any host
	var warn strings.Builder
	sum, _ := Run(ctx, Options{Rubric: r, Out: out, Targets: ts, Warn: &warn,
		Dial: func(ctx context.Context, h remote.Host) (Runner, error) { return nil, refused }})
	if !strings.Contains(warn.String(), "holds 1 rows of an earlier grade that did not finish (1 unreadable lines)") {
		t.Errorf("warning %q", warn.String())
	}
	if sum == nil || !sum.Hosts[0].Recovered || !sum.Hosts[1].Interrupted {
		t.Fatalf("summary %+v: want alu01 recovered, alu02 interrupted", sum)
	}
	got := estados(t, out)
	if got["alu01"] != "inalcanzable: connection refused (earlier run)" || !strings.Contains(got["alu02"], "no calificado") {
		t.Errorf("Estado %q", got)
	}
}
