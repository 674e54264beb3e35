package grade

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/fleet"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/atomicfile"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/safetext"
	"github.com/deploylab/deploylab/remote"
	"github.com/deploylab/deploylab/render"
)

// Runner runs commands on one host: *remote.Client and *remote.Local are
// Runners.
type Runner interface {
	Run(ctx context.Context, cmd string) (remote.Result, error)
	RunSudo(ctx context.Context, cmd string) (remote.Result, error)
	Close() error
}

// DialFunc connects to a host.
type DialFunc func(ctx context.Context, h remote.Host) (Runner, error)

// BenchSource gives the stored bench results of a host (by inventory name).
type BenchSource interface {
	Summaries(host string) ([]checks.BenchSummary, error)
}

// Target is one host to grade and the student it belongs to.
type Target struct {
	Host    remote.Host
	Student gradebook.Student
}

// TargetsOf are the grade targets of a run's hosts: each inventory host's
// student, whose id is an email when it has an @, a gradebook id number
// otherwise.
func TargetsOf(ts []fleet.Target) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		s := gradebook.Student{Name: t.Student, Host: t.Name}
		if strings.Contains(t.ID, "@") {
			s.Email = t.ID
		} else {
			s.ID = t.ID
		}
		out[i] = Target{Host: t.Host, Student: s}
	}
	return out
}

// DefaultHostTimeout bounds the work on one host (connect, probe, active
// checks) when Options.HostTimeout is 0.
const DefaultHostTimeout = 2 * time.Minute

// DefaultForks is the number of hosts graded at once when Options.Forks is 0.
const DefaultForks = 10

// Options say what to grade and where to write it.
type Options struct {
	Rubric  *checks.Rubric
	Targets []Target
	// Forks bounds the hosts visited at once (default DefaultForks).
	Forks int
	// HostTimeout bounds each host's whole visit (default DefaultHostTimeout).
	HostTimeout time.Duration
	// Active enables the checks that disturb the host (respawn, reload).
	Active bool
	// Bench gives the latest bench results of each host; nil means none.
	Bench BenchSource
	// Dial connects to a host (default: remote.Dial).
	Dial DialFunc

	// Out is the spreadsheet (notas.xlsx); CSV the gradebook CSV ("" none);
	// FeedbackDir the directory of per-student feedback texts ("" none).
	Out         string
	CSV         string
	CSVOptions  gradebook.CSVOptions
	FeedbackDir string
	XLSXOptions gradebook.XLSXOptions
	// HTML is the class report (clase.html, "" none); with FeedbackDir,
	// each student's page is written there too, beside the text. Version
	// names the tool in them.
	HTML, Version string

	// Progress, if not nil, is called once per host as it finishes (never
	// concurrently).
	Progress func(HostResult)
	// Warn, if not nil, gets warnings (one line each).
	Warn io.Writer

	// saved, when set (by Run), keeps each host's result as it finishes.
	saved func(HostResult)
	// Documents, when set, also grades the students' submitted documents
	// (documents.go); with no Targets, the documents alone.
	Documents *DocumentOptions
}

// HostResult is what became of one host.
type HostResult struct {
	Row gradebook.Row
	// Elapsed is the time spent on the host.
	Elapsed time.Duration
	// Err is why the host could not be graded (nil when it was); classified
	// with internal/fail.
	Err error
	// Interrupted is true when the run was cancelled before the host was
	// done.
	Interrupted bool
	// Sudo says whether the probe ran as root (directly or with sudo).
	Sudo bool
	// Recovered: this run did not finish the host; its row is the one an
	// earlier, unfinished run saved in the journal (see JournalPath).
	Recovered bool
	// Facts are what was observed on the host (nil when not probed).
	Facts *checks.HostFacts
}

// Summary is the outcome of a run.
type Summary struct {
	Hosts []HostResult
	// Elapsed is the wall time of the visits.
	Elapsed time.Duration
	// Files written.
	Written []string
	// Documents is what the students' documents added (nil without
	// --submissions).
	Documents *DocumentReport
}

// Graded counts the hosts graded.
func (s *Summary) Graded() int {
	return s.count(func(h HostResult) bool { return h.Err == nil && !h.Interrupted })
}

// Unreachable counts the hosts that could not be graded.
func (s *Summary) Unreachable() int {
	return s.count(func(h HostResult) bool { return h.Err != nil && !h.Interrupted })
}

// Interrupted counts the hosts not graded because the run was cancelled.
func (s *Summary) Interrupted() int { return s.count(func(h HostResult) bool { return h.Interrupted }) }

