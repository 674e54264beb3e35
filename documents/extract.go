package documents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Document is what was read from one submitted file.
type Document struct {
	// File is the file's name inside the submission.
	File string
	// Format is what the file really is: pdf, docx, odt, md, txt, html,
	// image; "" when it could not be told.
	Format string
	// Pages holds the text of each page (numbered from 1). DOCX and ODT
	// pages are the ones the word processor recorded when the file was
	// saved (a document without page marks is one page).
	Pages []Page
	// Headings are the document's section titles.
	Headings []Heading
	// Images are the pictures found (screenshots), with their OCR'd text.
	Images []Image
	// Captions are caption lines ("Figura 3: pm2 ls") with their page.
	Captions []Line
	// TextLayer is true when text was read without OCR.
	TextLayer bool
	// OCRPages counts pages whose text came only from OCR (a scan).
	OCRPages int
	// Problems are one-line reasons part of the file could not be read.
	Problems []string
}

// Page is the text of one page.
type Page struct {
	N    int
	Text string
}

// Heading is a section title.
type Heading struct {
	Text  string
	Page  int
	Level int
}

// Line is one line of text and its page.
type Line struct {
	Text string
	Page int
}

// Image is one picture of a document.
type Image struct {
	Page int
	// Name is where it came from ("word/media/image3.png", "p. 4 #2").
	Name          string
	Width, Height int
	// Hash is a 256-bit difference hash of the picture (see DHash); HashOK
	// is false when the picture could not be decoded.
	Hash   DHash
	HashOK bool
	// OCR is the text tesseract read in it ("" without OCR).
	OCR string
	// Caption is the caption found for it on its page, if any.
	Caption string
}

// Words counts the words of all pages.
func (d *Document) Words() int {
	n := 0
	for _, p := range d.Pages {
		n += len(strings.Fields(p.Text))
	}
	return n
}

// Text joins the pages' text.
func (d *Document) Text() string {
	var b strings.Builder
	for _, p := range d.Pages {
		b.WriteString(p.Text)
		b.WriteString("\n")
	}
	return b.String()
}

// ExtractOptions tune Extract.
type ExtractOptions struct {
	// OCR reads the pictures' text; nil means no OCR.
	OCR *OCR
	// Timeout bounds each external tool run (default 60 s).
	Timeout time.Duration
	// MaxImages bounds the pictures read per document (default 300).
	MaxImages int
	// MaxTextBytes bounds the text kept per document (default 20 MB).
	MaxTextBytes int
	// TempDir is where pictures are unpacked ("" = the system's).
	TempDir string
}

func (o ExtractOptions) withDefaults() ExtractOptions {
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.MaxImages <= 0 {
		o.MaxImages = 300
	}
	if o.MaxTextBytes <= 0 {
		o.MaxTextBytes = 20 << 20
	}
	return o
}

// Sniff tells a file's format from its first bytes (and its name for plain
// text): pdf, docx, odt, image, html, md, txt, or "" (unknown).
func Sniff(name string, head []byte) string {
	ext := strings.ToLower(filepath.Ext(name))
	switch {
	case bytes.HasPrefix(head, []byte("%PDF-")):
		return "pdf"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		if bytes.Contains(head, []byte("mimetypeapplication/vnd.oasis.opendocument.text")) {
			return "odt"
		}
		if bytes.Contains(head, []byte("[Content_Types].xml")) || bytes.Contains(head, []byte("word/")) || ext == ".docx" {
			return "docx"
		}
		if ext == ".odt" {
			return "odt"
		}
		return "zip"
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")), bytes.HasPrefix(head, []byte("\xff\xd8\xff")),
		bytes.HasPrefix(head, []byte("GIF8")):
		return "image"
	case bytes.HasPrefix(head, []byte("\xd0\xcf\x11\xe0")):
		return "doc" // old binary Word: not read
	}
	if !utf8.Valid(trimPartialRune(head)) || bytes.IndexByte(head, 0) >= 0 {
		return ""
	}
	lh := bytes.ToLower(bytes.TrimSpace(head))
	if ext == ".html" || ext == ".htm" || bytes.HasPrefix(lh, []byte("<!doctype html")) || bytes.HasPrefix(lh, []byte("<html")) {
		return "html"
	}
	if ext == ".md" || ext == ".markdown" {
		return "md"
	}
	return "txt"
}

func trimPartialRune(b []byte) []byte {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		r, size := utf8.DecodeLastRune(b)
		if r != utf8.RuneError || size != 1 {
			return b
		}
		b = b[:len(b)-1]
	}
	return b
}

