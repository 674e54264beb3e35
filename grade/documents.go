package grade

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/deploylab/deploylab/checks"
	"github.com/deploylab/deploylab/documents"
	"github.com/deploylab/deploylab/gradebook"
	"github.com/deploylab/deploylab/internal/fail"
)

// DocumentOptions say where the students' documents are (grade
// --submissions): their marks are suggestions (see checks.ScoreDocuments).
type DocumentOptions struct {
	// Submissions is Moodle's "Download all submissions" zip or a folder.
	Submissions string
	// Template is the template document (its headings are the expected
	// sections; its text and pictures are not copying); "" none.
	Template string
	// Statement is the practice's statement (its text is not copying).
	Statement string
	// NoOCR turns the reading of screenshots off.
	NoOCR bool
	// OCRCacheDir keeps the text read in screenshots between runs.
	OCRCacheDir string
	// Workers bounds the files read at once (default: the CPUs).
	Workers int
	// Limits bound what the archive may unpack to (zero: the defaults).
	Limits documents.Limits
}

// documentsOnly reports whether the run grades documents without hosts.
func (o *Options) documentsOnly() bool {
	return len(o.Targets) == 0 && o.Documents != nil && o.Documents.Submissions != ""
}

// checkDocuments fails early when the submissions or the template cannot
// be read.
func (o *Options) checkDocuments() error {
	if o.Documents == nil {
		return nil
	}
	for _, p := range []struct{ flag, path string }{{"--submissions", o.Documents.Submissions}, {"--template", o.Documents.Template}, {"--statement", o.Documents.Statement}} {
		if p.path == "" {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			return fail.New(fail.Usage, "give the path of Moodle's submissions zip or folder", fmt.Errorf("%s: %w", p.flag, err))
		}
	}
	return nil
}

// docRun is the reading of the documents, started alongside the visits.
type docRun struct {
	done  chan struct{}
	class *documents.Class
	err   error
}

func startDocuments(ctx context.Context, o Options) *docRun {
	if o.Documents == nil || o.Documents.Submissions == "" {
		return nil
	}
	d := &docRun{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.class, d.err = documents.Load(ctx, documents.Options{
			Submissions: o.Documents.Submissions, Template: o.Documents.Template, Statement: o.Documents.Statement,
			OCR: !o.Documents.NoOCR, OCRCacheDir: o.Documents.OCRCacheDir, Workers: o.Documents.Workers, Limits: o.Documents.Limits,
		})
	}()
	return d
}

// DocumentReport is what the documents added to a run.
type DocumentReport struct {
	// Submissions read, matched and not.
	Submissions, Matched int
	Unmatched            []string
	// Missing are the students without a submission.
	Missing []string
	Similar []gradebook.SimilarPair
	// Problems are one line each: an unreadable file, an unsafe zip entry.
	Problems []string
	// OCRMissing says why screenshots were not read ("" when they were).
	OCRMissing string
}

// apply waits for the documents, scores them into rows (suggested marks),
// finds similar pairs and fills the Similitud and Entregas sheets. With no
// targets, it makes one row per submission.
func (d *docRun) apply(o *Options, hosts []HostResult, rows []gradebook.Row, warn io.Writer) ([]gradebook.Row, *DocumentReport, error) {
	<-d.done
	if d.err != nil {
		if d.class != nil {
			d.class.Close()
		}
		return rows, nil, fail.New(fail.Usage, "give Moodle's \"Download all submissions\" zip or a folder with one file or folder per student", d.err)
	}
	defer d.class.Close()
	c := d.class
	rep := &DocumentReport{Submissions: len(c.Set.Submissions), OCRMissing: c.OCRMissing}
	rep.Problems = append(rep.Problems, c.Set.Problems...)
	if c.OCRMissing != "" && warn != nil {
		fmt.Fprintf(warn, "warning: %s\n", c.OCRMissing)
	}
	onlyDocs := len(rows) == 0
	var subOf []*documents.Submission
	if onlyDocs {
		for _, s := range c.Set.Submissions {
			rows = append(rows, gradebook.Row{Student: gradebook.Student{Name: s.Name}})
			subOf = append(subOf, s)
		}
		rep.Matched = len(subOf)
	} else {
		students := make([]documents.Student, len(rows))
		for i, r := range rows {
			students[i] = documents.Student{Key: r.Key(), Name: r.Name, ID: r.ID, Email: r.Email}
		}
		m := documents.Match(c.Set.Submissions, students)
		subOf = make([]*documents.Submission, len(rows))
		for i, r := range rows {
			subOf[i] = m.ByStudent[r.Key()]
		}
		rep.Matched = len(m.ByStudent)
		for _, s := range m.Unmatched {
			rep.Unmatched = append(rep.Unmatched, s.Folder)
		}
		defer func() { o.XLSXOptions.Submissions = submissionLines(c, rows, subOf, m) }()
	}
	if onlyDocs {
		o.XLSXOptions.Submissions = submissionLines(c, rows, subOf, documents.Matching{})
	}
	works := make([]documents.Work, len(rows))
	for i := range rows {
		row := &rows[i]
		sub := subOf[i]
		facts := c.Facts(sub)
		if onlyDocs {
			row.Scorecard = documentsOnlyCard(o.Rubric, row.Name)
		}
		checks.ScoreDocuments(o.Rubric, &row.Scorecard, facts, !onlyDocs)
		switch {
		case sub == nil:
			row.Scorecard.ReviewNotes = append(row.Scorecard.ReviewNotes, "sin entrega")
			rep.Missing = append(rep.Missing, row.Name)
		case !facts.Readable:
			row.Scorecard.ReviewNotes = append(row.Scorecard.ReviewNotes, "entrega ilegible: "+strings.Join(facts.Problems, "; "))
		case len(facts.Problems) > 0:
			row.Scorecard.ReviewNotes = append(row.Scorecard.ReviewNotes, facts.Problems...)
		}
		for _, p := range facts.Problems {
			rep.Problems = append(rep.Problems, row.Name+": "+p)
		}
		w := documents.Work{Who: row.Key(), Name: row.Name}
		if sub != nil {
			w.Docs = c.Docs[sub]
		}
		if i < len(hosts) && !onlyDocs {
			w.VM = vmPrint(hosts[i].Facts)
		}
		works[i] = w
	}
	pairs := documents.Similar(works, c.Reference(), documents.SimilarityOptions{})
	byKey := map[string]*gradebook.Row{}
	for i := range rows {
		byKey[rows[i].Key()] = &rows[i]
	}
	rep.Similar = []gradebook.SimilarPair{}
	for _, p := range pairs {
		detail := ""
		switch p.Kind {
		case "texto":
			detail = fmt.Sprintf("%d palabras", p.Words)
		case "captura":
			detail = fmt.Sprintf("distancia %d", p.Distance)
		}
		rep.Similar = append(rep.Similar, gradebook.SimilarPair{A: p.NameA, B: p.NameB, Kind: p.Kind, Detail: detail, Evidence: p.Evidence})
		for _, side := range [][2]string{{p.A, p.NameB}, {p.B, p.NameA}} {
			if r := byKey[side[0]]; r != nil {
				r.Scorecard.ReviewNotes = append(r.Scorecard.ReviewNotes, fmt.Sprintf("similitud (%s) con %s", p.Kind, side[1]))
			}
		}
	}
	o.XLSXOptions.Similar = rep.Similar
	return rows, rep, nil
}

