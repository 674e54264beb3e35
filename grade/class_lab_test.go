// TestClassLab is the acceptance run of the grader against a class of
// student VMs (lab hosts; about 8 minutes on 2 cores): part of the suite
// (scripts/test.sh), skipped under -short; alone with make class, or
//   go test -run TestClassLab -v ./grade/

package grade_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/grade"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/lab"
	"github.com/deploylab/deploylab/lab/labtest"
	"github.com/deploylab/deploylab/remote"
	"github.com/xuri/excelize/v2"
	"go.yaml.in/yaml/v3"
)

// classDir holds the class of student profiles: replay.sh, the files the
// students wrote (files/), what each typed (profiles/NAME) and the marks a
// careful teacher expects (expected.yaml), written before grading.
const classDir = "testdata/class"

// markRange is a fair range of points [lowest, highest].
type markRange [2]float64

func (r markRange) holds(v float64) bool { return v >= r[0]-1e-9 && v <= r[1]+1e-9 }

func (r markRange) String() string {
	if r[0] == r[1] {
		return strconv.FormatFloat(r[0], 'f', -1, 64)
	}
	return strconv.FormatFloat(r[0], 'f', -1, 64) + "–" + strconv.FormatFloat(r[1], 'f', -1, 64)
}

// expectation is one profile's entry of expected.yaml.
type expectation struct {
	Down        bool
	Marks       map[string]markRange
	AfterReboot map[string]markRange
}

func (e *expectation) UnmarshalYAML(n *yaml.Node) error {
	e.Marks, e.AfterReboot = map[string]markRange{}, map[string]markRange{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i].Value, n.Content[i+1]
		switch k {
		case "down":
			if err := v.Decode(&e.Down); err != nil {
				return err
			}
		case "after_reboot":
			if err := v.Decode(&e.AfterReboot); err != nil {
				return err
			}
		default:
			var r markRange
			if err := v.Decode(&r); err != nil {
				return fmt.Errorf("line %d: %s: %w", v.Line, k, err)
			}
			if r[0] > r[1] {
				return fmt.Errorf("line %d: %s: range %v is upside down", v.Line, k, r)
			}
			e.Marks[k] = r
		}
	}
	return nil
}

// want is the range of criterion id, after a reboot or not.
func (e *expectation) want(id string, rebooted bool) (markRange, bool) {
	if r, ok := e.AfterReboot[id]; ok && rebooted {
		return r, true
	}
	r, ok := e.Marks[id]
	return r, ok
}

