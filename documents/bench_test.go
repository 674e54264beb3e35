package documents

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/deploylab/deploylab/documents/documentstest"
)

// BenchmarkClass reads a class of documents: DEPLOYLAB_BENCH_DOCS documents
// (default 60) of about 15 pages and 20 screenshots each (every screenshot
// different, so OCR's cache does not help), written as DOCX and converted to
// PDF with LibreOffice, then Load (unpack, extract, hash, OCR) and Similar,
// with OCR on and off. Targets on 2 cores: OCR on <= 90 s, off <= 10 s for
// 60 documents. DEPLOYLAB_BENCH_LANGS sets tesseract's languages (default
// spa). A measurement, not a test:
//
//	go test -run XXX -bench Class -benchtime 1x ./documents/
func BenchmarkClass(b *testing.B) {
	n := 60
	if v, err := strconv.Atoi(os.Getenv("DEPLOYLAB_BENCH_DOCS")); err == nil && v > 0 {
		n = v
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	var docx []string
	for s := 0; s < n; s++ {
		spec := documentstest.Spec{Title: fmt.Sprintf("Práctica del alumno %d", s)}
		for sec := 0; sec < 10; sec++ {
			section := documentstest.Section{Heading: fmt.Sprintf("%d. Apartado %d", sec+1, sec+1), PageBreak: sec%2 == 0,
				Paras: []string{documentstest.Filler(uint64(s*100+sec), 250), documentstest.Filler(uint64(s*100+sec+50), 120)}}
			for k := 0; k < 2; k++ {
				section.Shots = append(section.Shots, documentstest.Shot{
					Lines: []string{fmt.Sprintf("alumno%d@debian:~$ loadtest -n %d -c 100 http://localhost:3000/api/500000", s, 1000+sec*10+k),
						fmt.Sprintf("Requests per second: %d", 900+s*7+sec*3+k), fmt.Sprintf("Mean latency: %d.%d ms", 90+s, sec+k),
						fmt.Sprintf("| %d | cluster | online | %d |", k, 40000+s*31+sec)},
					Caption: fmt.Sprintf("Figura %d: prueba %d", sec*2+k+1, k)})
			}
			spec.Sections = append(spec.Sections, section)
		}
		p := filepath.Join(src, fmt.Sprintf("alumno%02d.docx", s))
		if err := documentstest.WriteDOCX(p, spec); err != nil {
			b.Fatal(err)
		}
		docx = append(docx, p)
	}
	if err := documentstest.ToPDF(context.Background(), src, docx...); err != nil {
		b.Fatal(err)
	}
	class := filepath.Join(dir, "class")
	pages, images, runs, pictures := 0, 0, 0, 0
	for s := range docx {
		d := filepath.Join(class, fmt.Sprintf("Alumno %02d_%d_assignsubmission_file_", s, s))
		os.MkdirAll(d, 0o755)
		pdf := filepath.Join(src, fmt.Sprintf("alumno%02d.pdf", s))
		if err := os.Rename(pdf, filepath.Join(d, "informe.pdf")); err != nil {
			b.Fatal(err)
		}
	}
	for _, ocr := range []bool{false, true} {
		b.Run(fmt.Sprintf("ocr=%v", ocr), func(b *testing.B) {
			cpu0 := cpuSeconds()
			for i := 0; i < b.N; i++ {
				c, err := Load(context.Background(), Options{Submissions: class, OCR: ocr, OCRLangs: os.Getenv("DEPLOYLAB_BENCH_LANGS")})
				if err != nil {
					b.Fatal(err)
				}
				var works []Work
				pages, images = 0, 0
				runs, pictures = c.OCRStats()
				for _, s := range c.Set.Submissions {
					works = append(works, Work{Who: s.Name, Name: s.Name, Docs: c.Docs[s]})
					for _, d := range c.Docs[s] {
						pages += len(d.Pages)
						images += len(d.Images)
					}
				}
				Similar(works, Reference{}, SimilarityOptions{})
				c.Close()
			}
			b.ReportMetric(float64(pages)/float64(n), "pages/doc")
			b.ReportMetric(float64(images)/float64(n), "images/doc")
			// CPU time of this process and its tools: on a busy machine the
			// wall time says more about the neighbours than about deploylab;
			// cpu-s/2 is the wall time on 2 idle cores, at best.
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			b.ReportMetric(float64(runs), "tesseract-runs")
			b.ReportMetric(float64(pictures), "pictures-ocred")
		})
	}
}

// cpuSeconds is the user+system time of this process and its waited-for
// children so far.
func cpuSeconds() float64 {
	var self, kids syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(self.Utime) + tv(self.Stime) + tv(kids.Utime) + tv(kids.Stime)
}
