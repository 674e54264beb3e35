package documents

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run runs a tool with a time limit, its output bounded to max bytes, in its
// own process group (killed whole on timeout).
func run(ctx context.Context, timeout time.Duration, max int, name string, args ...string) ([]byte, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1", "LC_ALL=C.UTF-8")
	out := &boundedBuffer{max: max}
	errb := &boundedBuffer{max: 4096}
	cmd.Stdout, cmd.Stderr = out, errb
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return out.buf.Bytes(), errb.buf.Bytes(), fmt.Errorf("%s %w (más de %s)", name, errTimeout, timeout)
	}
	return out.buf.Bytes(), errb.buf.Bytes(), err
}

// HaveTool reports whether a command is on PATH.
func HaveTool(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

// ErrNoPoppler is the problem given when pdftotext is not installed.
var ErrNoPoppler = errors.New("pdftotext no está instalado (paquete poppler-utils): los PDF no se pueden leer")

func firstErrLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 160 {
		s = s[:160]
	}
	return s
}

func extractPDF(ctx context.Context, f File, doc *Document, o ExtractOptions) {
	if !HaveTool("pdftotext") {
		doc.Problems = append(doc.Problems, f.Name+": "+ErrNoPoppler.Error())
		return
	}
	info, stderr, err := run(ctx, o.Timeout, 1<<16, "pdfinfo", "--", f.Path)
	if err != nil {
		msg := firstErrLine(stderr)
		switch {
		case strings.Contains(msg, "Incorrect password") || strings.Contains(msg, "ncrypt"):
			doc.Problems = append(doc.Problems, f.Name+": PDF cifrado con contraseña: no se puede leer")
		case errors.Is(err, errTimeout):
			doc.Problems = append(doc.Problems, f.Name+": "+err.Error())
		default:
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: PDF dañado o ilegible (%s)", f.Name, orDefault(msg, err.Error())))
		}
		return
	}
	pages := 0
	for _, l := range strings.Split(string(info), "\n") {
		if v, ok := strings.CutPrefix(l, "Pages:"); ok {
			pages, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	text, stderr, err := run(ctx, o.Timeout, o.MaxTextBytes, "pdftotext", "-enc", "UTF-8", "-eol", "unix", "--", f.Path, "-")
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: no se pudo extraer el texto del PDF (%s)", f.Name, orDefault(firstErrLine(stderr), err.Error())))
		return
	}
	parts := strings.Split(string(text), "\f")
	if len(parts) > 0 && strings.TrimSpace(parts[len(parts)-1]) == "" {
		parts = parts[:len(parts)-1]
	}
	for i, p := range parts {
		doc.Pages = append(doc.Pages, Page{N: i + 1, Text: sanitize(p)})
	}
	for len(doc.Pages) < pages {
		doc.Pages = append(doc.Pages, Page{N: len(doc.Pages) + 1})
	}
	textPages := 0
	for _, p := range doc.Pages {
		if len(strings.Fields(p.Text)) >= 5 {
			textPages++
		}
	}
	doc.TextLayer = textPages > 0
	pdfImages(ctx, f, doc, o)
	// A page with no text layer but a picture is a scan: its OCR'd text is
	// its text.
	if o.OCR != nil && o.OCR.Available() {
		for i := range doc.Pages {
			p := &doc.Pages[i]
			if len(strings.Fields(p.Text)) >= 5 {
				continue
			}
			var b strings.Builder
			for _, im := range doc.Images {
				if im.Page == p.N && im.OCR != "" {
					b.WriteString(im.OCR)
					b.WriteString("\n")
				}
			}
			if b.Len() > 0 {
				p.Text = b.String()
				doc.OCRPages++
			}
		}
	}
	if !doc.TextLayer && len(doc.Pages) > 0 {
		switch {
		case doc.OCRPages > 0:
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: PDF sin capa de texto (escaneado o impreso como imagen): leído con OCR", f.Name))
		case len(doc.Images) > 0:
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: PDF sin capa de texto (escaneado o impreso como imagen) y sin OCR: no se pudo leer su texto", f.Name))
		default:
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: PDF sin texto legible", f.Name))
		}
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// pdfImages extracts the pictures of a PDF with pdfimages (PNM files, no
// re-encoding), hashes them and OCRs them.
func pdfImages(ctx context.Context, f File, doc *Document, o ExtractOptions) {
	if !HaveTool("pdfimages") {
		return
	}
	list, _, err := run(ctx, o.Timeout, 4<<20, "pdfimages", "-list", "--", f.Path)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: no se pudieron listar las imágenes (%v)", f.Name, err))
		return
	}
	// page num type width height …: count real pictures (not masks) and
	// find the last page to extract within MaxImages.
	lastPage, count := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 || fs[2] != "image" {
			continue
		}
		pg, err1 := strconv.Atoi(fs[0])
		if err1 != nil {
			continue
		}
		count++
		if count > o.MaxImages {
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: más de %d imágenes: se leen las de las páginas 1-%d", f.Name, o.MaxImages, lastPage))
			break
		}
		lastPage = pg
	}
	if count == 0 || lastPage == 0 {
		return
	}
	dir, err := os.MkdirTemp(o.TempDir, "deploylab-pdfimages-*")
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: %v", f.Name, err))
		return
	}
	defer os.RemoveAll(dir)
	_, stderr, err := run(ctx, o.Timeout, 1<<16, "pdfimages", "-p", "-l", strconv.Itoa(lastPage), "--", f.Path, filepath.Join(dir, "i"))
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: no se pudieron extraer las imágenes (%s)", f.Name, orDefault(firstErrLine(stderr), err.Error())))
	}
	ents, _ := os.ReadDir(dir)
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	var q ocrQueue
	for _, n := range names {
		// i-PPP-NNN.ppm
		base := strings.TrimSuffix(n, filepath.Ext(n))
		fs := strings.Split(base, "-")
		if len(fs) != 3 {
			continue
		}
		pg, _ := strconv.Atoi(fs[1])
		p := filepath.Join(dir, n)
		num, _ := strconv.Atoi(fs[2])
		im := Image{Page: pg, Name: fmt.Sprintf("p. %d, imagen %d", pg, num+1)}
		img, err := decodeFile(p)
		if err == nil {
			b := img.Bounds()
			im.Width, im.Height = b.Dx(), b.Dy()
			if tooSmall(im.Width, im.Height) {
				os.Remove(p)
				continue
			}
			im.Hash, im.HashOK = HashImage(img), true
		}
		doc.Images = append(doc.Images, im)
		q.add(len(doc.Images)-1, p, true)
	}
	q.run(ctx, doc, o.OCR)
}

// tooSmall skips icons, bullets and rules: not screenshots.
func tooSmall(w, h int) bool { return w < 48 || h < 24 || w*h < 8000 }