func loadClass(t *testing.T) ([]string, map[string]*expectation) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(classDir, "expected.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exp := map[string]*expectation{}
	if err := yaml.Unmarshal(data, &exp); err != nil {
		t.Fatalf("expected.yaml: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(classDir, "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if _, ok := exp[e.Name()]; !ok {
			t.Fatalf("profile %s has no entry in expected.yaml", e.Name())
		}
		names = append(names, e.Name())
	}
	if len(names) != len(exp) {
		t.Fatalf("expected.yaml lists %d profiles, profiles/ has %d", len(exp), len(names))
	}
	return names, exp
}

// replay types profile's commands on h as the student would (as root for
// the profile "root", else as the lab's user).
// It returns the student's commands that failed (the log's "replay: exit"
// lines): students' commands fail too, but an unexpected one means the
// profile does not do what expected.yaml assumes.
func replay(ctx context.Context, h lab.Host, profile string) (string, error) {
	rh := labtest.RemoteHost(h)
	if profile == "root" {
		rh.User = "root"
	}
	c, err := remote.Dial(ctx, rh, remote.WithSSHConfig(""), remote.WithAgent(""))
	if err != nil {
		return "", err
	}
	defer c.Close()
	put := func(local, remotePath string, mode os.FileMode) error {
		data, err := os.ReadFile(local)
		if err != nil {
			return err
		}
		_, err = c.WriteFile(ctx, remotePath, data, mode)
		return err
	}
	if _, err := c.Run(ctx, "mkdir -p /tmp/class/files"); err != nil {
		return "", err
	}
	files, _ := filepath.Glob(filepath.Join(classDir, "files", "*"))
	for _, f := range files {
		if err := put(f, "/tmp/class/files/"+filepath.Base(f), 0o644); err != nil {
			return "", err
		}
	}
	if err := put(filepath.Join(classDir, "replay.sh"), "/tmp/class/replay.sh", 0o755); err != nil {
		return "", err
	}
	if err := put(filepath.Join(classDir, "profiles", profile), "/tmp/class/commands", 0o644); err != nil {
		return "", err
	}
	res, err := c.Run(ctx, "bash /tmp/class/replay.sh /tmp/class/commands >/tmp/class/replay.log 2>&1 </dev/null; echo $?; grep '^replay: ' /tmp/class/replay.log")
	if err != nil {
		return "", err
	}
	code, failed, _ := strings.Cut(string(res.Stdout), "\n")
	if code != "0" {
		return "", fmt.Errorf("replay of %s: exit %s:\n%s", profile, code, res.Stdout)
	}
	return failed, nil
}

// TestClassLab grades a class of realistic student VMs — each profile's
// commands replayed over ssh on its own lab host — in one grade run, and
// checks every mark against the fair range written in expected.yaml before
// the grader ran; then reboots every host and grades the class again.
func TestClassLab(t *testing.T) {
	names, exp := loadClass(t)
	l := labtest.Start(t, labtest.Options{Hosts: len(names), Variant: lab.VariantNode})
	hosts := l.Hosts()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(names))
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var failed string
			failed, errs[i] = replay(ctx, hosts[i], name)
			if failed != "" {
				t.Logf("%s: commands that failed, as a student's can:\n%s", name, failed)
			}
			switch {
			case errs[i] != nil:
			case exp[name].Down:
				errs[i] = l.PowerOff(ctx, hosts[i].Name)
			default:
				errs[i] = settle(ctx, hosts[i])
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s on %s: %v", names[i], hosts[i].Name, err)
		}
	}
	t.Logf("class of %d replayed in %v", len(names), time.Since(start).Round(time.Second))

	var targets []grade.Target
	for i, name := range names {
		tg := target(hosts[i], name)
		tg.Host.Timeout = 10 * time.Second
		if name == "root" {
			tg.Host.User = "root"
		}
		targets = append(targets, tg)
	}
	r := defaultRubric(t)
	gradeClass := func(rebooted bool) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "notas.xlsx")
		start := time.Now()
		sum, _ := grade.Run(ctx, grade.Options{Rubric: r, Dial: labDial, Targets: targets, Out: out})
		t.Logf("class graded in %v (one grade run)", time.Since(start).Round(100*time.Millisecond))
		if len(sum.Hosts) != len(names) {
			t.Fatalf("graded %d hosts, want %d", len(sum.Hosts), len(names))
		}
		checkClass(t, r, names, exp, sum.Hosts, out, rebooted)
	}

	gradeClass(false)

	// Every host rebooted: what was only started by hand is gone, what PM2's
	// startup unit or systemd brings back is there.
	start = time.Now()
	for i, name := range names {
		if exp[name].Down {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = stopPM2(ctx, hosts[i]); errs[i] != nil {
				return
			}
			if errs[i] = l.Reboot(ctx, hosts[i].Name); errs[i] == nil {
				errs[i] = settle(ctx, hosts[i])
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("reboot %s: %v", names[i], err)
		}
	}
	t.Logf("class rebooted in %v", time.Since(start).Round(time.Second))
	gradeClass(true)
}

// rootRun runs script as root on h.
func rootRun(ctx context.Context, h lab.Host, script string) (string, error) {
	rh := labtest.RemoteHost(h)
	rh.User = "root"
	c, err := remote.Dial(ctx, rh, remote.WithSSHConfig(""), remote.WithAgent(""))
	if err != nil {
		return "", err
	}
	defer c.Close()
	res, err := c.Run(ctx, script)
	if err != nil {
		return "", err
	}
	if res.ExitCode != 0 {
		return "", fmt.Errorf("%s: exit %d: %s%s", h.Name, res.ExitCode, res.Stdout, res.Stderr)
	}
	return string(res.Stdout), nil
}

// stopPM2 stops every PM2 daemon on h (SIGTERM) and waits until it has
// exited, before the host is powered off: a power-off sends SIGTERM to the
// daemon and to its apps at once, and PM2 rewrites dump.pm2 when it gets
// SIGTERM (Daemon.gracefullExit) — with the apps "stopped" when it handles
// their exit first, so that the boot brings them back stopped. That race is
// PM2's (Unitech/pm2#3865, #5879), not the student's nor the grader's, and
// it made the class flaky (layout, once). Stopped first, the daemon saves
// the apps as they are (online stays online, stopped stays stopped).
func stopPM2(ctx context.Context, h lab.Host) error {
	_, err := rootRun(ctx, h, `pids=$(pgrep -f '^PM2 v[0-9.]+: God Daemon') || exit 0
kill -TERM $pids
for i in $(seq 600); do
	alive=
	for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
	[ -z "$alive" ] && exit 0
	sleep 0.1
done
echo "a PM2 daemon did not exit within 60 s of SIGTERM: $pids"; exit 1`)
	return err
}