func (s *Summary) count(f func(HostResult) bool) int {
	n := 0
	for _, h := range s.Hosts {
		if f(h) {
			n++
		}
	}
	return n
}

// Run grades every target and writes the outputs: it checks that they can be
// written, visits the hosts, then writes the spreadsheet, the CSV and the
// feedback. The error is nil when every host was graded; fail.Unreachable
// (after writing) when some could not be; fail.Interrupted (after writing
// the rows finished) when ctx was cancelled; fail.Usage for bad options or
// outputs, before any host is visited.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	manual, err := Preflight(o)
	if err != nil {
		return nil, err
	}
	// Rows are journaled as each host finishes, so a crash keeps them; a
	// journal left by an earlier run that did not finish gives the rows of
	// the hosts this one does not finish.
	jpath := JournalPath(o.Out)
	earlier, bad, err := readJournal(jpath)
	if err != nil {
		return nil, err
	}
	if o.Warn != nil && (len(earlier) > 0 || bad > 0) {
		fmt.Fprintf(o.Warn, "warning: %s holds %d rows of an earlier grade that did not finish (%d unreadable lines); they are used for hosts this run does not grade\n", jpath, len(earlier), bad)
	}
	j, err := openJournal(jpath)
	if err != nil {
		return nil, fail.New(fail.Usage, "make the directory of --out writable", err)
	}
	o.saved = func(h HostResult) {
		if err := j.add(h); err != nil && o.Warn != nil {
			fmt.Fprintf(o.Warn, "warning: %v; the rows are written at the end only\n", err)
		}
	}
	start := time.Now()
	docs := startDocuments(ctx, o)
	hosts := Visit(ctx, o)
	for i, h := range hosts {
		if l, ok := earlier[h.Row.Key()]; ok && h.Interrupted {
			hosts[i] = HostResult{Row: l.Row, Recovered: true}
			if l.Err != "" {
				hosts[i].Err = errors.New(l.Err)
			}
		}
	}
	sum := &Summary{Hosts: hosts, Elapsed: time.Since(start)}
	rows := make([]gradebook.Row, len(hosts))
	for i, h := range hosts {
		rows[i] = h.Row
	}
	if docs != nil {
		if rows, sum.Documents, err = docs.apply(&o, hosts, rows, o.Warn); err != nil {
			return sum, err
		}
		printDocumentReport(o.Warn, sum.Documents)
	}
	if w := o.Warn; w != nil {
		var lost []string
		for k := range manual {
			if !hasKey(rows, k) {
				lost = append(lost, k)
			}
		}
		if len(lost) > 0 {
			sort.Strings(lost)
			fmt.Fprintf(w, "warning: %s had manual marks for students not graded in this run (%s); their rows are kept as they were, marked for review\n",
				o.Out, strings.Join(lost, ", "))
		}
	}
	// Writing is local and quick: it goes on after a Ctrl-C.
	if err := Write(o, rows, sum); err != nil {
		j.close() // the journal keeps the rows for the next run
		return sum, err
	}
	if err := j.remove(); err != nil && o.Warn != nil {
		fmt.Fprintf(o.Warn, "warning: grade journal: %v\n", err)
	}
	return sum, outcome(ctx, sum)
}

func hasKey(rows []gradebook.Row, k string) bool {
	for _, r := range rows {
		if r.Key() == k {
			return true
		}
	}
	return false
}

func (o *Options) validate() error {
	if o.Rubric == nil {
		return errors.New("grade: no rubric")
	}
	if err := o.checkDocuments(); err != nil {
		return err
	}
	if len(o.Targets) == 0 && !o.documentsOnly() {
		return fail.Errorf(fail.Usage, "give hosts with -i inventory.yaml or --host (or documents with --submissions)", "no host to grade")
	}
	if o.Out == "" {
		return fail.Errorf(fail.Usage, "e.g. --out notas.xlsx", "no output spreadsheet (--out)")
	}
	if !strings.EqualFold(filepath.Ext(o.Out), ".xlsx") {
		return fail.Errorf(fail.Usage, "name it like notas.xlsx", "--out %s: the spreadsheet must be an .xlsx file", o.Out)
	}
	if o.CSV != "" && sameFile(o.CSV, o.Out) {
		return fail.Errorf(fail.Usage, "give --csv another name", "--csv and --out are the same file")
	}
	seen := map[string]string{}
	for _, t := range o.Targets {
		k := t.Student.Key()
		if prev, ok := seen[k]; ok {
			return fail.Errorf(fail.Usage, "give each host its own student id in the inventory",
				"hosts %s and %s have the same student key %q: their rows would be mixed up", prev, t.Student.Host, k)
		}
		seen[k] = t.Student.Host
	}
	return nil
}

