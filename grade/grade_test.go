package grade_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/grade"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/remote"
)

// TestBadOutputsFailBeforeAnyHost: every problem with the outputs is found
// before a host is dialled, with a usage error, and an old file is left as
// it was.
func TestBadOutputsFailBeforeAnyHost(t *testing.T) {
	r := defaultRubric(t)
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid.xlsx")
	if err := gradebook.WriteXLSX(valid, r, []gradebook.Row{{Student: gradebook.Student{Name: "Ana", Host: "alu01"}}}, gradebook.XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	validData, _ := os.ReadFile(valid)
	badMark := filepath.Join(dir, "badmark.xlsx")
	if err := os.WriteFile(badMark, validData, 0o644); err != nil {
		t.Fatal(err)
	}
	x, err := excelize.OpenFile(badMark)
	if err != nil {
		t.Fatal(err)
	}
	col := len([]string{"Alumno", "ID", "Email", "Host", "Estado"}) + 5 // preguntas
	cell, _ := excelize.CoordinatesToCellName(col, 2)
	x.SetCellValue(gradebook.SheetNotas, cell, "bien")
	if err := x.Save(); err != nil {
		t.Fatal(err)
	}
	x.Close()

	locked := filepath.Join(dir, "locked.xlsx")
	os.WriteFile(locked, validData, 0o644)
	os.WriteFile(filepath.Join(dir, ".~lock.locked.xlsx#"), []byte("teacher,host,2026"), 0o644)
	corrupt := filepath.Join(dir, "corrupt.xlsx")
	os.WriteFile(corrupt, []byte("PK\x03\x04 not really a spreadsheet"), 0o644)
	notSheet := filepath.Join(dir, "other.xlsx")
	f := excelize.NewFile()
	f.SaveAs(notSheet)
	f.Close()

	students := []grade.Target{
		{Host: remote.Host{Name: "alu01", Address: "127.0.0.1", Port: 1}, Student: gradebook.Student{Name: "Ana", Email: "ana@example.org", Host: "alu01"}},
		{Host: remote.Host{Name: "alu02", Address: "127.0.0.1", Port: 1}, Student: gradebook.Student{Name: "Luis", ID: "1234", Host: "alu02"}},
	}
	for _, tc := range []struct {
		name string
		opts func(o *grade.Options)
		want string
	}{
		{"missing directory", func(o *grade.Options) { o.Out = filepath.Join(dir, "nope", "notas.xlsx") }, "output directory"},
		{"directory is a file", func(o *grade.Options) { o.Out = filepath.Join(corrupt, "notas.xlsx") }, "not a directory"},
		{"not xlsx", func(o *grade.Options) { o.Out = filepath.Join(dir, "notas.ods") }, "must be an .xlsx file"},
		{"open in LibreOffice", func(o *grade.Options) { o.Out = locked }, "is open in a spreadsheet application"},
		{"corrupt old sheet", func(o *grade.Options) { o.Out = corrupt }, "read the previous"},
		{"not a grade sheet", func(o *grade.Options) { o.Out = notSheet }, "not a deploylab grade sheet"},
		{"bad manual mark", func(o *grade.Options) { o.Out = badMark }, `"bien" is not a mark`},
		{"csv without emails", func(o *grade.Options) { o.CSV = filepath.Join(dir, "notas.csv") }, "1 students have no email"},
		{"csv same as out", func(o *grade.Options) { o.CSV = o.Out }, "same file"},
		{"feedback dir is a file", func(o *grade.Options) { o.FeedbackDir = corrupt }, "feedback directory"},
		{"same student twice", func(o *grade.Options) { o.Targets = append(o.Targets, o.Targets[0]) }, "same student key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dialled := false
			o := grade.Options{Rubric: r, Targets: students, Out: filepath.Join(dir, "notas.xlsx"),
				Dial: func(ctx context.Context, h remote.Host) (grade.Runner, error) {
					dialled = true
					return nil, errors.New("must not dial")
				}}
			tc.opts(&o)
			before := snapshot(t, dir)
			_, err := grade.Run(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
			if fail.KindOf(err) != fail.Usage || fail.HintOf(err) == "" {
				t.Errorf("err %v: kind %v hint %q, want a usage error with a hint", err, fail.KindOf(err), fail.HintOf(err))
			}
			if dialled {
				t.Error("a host was dialled before the outputs were checked")
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("files changed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

// snapshot lists the files of dir with their sizes and contents' start.
func snapshot(t *testing.T, dir string) string {
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		data, _ := os.ReadFile(p)
		fmt.Fprintf(&b, "%s:%d:%x ", filepath.Base(p), len(data), data[:min(len(data), 64)])
		return nil
	})
	return b.String()
}

// TestUnreachableHostsKeepTheirRow: connection refused (a loopback port with
// nothing listening) gives a row with the reason, exit kind Unreachable, and
// the sheet written.
func TestUnreachableHostsKeepTheirRow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := defaultRubric(t)
	out := filepath.Join(t.TempDir(), "notas.xlsx")
	var lines []string
	sum, err := grade.Run(context.Background(), grade.Options{
		Rubric: r, Out: out,
		Targets: []grade.Target{{Host: remote.Host{Name: "alu01", Address: "127.0.0.1", Port: port, User: "nobody", KnownHostsFile: filepath.Join(t.TempDir(), "kh")},
			Student: gradebook.Student{Name: "Ana", Email: "ana@example.org", Host: "alu01"}}},
		Dial: func(ctx context.Context, h remote.Host) (grade.Runner, error) {
			return remote.Dial(ctx, h, remote.WithSSHConfig(""), remote.WithAgent(""))
		},
		Progress: func(h grade.HostResult) { lines = append(lines, h.Row.Host+" "+h.Row.Scorecard.Reason) },
	})
	if fail.KindOf(err) != fail.Unreachable || fail.ExitCode(err) != 3 {
		t.Errorf("err %v: kind %v, want Unreachable (exit 3)", err, fail.KindOf(err))
	}
	if len(lines) != 1 || lines[0] != "alu01 connection refused" {
		t.Errorf("progress: %q", lines)
	}
	if sum == nil || sum.Unreachable() != 1 || sum.Graded() != 0 {
		t.Fatalf("summary %+v", sum)
	}
	x, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	estado, _ := x.GetCellValue(gradebook.SheetNotas, "E2")
	if estado != "inalcanzable: connection refused" {
		t.Errorf("Estado = %q", estado)
	}
	rep := sum.Hosts[0].Row.Scorecard
	for _, c := range rep.Criteria {
		for _, ch := range c.Checks {
			if ch.Outcome != checks.Error {
				t.Errorf("%s/%s: %s, want error (not checked) on an unreachable host", c.ID, ch.ID, ch.Outcome)
			}
		}
	}
}

func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err      error
		timedOut bool
		want     string
	}{
		{fmt.Errorf("connect to 10.0.0.1:22: %w", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), false, "connection refused"},
		{fmt.Errorf("connect: %w", syscall.EHOSTUNREACH), false, "no route to host"},
		{fmt.Errorf("probe: run sh: %w", context.DeadlineExceeded), true, "timed out after 2m0s (probe)"},
		{fmt.Errorf("connect: %w", &net.DNSError{Name: "alu99", Err: "no such host"}), false, "unknown host alu99"},
		{errors.New("ssh: handshake failed: EOF"), false, "ssh: handshake failed: EOF"},
	} {
		if got := grade.Reason(tc.err, 2*time.Minute, tc.timedOut); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestFeedbackName(t *testing.T) {
	for in, want := range map[string]string{"alu01": "alu01.txt", "../etc/passwd": "_etc_passwd.txt", "María José": "Mar_a_Jos_.txt"} {
		if got := grade.FeedbackName(gradebook.Student{Host: in}); got != want {
			t.Errorf("FeedbackName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLockedDuringRun: the sheet opened in LibreOffice while the hosts were
// visited: the old file is left alone and the grades go to a rescue file.
func TestLockedDuringRun(t *testing.T) {
	r := defaultRubric(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "notas.xlsx")
	if err := gradebook.WriteXLSX(out, r, []gradebook.Row{{Student: gradebook.Student{Name: "Ana", Email: "ana@example.org", Host: "alu01"}}}, gradebook.XLSXOptions{}); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(out)
	sum, err := grade.Run(context.Background(), grade.Options{
		Rubric: r, Out: out,
		Targets: []grade.Target{{Host: remote.Host{Name: "alu01", Address: "127.0.0.1", Port: 1},
			Student: gradebook.Student{Name: "Ana", Email: "ana@example.org", Host: "alu01"}}},
		Dial: func(ctx context.Context, h remote.Host) (grade.Runner, error) {
			// The teacher opens the sheet while grade runs.
			if err := os.WriteFile(filepath.Join(dir, ".~lock.notas.xlsx#"), []byte("x"), 0o644); err != nil {
				t.Error(err)
			}
			return nil, fmt.Errorf("connect: %w", syscall.ECONNREFUSED)
		},
	})
	if err == nil || !strings.Contains(err.Error(), "grades saved in") || fail.KindOf(err) != fail.Usage {
		t.Fatalf("err = %v (kind %v), want the lock error naming the rescue file", err, fail.KindOf(err))
	}
	if now, _ := os.ReadFile(out); string(now) != string(old) {
		t.Error("the locked sheet was overwritten")
	}
	if len(sum.Written) != 1 || !strings.HasPrefix(filepath.Base(sum.Written[0]), "notas.") || sum.Written[0] == out {
		t.Fatalf("written %q, want a rescue file", sum.Written)
	}
	x, err := excelize.OpenFile(sum.Written[0])
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if v, _ := x.GetCellValue(gradebook.SheetNotas, "E2"); v != "inalcanzable: connection refused" {
		t.Errorf("rescue file Estado = %q", v)
	}
}