var extFormats = map[string]string{
	".pdf": "pdf", ".docx": "docx", ".odt": "odt", ".md": "md", ".markdown": "md", ".txt": "txt",
	".html": "html", ".htm": "html", ".png": "image", ".jpg": "image", ".jpeg": "image", ".gif": "image",
}

// Extract reads one file. It never panics on hostile input; what it cannot
// read is in Problems (a corrupt, encrypted or unknown file gives a
// Document with no pages and one problem line).
func Extract(ctx context.Context, f File, o ExtractOptions) (doc *Document) {
	o = o.withDefaults()
	doc = &Document{File: f.Name}
	defer func() {
		if r := recover(); r != nil {
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: no se pudo leer (error interno: %v)", f.Name, r))
		}
	}()
	head := make([]byte, 4096)
	fh, err := os.Open(f.Path)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: %v", f.Name, err))
		return doc
	}
	n, _ := fh.Read(head)
	fh.Close()
	head = head[:n]
	if n == 0 {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: fichero vacío", f.Name))
		return doc
	}
	doc.Format = Sniff(f.Name, head)
	ext := strings.ToLower(filepath.Ext(f.Name))
	if want, ok := extFormats[ext]; ok && doc.Format != "" && want != doc.Format && !(want == "txt" && doc.Format == "md") {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: la extensión %s no corresponde al contenido (es %s); se lee como %s", f.Name, ext, formatName(doc.Format), formatName(doc.Format)))
	}
	switch doc.Format {
	case "pdf":
		extractPDF(ctx, f, doc, o)
	case "docx":
		extractDOCX(ctx, f, doc, o)
	case "odt":
		extractODT(ctx, f, doc, o)
	case "md", "txt", "html":
		extractText(f, doc, o)
	case "image":
		extractImageFile(ctx, f, doc, o)
	case "doc":
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: formato .doc antiguo de Word, no se lee (pide PDF, DOCX u ODT)", f.Name))
	case "zip":
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: es un zip que no es un documento", f.Name))
	default:
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: formato no reconocido (se esperaba PDF, DOCX, ODT, MD, TXT o HTML)", f.Name))
	}
	finish(doc)
	return doc
}

func formatName(f string) string {
	switch f {
	case "pdf", "docx", "odt", "md", "txt", "html", "doc":
		return strings.ToUpper(f)
	case "image":
		return "una imagen"
	case "zip":
		return "un zip"
	}
	return "desconocido"
}

// captionRe matches a caption line: "Figura 3: …", "Ilustración 2 - …",
// "Captura 1.", "Fig. 4".
var captionRe = regexp.MustCompile(`(?i)^\s*(figura|fig\.|ilustraci[oó]n|imagen|captura|screenshot|figure|illustration)\s*\d+\s*[.:\-–—)]?`)

// numberedHeadingRe matches a numbered section title in plain text: "2.
// Despliegue con cluster", "3.1 PM2".
var numberedHeadingRe = regexp.MustCompile(`^\s*(\d{1,2}(\.\d{1,2}){0,3})\.?\s+\p{Lu}\S*(\s+\S+){0,10}\s*$`)

// finish derives captions (and, for formats without styles, headings) from
// the text, and ties each image to a caption on its page.
func finish(doc *Document) {
	styled := len(doc.Headings) > 0
	for _, p := range doc.Pages {
		for _, l := range strings.Split(p.Text, "\n") {
			t := strings.TrimSpace(l)
			if t == "" || len(t) > 300 {
				continue
			}
			if captionRe.MatchString(t) {
				doc.Captions = append(doc.Captions, Line{Text: t, Page: p.N})
				continue
			}
			if !styled && len(t) < 90 && numberedHeadingRe.MatchString(t) && !strings.HasSuffix(t, ".") {
				lvl := strings.Count(strings.Fields(t)[0], ".") + 1
				if strings.HasSuffix(strings.Fields(t)[0], ".") {
					lvl--
				}
				doc.Headings = append(doc.Headings, Heading{Text: t, Page: p.N, Level: max(lvl, 1)})
			}
		}
	}
	used := map[int]bool{}
	for i := range doc.Images {
		im := &doc.Images[i]
		if im.Caption != "" {
			continue
		}
		for j, c := range doc.Captions {
			if !used[j] && c.Page == im.Page {
				im.Caption, used[j] = c.Text, true
				break
			}
		}
	}
}

// boundedBuffer keeps the first max bytes written and drops the rest.
type boundedBuffer struct {
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

var errTimeout = errors.New("tardó demasiado")
