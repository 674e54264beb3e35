package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/deploylab/deploylab"
	"github.com/deploylab/deploylab/bench"
	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/grade"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/config"
	"github.com/deploylab/deploylab/internal/fail"
	"github.com/deploylab/deploylab/internal/safetext"
	"github.com/deploylab/deploylab/remote"
)

const gradeLong = `Grade every student's VM into a spreadsheet.

For each host (in parallel, --forks at a time, each within --timeout, 2m) it
connects over SSH, observes the host once (one batched round trip: processes,
listening ports, HTTP answers, the blocking experiment, PM2, systemd units,
project files, shell history), runs the rubric's checks, adds the latest
results of deploylab bench, and scores each criterion. It grades a student's
hand-made deployment (Node + Express + cluster + PM2 + loadtest) and
deploylab's own the same way.

--out notas.xlsx has the sheets Notas (one row per student; the manual criteria
are typed there by the teacher and kept when grading again), Detalle (every
check with what was observed), Bench and Rúbrica. --csv writes the grades in
the shape Moodle imports; --feedback DIR writes one text (and one HTML page)
per student saying why each point was won or lost and how to fix it; --html
writes the class report: the marks of each criterion as a distribution, the
class table with a coloured cell per criterion that opens the evidence, and a
page per student, in one self-contained file.

--active also runs the checks that disturb the host: a worker is killed (does
it come back?) and the server is reloaded under load (are requests lost?).

--submissions takes Moodle's "Download all submissions" zip (or a folder with
one file or folder per student): the documents (PDF, DOCX, ODT, MD, TXT, HTML;
screenshots read with tesseract OCR) are matched to the inventory's students by
name, id or email and scored against the rubric's document checks: the
"documented" half of each criterion and the questions and format criteria, as
*suggested* marks (blue italics with a note; a mark the teacher types wins and
is kept by a re-grade). Pairs sharing long passages, the same screenshot or a
cloned VM are listed in the sheet Similitud and flagged in Revisar. Without -i
or --host, only the documents are graded (a row per submission). --template
names the template document (its headings are the expected sections).

An unreachable host still gets its row, marked for review; the exit code is
then 3. The outputs are checked before any host is visited. Ctrl-C writes the
rows finished so far.

  deploylab grade -i clase.yaml --out notas.xlsx --csv notas.csv --feedback informes/
  deploylab grade -i clase.yaml --out notas.xlsx --html clase.html
  deploylab grade --host deploy@192.168.1.50 --out notas.xlsx --active
  deploylab grade -i clase.yaml --submissions entregas.zip --template plantilla.docx --out notas.xlsx`

func newGradeCmd(r *rootCmd) *cobra.Command {
	c := &cobra.Command{
		Use:   "grade --out notas.xlsx (-i inventory | --host HOST)",
		Short: "Grade the students' VMs into a spreadsheet (and a gradebook CSV)",
		Long:  gradeLong,
		Args:  noArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := r.load(c)
			if err != nil {
				return err
			}
			return runGrade(r, c, cfg)
		},
	}
	f := c.Flags()
	addHostFlags(c, grade.DefaultHostTimeout)
	f.StringP("out", "o", "", "the spreadsheet to write (notas.xlsx); manual marks in an existing one are kept")
	f.String("csv", "", "also write the grades as a CSV in Moodle's import shape")
	f.String("feedback", "", "also write one feedback text (and HTML page) per student in this directory")
	f.String("html", "", "also write the class report as one self-contained HTML file (clase.html): marks per criterion, the class table, a page per student")
	f.String("rubric", "", "the rubric to grade with (default: the built-in rubric.yaml)")
	f.Bool("active", false, "also run the checks that disturb the host (kill a worker, reload under load)")
	// --host-timeout is the old name of --timeout (one host's whole visit).
	f.SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if to, ok := config.Renamed[name]; ok {
			name = to
		}
		return pflag.NormalizedName(name)
	})
	f.String("results-dir", fmt.Sprint(config.Defaults["results-dir"]), "where deploylab bench stored its results (the latest per host are graded)")
	f.String("submissions", "", "also grade the students' documents: Moodle's \"Download all submissions\" zip or a folder")
	f.String("template", "", "the template document whose sections the documents must have (with --submissions)")
	f.String("statement", "", "the practice's statement: its text in a document is not copying (with --submissions)")
	f.Bool("no-ocr", false, "do not read the screenshots' text with tesseract (with --submissions)")
	f.String("gradebook-id", "auto", "the CSV's identifying column: email, idnumber, or auto (email when every student has one)")
	return c
}

func loadRubric(path string) (*checks.Rubric, error) {
	if path == "" {
		return checks.ParseRubric(deploylab.DefaultRubricName, deploylab.DefaultRubric)
	}
	return checks.LoadRubric(path)
}