func sameFile(a, b string) bool {
	pa, err1 := filepath.Abs(a)
	pb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && pa == pb
}

// Preflight fails, before any host is visited, when an output cannot be
// written: --out (its directory, a lock file, an old sheet that cannot be
// read or holds a bad mark), --csv (its directory, every student's gradebook
// id) and the feedback directory. It returns the manual marks of the old
// sheet.
func Preflight(o Options) (map[string]gradebook.Manual, error) {
	if err := gradebook.CheckWritable(o.Out); err != nil {
		return nil, err
	}
	manual, err := gradebook.ReadManual(o.Out, o.Rubric)
	if err != nil {
		return nil, err
	}
	if o.CSV != "" && o.documentsOnly() {
		// Moodle's gradebook import finds a student by email or idnumber;
		// a documents-only row knows only the name of Moodle's folder.
		return nil, fail.Errorf(fail.Usage, "give -i clase.yaml with the students' emails (the submissions are matched to them), or leave --csv out: notas.xlsx has the marks",
			"--csv needs every student's email or idnumber for Moodle's gradebook import, and --submissions without -i only knows the names of Moodle's folders")
	}
	if o.CSV != "" && !o.documentsOnly() {
		if err := gradebook.CheckWritable(o.CSV); err != nil {
			return nil, err
		}
		rows := make([]gradebook.Row, len(o.Targets))
		for i, t := range o.Targets {
			rows[i] = gradebook.Row{Student: t.Student}
		}
		if err := gradebook.WriteCSV(io.Discard, o.Rubric, rows, nil, o.CSVOptions); err != nil {
			return nil, err
		}
	}
	if o.HTML != "" {
		if err := gradebook.CheckWritable(o.HTML); err != nil {
			return nil, err
		}
	}
	if o.FeedbackDir != "" {
		if err := os.MkdirAll(o.FeedbackDir, 0o755); err != nil {
			return nil, fail.New(fail.Usage, "choose another --feedback directory", fmt.Errorf("feedback directory: %w", err))
		}
		f, err := os.CreateTemp(o.FeedbackDir, ".deploylab-write-test-*")
		if err != nil {
			return nil, fail.New(fail.Usage, "choose a writable --feedback directory", fmt.Errorf("feedback directory: %w", err))
		}
		f.Close()
		os.Remove(f.Name())
	}
	return manual, nil
}

// Write writes the spreadsheet, the CSV and the feedback texts for rows.
func Write(o Options, rows []gradebook.Row, sum *Summary) error {
	if err := gradebook.WriteXLSX(o.Out, o.Rubric, rows, o.XLSXOptions); err != nil {
		// The sheet was checked before the visits; if it became unwritable
		// since (opened in LibreOffice meanwhile), the grades still must
		// not be lost: they go to a new file next to it.
		rescue := RescuePath(o.Out, time.Now())
		if err2 := gradebook.WriteXLSX(rescue, o.Rubric, rows, o.XLSXOptions); err2 == nil {
			if sum != nil {
				sum.Written = append(sum.Written, rescue)
			}
			return fail.New(fail.KindOf(err), "the grades of this run are in "+rescue+" (without the manual marks of "+filepath.Base(o.Out)+"); fix the problem and run grade again",
				fmt.Errorf("%w (grades saved in %s)", err, rescue))
		}
		return err
	}
	if sum != nil {
		sum.Written = append(sum.Written, o.Out)
	}
	var manual map[string]gradebook.Manual
	if o.CSV != "" || o.FeedbackDir != "" || o.HTML != "" {
		var err error
		if manual, err = gradebook.ReadManual(o.Out, o.Rubric); err != nil {
			return err
		}
	}
	if o.CSV != "" {
		if err := gradebook.WriteCSVFile(o.CSV, o.Rubric, rows, manual, o.CSVOptions); err != nil {
			return err
		}
		if sum != nil {
			sum.Written = append(sum.Written, o.CSV)
		}
	}
	if o.FeedbackDir != "" {
		for _, row := range rows {
			p := filepath.Join(o.FeedbackDir, FeedbackName(row.Student))
			if err := atomicfile.WriteFile(p, []byte(gradebook.Feedback(o.Rubric, row, manual[row.Key()])), 0o644); err != nil {
				return fmt.Errorf("write feedback: %w", err)
			}
		}
		if sum != nil {
			sum.Written = append(sum.Written, o.FeedbackDir+string(filepath.Separator))
		}
	}
	return writeHTML(o, rows, manual, sum)
}