// settle waits until the booted host is as a teacher would find it long
// after the boot: systemd has finished starting the units (pm2-USER's
// resurrect included), and the apps (PM2's, a unit's, a nohup's: every node
// process) listen and have finished starting (their CPU time stands still
// for a second).
// It fails, rather than letting the grade see a half-booted host, after
// 3 minutes.
func settle(ctx context.Context, h lab.Host) error {
	_, err := rootRun(ctx, h, `systemctl is-system-running --wait >/dev/null 2>&1
apps() { pgrep -f '^([^ ]*/)?(node|nodejs)( |$)'; }
ticks() {
	for p in $(apps); do
		echo "$p $(cut -d')' -f2- /proc/$p/stat 2>/dev/null | awk '{print $12+$13}')"
	done
}
prev=none still=0
for i in $(seq 360); do
	cur=$(ticks)
	[ -n "$cur" ] || exit 0
	if [ "$cur" = "$prev" ]; then still=$((still + 1)); else still=0; fi
	[ "$still" -ge 2 ] && [ "$(ss -Hltn | grep -cv ':22 ')" -gt 0 ] && exit 0
	prev=$cur
	sleep 0.5
done
echo "the node apps did not settle within 3 minutes:"; ss -Hltnp; ps -eo pid,ppid,etimes,time,args | grep -v ' \[' ; exit 1`)
	return err
}

// checkClass compares each profile's marks with its fair range, reads the
// Notas sheet back for the unreachable ones (no marks, no total), and logs
// the table profile → expected → given.
func checkClass(t *testing.T, r *checks.Rubric, names []string, exp map[string]*expectation, results []grade.HostResult, out string, rebooted bool) {
	t.Helper()
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "profile\tcriterion\texpected\tgiven\t\n")
	x, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	rows, err := x.GetRows(gradebook.SheetNotas)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range results {
		name := h.Row.Host
		e, ok := exp[name]
		if !ok {
			t.Errorf("graded %q, not a profile of the class", name)
			continue
		}
		sc := h.Row.Scorecard
		if e.Down {
			fmt.Fprintf(tw, "%s\t-\tcould not check\t%s\t\n", name, status(sc))
			if sc.Reachable {
				t.Errorf("%s: the host is down but was graded", name)
			}
			for _, c := range sc.Criteria {
				if c.Scored {
					t.Errorf("%s: the host is down but %s has a mark (%v)", name, c.ID, c.Score)
				}
			}
			if sc.Reason == "" {
				t.Errorf("%s: could not check, but no reason given", name)
			}
			if tot := sheetCell(rows, name, "Total"); tot != "" {
				t.Errorf("%s: the sheet shows Total %q for a host that could not be checked", name, tot)
			}
			continue
		}
		if !sc.Reachable {
			t.Errorf("%s: not graded: %s", name, sc.Reason)
			continue
		}
		for _, c := range sc.Criteria {
			if c.Manual {
				continue
			}
			want, ok := e.want(c.ID, rebooted)
			if !ok {
				t.Errorf("%s: expected.yaml has no range for %s", name, c.ID)
				continue
			}
			given := "-"
			if c.Scored {
				given = strconv.FormatFloat(c.Score, 'f', -1, 64)
			}
			flag := ""
			if !c.Scored || !want.holds(c.Score) {
				flag = "OUT"
				t.Errorf("%s: %s = %s, want %v%s", name, c.ID, given, want, detail(c))
			}
			fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\n", name, c.ID, want, given, flag)
		}
	}
	tw.Flush()
	when := "before reboot"
	if rebooted {
		when = "after reboot"
	}
	t.Logf("the class, %s:\n%s", when, table.String())
}

func status(sc checks.Scorecard) string {
	if sc.Reachable {
		return "graded"
	}
	return "could not check: " + sc.Reason
}

// detail is a failed mark's evidence, to read in the test's output.
func detail(c checks.CriterionResult) string {
	var b strings.Builder
	for _, ch := range c.Checks {
		fmt.Fprintf(&b, "\n\t%s %s: %s %s", ch.ID, ch.Outcome, ch.Reason, ch.Evidence)
	}
	return b.String()
}

// sheetCell is the cell of column col in host's row of the Notas sheet.
func sheetCell(rows [][]string, host, col string) string {
	if len(rows) == 0 {
		return ""
	}
	hc, cc := slices.Index(rows[0], "Host"), slices.Index(rows[0], col)
	for _, row := range rows[1:] {
		if hc >= 0 && hc < len(row) && row[hc] == host {
			if cc >= 0 && cc < len(row) {
				return row[cc]
			}
			return ""
		}
	}
	return ""
}
