package documents

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/deploylab/deploylab/checks"
)

// Options say where the submissions are and how to read them.
type Options struct {
	// Submissions is Moodle's zip or a folder.
	Submissions string
	// Template is the template document whose headings the sections check
	// looks for (and whose text and pictures are not copying); "" none.
	Template string
	// Statement is the practice's statement (its text is not copying); ""
	// none.
	Statement string
	// OCR reads screenshots with tesseract (when installed).
	OCR bool
	// OCRCacheDir keeps OCR results between runs ("" = memory only).
	OCRCacheDir string
	// OCRLangs is tesseract's -l ("" = "spa", see OCR.Langs).
	OCRLangs string
	// Workers bounds the files read at once (default: twice the CPUs).
	Workers int
	Limits  Limits
	// Timeout bounds each external tool run (default 60 s).
	Extract ExtractOptions
}

// Class is a class's submissions, read.
type Class struct {
	Set  *Set
	Docs map[*Submission][]*Document
	// Template and Statement, when given.
	Template, Statement *Document
	// OCRMissing says once why screenshots were not read ("" when they were
	// or OCR was off).
	OCRMissing string
	ocrOn      bool
	ocr        *OCR
}

// OCRStats returns the tesseract processes run and the pictures they read
// (0, 0 without OCR).
func (c *Class) OCRStats() (runs, pictures int) {
	if c.ocr == nil {
		return 0, 0
	}
	return c.ocr.Stats()
}

// Close removes the unpacked files.
func (c *Class) Close() error {
	if c == nil {
		return nil
	}
	return c.Set.Close()
}

// Load unpacks and reads every submission (files read in parallel).
func Load(ctx context.Context, o Options) (*Class, error) {
	set, err := LoadSubmissions(o.Submissions, o.Limits)
	if err != nil {
		return nil, err
	}
	c := &Class{Set: set, Docs: map[*Submission][]*Document{}, ocrOn: o.OCR}
	eo := o.Extract
	if eo.TempDir == "" {
		eo.TempDir = set.tmp
	}
	if o.OCR {
		ocr := NewOCR(o.OCRCacheDir)
		ocr.Langs = o.OCRLangs
		if ocr.Available() {
			eo.OCR, c.ocr = ocr, ocr
		} else {
			c.OCRMissing = ocr.Missing()
		}
	}
	for _, ref := range []struct {
		path string
		dst  **Document
	}{{o.Template, &c.Template}, {o.Statement, &c.Statement}} {
		if ref.path == "" {
			continue
		}
		st, err := os.Stat(ref.path)
		if err != nil {
			set.Close()
			return nil, fmt.Errorf("documents: %w", err)
		}
		refOpts := eo
		refOpts.OCR = nil
		d := Extract(ctx, File{Name: filepath.Base(ref.path), Path: ref.path, Size: st.Size()}, refOpts)
		if len(d.Pages) == 0 {
			set.Close()
			return nil, fmt.Errorf("documents: %s: %s", ref.path, strings.Join(d.Problems, "; "))
		}
		*ref.dst = d
	}
	type job struct {
		sub *Submission
		i   int
	}
	var jobs []job
	for _, s := range set.Submissions {
		c.Docs[s] = make([]*Document, len(s.Files))
		for i := range s.Files {
			jobs = append(jobs, job{s, i})
		}
	}
	// Reading a PDF is mostly waiting for poppler's tools: twice the CPUs
	// keep them busy (tesseract is bounded on its own, by OCR.Workers).
	n := o.Workers
	if n <= 0 {
		n = 2 * runtime.NumCPU()
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan job)
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				d := Extract(ctx, j.sub.Files[j.i], eo)
				mu.Lock()
				c.Docs[j.sub][j.i] = d
				mu.Unlock()
			}
		}()
	}
feed:
	for _, j := range jobs {
		select {
		case next <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	for _, s := range set.Submissions {
		for i, d := range c.Docs[s] {
			if d == nil {
				c.Docs[s][i] = &Document{File: s.Files[i].Name, Problems: []string{s.Files[i].Name + ": no leído (interrumpido)"}}
			}
		}
	}
	return c, ctx.Err()
}

// Facts turns a submission (nil: none) into what the document checks read.
func (c *Class) Facts(s *Submission) *checks.DocFacts {
	f := &checks.DocFacts{OCRMissing: c.OCRMissing}
	if !c.ocrOn && c.OCRMissing == "" {
		f.OCRMissing = "OCR desactivado"
	}
	if c.Template != nil {
		for _, h := range c.Template.Headings {
			f.Template = append(f.Template, h.Text)
		}
	}
	if s == nil {
		return f
	}
	f.Submitted = true
	f.Problems = append(f.Problems, s.Problems...)
	if len(s.Files) == 0 {
		f.Problems = append(f.Problems, "entrega vacía: ningún fichero")
	}
	for _, d := range c.Docs[s] {
		f.Files = append(f.Files, d.File)
		f.Problems = append(f.Problems, d.Problems...)
		if len(d.Pages) > 0 && (d.Words() > 0 || len(d.Images) > 0) {
			f.Readable = true
		}
		for _, p := range d.Pages {
			f.Pages = append(f.Pages, checks.DocPage{File: d.File, N: p.N, Text: p.Text})
		}
		f.PageCount += len(d.Pages)
		for _, im := range d.Images {
			f.Images = append(f.Images, checks.DocImage{File: d.File, Page: im.Page, Name: im.Name, OCR: im.OCR, Caption: im.Caption})
		}
		for _, h := range d.Headings {
			f.Headings = append(f.Headings, checks.DocHeading{File: d.File, Page: h.Page, Text: h.Text})
		}
		f.Captions += len(d.Captions)
		f.TextLayer = f.TextLayer || d.TextLayer
		f.OCRPages += d.OCRPages
		if d.TextLayer {
			f.Words += d.Words()
		}
	}
	return f
}

// Reference is the text and pictures of the template and the statement:
// shared with them is not copying.
func (c *Class) Reference() Reference {
	var r Reference
	for _, d := range []*Document{c.Template, c.Statement} {
		if d == nil {
			continue
		}
		r.Texts = append(r.Texts, d.Text())
		for _, im := range d.Images {
			if im.HashOK {
				r.Images = append(r.Images, im.Hash)
			}
		}
	}
	return r
}