// writeHTML writes the class report and the students' pages.
func writeHTML(o Options, rows []gradebook.Row, manual map[string]gradebook.Manual, sum *Summary) error {
	if o.HTML == "" && o.FeedbackDir == "" {
		return nil
	}
	rep := render.BuildClass(o.Rubric, rows, manual, render.ClassOptions{Version: o.Version, Generated: time.Now()})
	if o.HTML != "" {
		if err := rep.WriteFile(o.HTML); err != nil {
			return fmt.Errorf("write the class report: %w", err)
		}
		if sum != nil {
			sum.Written = append(sum.Written, o.HTML)
		}
	}
	for i, row := range rows {
		if o.FeedbackDir == "" {
			break
		}
		var b strings.Builder
		if err := rep.WriteStudentHTML(&b, i); err != nil {
			return err
		}
		p := filepath.Join(o.FeedbackDir, strings.TrimSuffix(FeedbackName(row.Student), ".txt")+".html")
		if err := atomicfile.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("write feedback: %w", err)
		}
	}
	return nil
}

// RescuePath is where the grades go when out cannot be written after the
// visits: notas.xlsx → notas.20261122-101500.xlsx.
func RescuePath(out string, now time.Time) string {
	ext := filepath.Ext(out)
	return strings.TrimSuffix(out, ext) + "." + now.Format("20060102-150405") + ext
}

// FeedbackName is the file name of a student's feedback text: the host name
// (unique in an inventory), made safe for a file name.
func FeedbackName(s gradebook.Student) string {
	name := s.Host
	if name == "" {
		name = s.Key()
	}
	var b strings.Builder
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteRune('_')
		}
	}
	return strings.TrimLeft(b.String(), ".") + ".txt"
}

// outcome classifies the end of a run.
func outcome(ctx context.Context, sum *Summary) error {
	if n := sum.Interrupted(); n > 0 || ctx.Err() != nil {
		return fail.New(fail.Interrupted, "run grade again to grade the rest (manual marks are kept)",
			fmt.Errorf("grade interrupted: %d of %d hosts graded, the rest marked \"no calificado\": %w", sum.Graded(), len(sum.Hosts), context.Canceled))
	}
	var names []string
	auth := true
	for _, h := range sum.Hosts {
		if h.Err != nil {
			names = append(names, h.Row.Host+" ("+h.Row.Scorecard.Reason+")")
			if fail.KindOf(h.Err) != fail.Auth {
				auth = false
			}
		}
	}
	if len(names) == 0 {
		return nil
	}
	kind := fail.Unreachable
	hint := "their rows are marked for review; run grade again when they are up"
	if auth {
		kind = fail.Auth
		hint = "check the user, key and known_hosts for these hosts; their rows are marked for review"
	}
	return fail.Errorf(kind, hint, "%d of %d hosts could not be graded: %s", len(names), len(sum.Hosts), strings.Join(names, ", "))
}

// Visit grades every target, Forks at a time, and returns one result per
// target in the targets' order. Each host runs within HostTimeout; a host
// whose visit panics or does not stop in time gets a row saying why, and
// the others are graded. o.Progress (and o.saved, when set) get each
// host's result as soon as it finishes. A cancelled ctx stops the visits;
// the hosts not finished are marked Interrupted.
func Visit(ctx context.Context, o Options) []HostResult {
	limit := o.HostTimeout
	if limit <= 0 {
		limit = DefaultHostTimeout
	}
	forks := o.Forks
	if forks <= 0 {
		forks = DefaultForks
	}
	out := make([]HostResult, len(o.Targets))
	fleet.Each(ctx, len(o.Targets), fleet.Options{Forks: forks, Timeout: limit, Name: func(i int) string { return o.Targets[i].Student.Host }},
		func(ctx context.Context, i int) (HostResult, error) {
			return GradeHost(ctx, o, o.Targets[i]), nil
		}, func(r fleet.Result[HostResult]) {
			t := o.Targets[r.Index]
			res := r.Value
			switch {
			case r.Interrupted:
				res = interrupted(o.Rubric, t, r.Elapsed)
			case r.Err != nil:
				// The visit panicked or did not stop: the host's row says
				// why; the others are not touched.
				res = couldNotCheck(o.Rubric, t, r.Err, r.Elapsed)
			}
			out[r.Index] = res
			if res.Interrupted {
				return
			}
			if o.saved != nil {
				o.saved(res)
			}
			if o.Progress != nil {
				o.Progress(res)
			}
		})
	return out
}