func runGrade(r *rootCmd, c *cobra.Command, cfg *config.Config) error {
	out, csvPath, fbDir, htmlPath, active := cfg.Out, cfg.CSV, cfg.Feedback, cfg.HTML, cfg.Active
	if out == "" {
		return fail.Errorf(fail.Usage, "e.g. deploylab grade -i clase.yaml --out notas.xlsx", "--out is required")
	}
	rubric, err := loadRubric(cfg.Rubric)
	if err != nil {
		return err
	}
	docs, err := documentFlags(c, cfg)
	if err != nil {
		return err
	}
	hosts, err := targets(cfg, "deploylab grade -i clase.yaml --out notas.xlsx")
	if err != nil && (docs == nil || cfg.Inventory != "" || cfg.Host != "") {
		return err
	}
	// --submissions without -i or --host: the documents alone.
	targets := grade.TargetsOf(hosts)
	auto := 0.0
	for _, cr := range rubric.Automatic() {
		auto += cr.Points
	}
	benchSrc, err := gradeBenchSource(cfg, r.stderr)
	if err != nil {
		return err
	}
	opts := grade.Options{
		Rubric: rubric, Targets: targets, Forks: cfg.Forks, HostTimeout: cfg.Timeout, Active: active,
		Bench: benchSrc,
		Dial:  func(ctx context.Context, h remote.Host) (grade.Runner, error) { return r.dial(ctx, h) },
		Out:   out, CSV: csvPath, FeedbackDir: fbDir, HTML: htmlPath, Version: versionString(),
		CSVOptions: gradebook.CSVOptions{ID: grade.IDColumn(cfg.GradebookID, targets)},
		Warn:       r.stderr,
		Documents:  docs,
	}
	width := 4
	for _, t := range targets {
		width = max(width, len(t.Student.Host))
	}
	opts.Progress = func(h grade.HostResult) {
		printGradeLine(r.stdout, width, h, auto)
	}
	sum, err := grade.Run(c.Context(), opts)
	if sum != nil {
		printGradeSummary(r.stdout, sum)
	}
	return err
}

// gradeBenchSource opens the bench results store (results-dir); a directory
// that does not exist means no bench has been run (the bench checks are then
// skipped).
func gradeBenchSource(cfg *config.Config, warn io.Writer) (grade.BenchSource, error) {
	dir := config.ExpandHome(cfg.ResultsDir)
	if st, err := os.Stat(dir); dir == "" || err != nil || !st.IsDir() {
		return nil, nil
	}
	s, err := bench.OpenStore(dir)
	if err != nil {
		return nil, err
	}
	s.Warn = warn
	return s, nil
}

func printGradeLine(w io.Writer, width int, h grade.HostResult, auto float64) {
	rep := h.Row.Scorecard
	var s string
	switch {
	case h.Interrupted:
		s = "interrupted"
	case !rep.Reachable:
		s = "unreachable: " + safetext.Line(rep.Reason)
	default:
		s = fmt.Sprintf("%s/%s", fmtPoints(rep.Score), fmtPoints(auto))
		if rep.NeedsReview {
			s += "  needs review"
		}
	}
	fmt.Fprintf(w, "%-*s  %s  (%.1fs)\n", width, h.Row.Host, s, h.Elapsed.Seconds())
}

func fmtPoints(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

func printGradeSummary(w io.Writer, sum *grade.Summary) {
	var parts []string
	if n := sum.Unreachable(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d unreachable", n))
	}
	if n := sum.Interrupted(); n > 0 {
		parts = append(parts, fmt.Sprintf("%d not graded (interrupted)", n))
	}
	line := fmt.Sprintf("graded %d of %d hosts in %.1fs", sum.Graded(), len(sum.Hosts), sum.Elapsed.Seconds())
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	fmt.Fprintln(w, line)
	if len(sum.Written) > 0 {
		fmt.Fprintf(w, "wrote %s\n", strings.Join(sum.Written, ", "))
	}
}

// documentFlags reads --submissions, --template, --statement and --no-ocr
// (nil without --submissions).
func documentFlags(c *cobra.Command, cfg *config.Config) (*grade.DocumentOptions, error) {
	subs, tmpl, stmt, noOCR := cfg.Submissions, cfg.Template, cfg.Statement, cfg.NoOCR
	if subs == "" {
		if tmpl != "" || stmt != "" {
			return nil, fail.Errorf(fail.Usage, "add --submissions entregas.zip", "--template and --statement need --submissions")
		}
		return nil, nil
	}
	cache := ""
	if d, err := os.UserCacheDir(); err == nil {
		cache = filepath.Join(d, "deploylab", "ocr")
	}
	return &grade.DocumentOptions{Submissions: subs, Template: tmpl, Statement: stmt, NoOCR: noOCR, OCRCacheDir: cache}, nil
}