// documentsOnlyCard is the scorecard of a row graded from its document
// alone: the rubric's criteria, none scored from a VM.
func documentsOnlyCard(r *checks.Rubric, name string) checks.Scorecard {
	sc := checks.Scorecard{Host: name, Reason: "solo documento", DocumentsOnly: true}
	for _, c := range r.Criteria {
		sc.Criteria = append(sc.Criteria, checks.CriterionResult{ID: c.ID, Name: c.Name, Points: c.Points, Manual: c.Manual})
	}
	return sc
}

// vmPrint is what identifies a VM among the facts grade observed: cloned
// VMs share it.
func vmPrint(f *checks.HostFacts) *documents.VMPrint {
	if f == nil || !f.Reachable {
		return nil
	}
	p := &documents.VMPrint{MachineID: f.MachineID, HostKeys: f.HostKeys}
	for _, h := range f.History {
		p.History = append(p.History, h.Line)
	}
	for _, h := range f.HistoryFiles {
		p.HistoryFiles = append(p.HistoryFiles, documents.HistorySum{File: h.File, Lines: h.Lines, Sum: h.Sum, HeadSum: h.HeadSum})
	}
	return p
}

func submissionLines(c *documents.Class, rows []gradebook.Row, subOf []*documents.Submission, m documents.Matching) []gradebook.SubmissionLine {
	who := map[*documents.Submission]int{}
	for i, s := range subOf {
		if s != nil {
			who[s] = i
		}
	}
	var out []gradebook.SubmissionLine
	for _, s := range c.Set.Submissions {
		l := gradebook.SubmissionLine{Folder: s.Folder}
		if i, ok := who[s]; ok {
			l.Student = rows[i].Name
			l.How = m.How[rows[i].Key()]
			if l.How == "" {
				l.How = "carpeta"
			}
		}
		var files []string
		var probs []string
		probs = append(probs, s.Problems...)
		for _, d := range c.Docs[s] {
			files = append(files, fmt.Sprintf("%s (%s, %d págs., %d capturas)", d.File, orUnknown(d.Format), len(d.Pages), len(d.Images)))
			probs = append(probs, d.Problems...)
		}
		if len(s.Files) == 0 {
			probs = append(probs, "entrega vacía")
		}
		l.Files = strings.Join(files, "\n")
		l.Problems = strings.Join(probs, "\n")
		out = append(out, l)
	}
	return out
}

func orUnknown(s string) string {
	if s == "" {
		return "formato desconocido"
	}
	return s
}

// printDocumentReport writes the documents' outcome on the terminal: one
// line per problem, unmatched submission and similar pair.
func printDocumentReport(w io.Writer, rep *DocumentReport) {
	if w == nil || rep == nil {
		return
	}
	fmt.Fprintf(w, "documents: %d submissions, %d matched to students\n", rep.Submissions, rep.Matched)
	for _, u := range rep.Unmatched {
		fmt.Fprintf(w, "documents: unmatched submission %q (no student in the inventory has this name, id or email)\n", u)
	}
	for _, m := range rep.Missing {
		fmt.Fprintf(w, "documents: %s: sin entrega\n", m)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "documents: %s\n", p)
	}
	for _, p := range rep.Similar {
		fmt.Fprintf(w, "documents: similar (%s, %s): %s and %s\n", p.Kind, p.Detail, p.A, p.B)
	}
}