// couldNotCheck is the row of a host whose visit failed in deploylab
// itself (a panic, a visit that did not stop): marked for review, with the
// reason.
func couldNotCheck(r *checks.Rubric, t Target, err error, elapsed time.Duration) HostResult {
	reason := safetext.Line(strings.TrimPrefix(err.Error(), t.Student.Host+": "))
	rep := checks.Score(r, checks.HostFacts{Host: t.Student.Host, Error: "could not check: " + reason}, nil)
	return HostResult{Row: gradebook.Row{Student: t.Student, Scorecard: rep}, Elapsed: elapsed, Err: err}
}

// NotGradedReason is the reason given for hosts a cancelled run did not finish.
const NotGradedReason = "no calificado: la ejecución se interrumpió antes de terminar este host"

func interrupted(r *checks.Rubric, t Target, elapsed time.Duration) HostResult {
	rep := checks.Score(r, checks.HostFacts{Host: t.Student.Host, Error: NotGradedReason}, nil)
	return HostResult{Row: gradebook.Row{Student: t.Student, Scorecard: rep}, Elapsed: elapsed, Interrupted: true}
}

// GradeHost grades one target under its own time limit: connect, probe,
// active checks (with o.Active), bench results, checks.Score. It never fails:
// a host that cannot be graded gets an unreachable report with the reason.
func GradeHost(ctx context.Context, o Options, t Target) HostResult {
	start := time.Now()
	limit := o.HostTimeout
	if limit <= 0 {
		limit = DefaultHostTimeout
	}
	hctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	facts, sudo, err := observe(hctx, o, t)
	facts.Host = t.Student.Host
	if err != nil {
		// ctx may be the fleet's per-host context: its deadline is this
		// host's time limit, not a cancelled run.
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return interrupted(o.Rubric, t, time.Since(start))
		}
		facts.Reachable = false
		facts.Error = Reason(err, limit, hctx.Err() != nil)
	}
	var bench []checks.BenchSummary
	if o.Bench != nil && facts.Reachable {
		b, berr := o.Bench.Summaries(t.Student.Host)
		if berr != nil {
			facts.Notes = append(facts.Notes, "bench: "+berr.Error())
		}
		bench = b
	}
	rep := checks.Score(o.Rubric, facts, bench)
	return HostResult{Row: gradebook.Row{Student: t.Student, Scorecard: rep}, Elapsed: time.Since(start), Err: err, Sudo: sudo, Facts: &facts}
}

// observe connects to the host and gathers its facts (and, with o.Active,
// the active observations).
func observe(ctx context.Context, o Options, t Target) (checks.HostFacts, bool, error) {
	dial := o.Dial
	if dial == nil {
		dial = DefaultDial
	}
	c, err := dial(ctx, t.Host)
	if err != nil {
		return checks.HostFacts{}, false, err
	}
	defer c.Close()
	p := &prober{r: c, host: t.Host.String()}
	facts, err := p.probe(ctx, o.Rubric.ProbeOptions())
	if err != nil {
		return facts, p.sudo, err
	}
	if o.Active && hasActive(o.Rubric) {
		a, err := p.active(ctx, o.Rubric, &facts)
		if err != nil {
			return facts, p.sudo, err
		}
		facts.Active = a
	}
	return facts, p.sudo, nil
}

// DefaultDial connects with remote.Dial and the user's ssh configuration.
func DefaultDial(ctx context.Context, h remote.Host) (Runner, error) {
	c, err := remote.Dial(ctx, h)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Reason is the short reason shown in the sheet for a host that could not be
// graded: "connection refused", "timed out after 2m0s", the error otherwise.
func Reason(err error, limit time.Duration, timedOut bool) string {
	var ne net.Error
	switch {
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %s (%s)", limit, lastPart(err))
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "no route to host"
	case errors.Is(err, syscall.ENETUNREACH):
		return "network unreachable"
	case errors.As(err, &ne) && ne.Timeout():
		return "connection timed out"
	case remote.IsHostKeyError(err):
		return "host key refused: " + err.Error()
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "unknown host " + dnsErr.Name
	}
	return err.Error()
}

// lastPart is the step an error happened in, for a timeout's reason.
func lastPart(err error) string {
	s := err.Error()
	if i := strings.Index(s, ": "); i > 0 {
		s = s[:i]
	}
	return s
}
