package documents

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// maxXMLBytes bounds the XML read from one part of a DOCX or ODT.
const maxXMLBytes = 64 << 20

// maxMediaBytes bounds one picture read from a DOCX or ODT.
const maxMediaBytes = 50 << 20

// headingStyleRe matches the paragraph styles word processors give titles
// (English and Spanish names, as ids or display names).
var headingStyleRe = regexp.MustCompile(`(?i)^(heading|t[ií]tulo|titulo|ttulo|title|subtitle|subt[ií]tulo)\s*_?(\d?)`)

// captionStyleRe matches caption paragraph styles.
var captionStyleRe = regexp.MustCompile(`(?i)^(caption|descripci[oó]n|descripcin|epígrafe|epgrafe|illustration|figure|figura|ilustraci[oó]n)`)

// docBuilder accumulates paragraphs into pages while a document's XML is
// read.
type docBuilder struct {
	doc  *Document
	page int
	cur  strings.Builder
	para strings.Builder
	size int
	max  int
	// pending pictures of the current paragraph (their names in the zip)
	pics []string
}

func newBuilder(doc *Document, max int) *docBuilder {
	return &docBuilder{doc: doc, page: 1, max: max}
}

func (b *docBuilder) text(s string) {
	if b.size+len(s) > b.max {
		return
	}
	b.size += len(s)
	b.para.WriteString(s)
}

// endPara closes a paragraph with its style (heading level > 0, caption).
func (b *docBuilder) endPara(level int, caption bool) {
	t := strings.TrimSpace(sanitize(b.para.String()))
	b.para.Reset()
	if t != "" {
		b.cur.WriteString(t)
		b.cur.WriteString("\n\n")
		if level > 0 && len(t) < 200 {
			b.doc.Headings = append(b.doc.Headings, Heading{Text: t, Page: b.page, Level: level})
		}
		if caption && !captionRe.MatchString(t) {
			b.doc.Captions = append(b.doc.Captions, Line{Text: t, Page: b.page})
		}
	}
}

func (b *docBuilder) pageBreak() {
	b.doc.Pages = append(b.doc.Pages, Page{N: b.page, Text: b.cur.String()})
	b.cur.Reset()
	b.page++
}

func (b *docBuilder) done() {
	if b.para.Len() > 0 {
		b.endPara(0, false)
	}
	b.doc.Pages = append(b.doc.Pages, Page{N: b.page, Text: b.cur.String()})
	b.doc.TextLayer = b.doc.Words() > 0
}

func openZip(f File) (*zip.ReadCloser, error) {
	zr, err := zip.OpenReader(f.Path)
	if err != nil {
		return nil, err
	}
	return zr, nil
}

func zipPart(zr *zip.ReadCloser, name string) *zip.File {
	for _, f := range zr.File {
		if f.Name == name {
			return f
		}
	}
	return nil
}

func readPart(zf *zip.File, max int64) ([]byte, error) {
	rc, err := zf.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errors.New("parte demasiado grande")
	}
	return b, nil
}

func attr(se xml.StartElement, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

func extractDOCX(ctx context.Context, f File, doc *Document, o ExtractOptions) {
	zr, err := openZip(f)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: DOCX dañado (%v)", f.Name, err))
		return
	}
	defer zr.Close()
	main := zipPart(zr, "word/document.xml")
	if main == nil {
		doc.Problems = append(doc.Problems, f.Name+": DOCX sin word/document.xml: dañado o no es un documento de Word")
		return
	}
	rels := map[string]string{}
	if rf := zipPart(zr, "word/_rels/document.xml.rels"); rf != nil {
		if b, err := readPart(rf, 4<<20); err == nil {
			parseRels(b, rels)
		}
	}
	styles := map[string]string{} // style id → display name
	if sf := zipPart(zr, "word/styles.xml"); sf != nil {
		if b, err := readPart(sf, 8<<20); err == nil {
			parseDocxStyles(b, styles)
		}
	}
	rc, err := main.Open()
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: DOCX dañado (%v)", f.Name, err))
		return
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxXMLBytes))
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: DOCX dañado (%v)", f.Name, err))
		return
	}
	// Word records where pages ended when it saved: when it did, those are
	// the pages; otherwise the explicit page breaks are.
	rendered := bytes.Contains(data, []byte("lastRenderedPageBreak"))
	b := newBuilder(doc, o.MaxTextBytes)
	type pic struct {
		page int
		rid  string
	}
	var pics []pic
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = false
	inText := false
	level, caption := 0, false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: DOCX con XML dañado (%v): se lee hasta ahí", f.Name, err))
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "p":
				level, caption = 0, false
			case "pStyle":
				v := attr(t, "val")
				name := styles[v]
				for _, s := range []string{v, name} {
					if m := headingStyleRe.FindStringSubmatch(s); m != nil {
						level = 1
						if m[2] != "" {
							level = int(m[2][0] - '0')
						}
						if level == 0 {
							level = 1
						}
					}
					if captionStyleRe.MatchString(s) {
						caption = true
					}
				}
			case "outlineLvl":
				if v := attr(t, "val"); len(v) == 1 && v[0] >= '0' && v[0] <= '8' && level == 0 {
					level = int(v[0]-'0') + 1
				}
			case "t":
				inText = true
			case "tab":
				b.text("\t")
			case "br", "cr":
				if attr(t, "type") == "page" {
					if !rendered {
						b.endPara(level, caption)
						b.pageBreak()
					}
				} else {
					b.text("\n")
				}
			case "lastRenderedPageBreak":
				if b.para.Len() > 0 || b.cur.Len() > 0 {
					b.pageBreak()
				}
			case "blip":
				if id := attr(t, "embed"); id != "" {
					pics = append(pics, pic{page: b.page, rid: id})
				}
			case "imagedata":
				if id := attr(t, "id"); id != "" {
					pics = append(pics, pic{page: b.page, rid: id})
				}
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				b.endPara(level, caption)
			}
		case xml.CharData:
			if inText {
				b.text(string(t))
			}
		}
	}
	b.done()
	var q ocrQueue
	for i, p := range pics {
		if i >= o.MaxImages {
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: más de %d imágenes: se leen las primeras", f.Name, o.MaxImages))
			break
		}
		target := rels[p.rid]
		if target == "" {
			continue
		}
		name := path.Clean(path.Join("word", target))
		readZipImage(zr, name, p.page, doc, o, &q)
	}
	q.run(ctx, doc, o.OCR)
}

func parseRels(b []byte, rels map[string]string) {
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	dec.Strict = false
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Relationship" {
			if attr(se, "TargetMode") == "External" {
				continue
			}
			rels[attr(se, "Id")] = attr(se, "Target")
		}
	}
}

func parseDocxStyles(b []byte, styles map[string]string) {
	dec := xml.NewDecoder(strings.NewReader(string(b)))
	dec.Strict = false
	cur := ""
	for {
		tok, err := dec.Token()
		if err != nil {
			return
		}
		if se, ok := tok.(xml.StartElement); ok {
			switch se.Name.Local {
			case "style":
				cur = attr(se, "styleId")
			case "name":
				if cur != "" {
					styles[cur] = attr(se, "val")
				}
			}
		}
	}
}

// readZipImage unpacks one picture of a DOCX/ODT, hashes it and queues it
// in q (as a temp file) to be OCR'd.
func readZipImage(zr *zip.ReadCloser, name string, page int, doc *Document, o ExtractOptions, q *ocrQueue) {
	zf := zipPart(zr, name)
	if zf == nil {
		return
	}
	ext := strings.ToLower(path.Ext(name))
	if ext != ".png" && ext != ".jpg" && ext != ".jpeg" && ext != ".gif" {
		return // EMF, WMF, SVG: drawings, not screenshots
	}
	data, err := readPart(zf, maxMediaBytes)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: imagen %s ilegible (%v)", doc.File, name, err))
		return
	}
	im := Image{Page: page, Name: name}
	img, err := DecodeImage(data)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: imagen %s ilegible (%v)", doc.File, name, err))
		return
	}
	bd := img.Bounds()
	im.Width, im.Height = bd.Dx(), bd.Dy()
	if tooSmall(im.Width, im.Height) {
		return
	}
	im.Hash, im.HashOK = HashImage(img), true
	doc.Images = append(doc.Images, im)
	if o.OCR != nil && o.OCR.Available() {
		tmp, err := os.CreateTemp(o.TempDir, "deploylab-img-*"+ext)
		if err == nil {
			_, werr := tmp.Write(data)
			tmp.Close()
			if werr == nil {
				q.add(len(doc.Images)-1, tmp.Name(), true)
			} else {
				os.Remove(tmp.Name())
			}
		}
	}
}

func extractODT(ctx context.Context, f File, doc *Document, o ExtractOptions) {
	zr, err := openZip(f)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: ODT dañado (%v)", f.Name, err))
		return
	}
	defer zr.Close()
	main := zipPart(zr, "content.xml")
	if main == nil {
		doc.Problems = append(doc.Problems, f.Name+": ODT sin content.xml: dañado o no es un documento de texto")
		return
	}
	rc, err := main.Open()
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: ODT dañado (%v)", f.Name, err))
		return
	}
	defer rc.Close()
	b := newBuilder(doc, o.MaxTextBytes)
	type pic struct {
		page int
		href string
	}
	var pics []pic
	dec := xml.NewDecoder(io.LimitReader(rc, maxXMLBytes))
	dec.Strict = false
	// Stack of open paragraph-like elements: h (level) or p (style).
	type para struct {
		level   int
		caption bool
	}
	var stack []para
	inNote := 0
	// Paragraph styles that start a new page (fo:break-before="page").
	breakStyles := map[string]bool{}
	curStyle := ""
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: ODT con XML dañado (%v): se lee hasta ahí", f.Name, err))
			break
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "h":
				if breakStyles[attr(t, "style-name")] && len(stack) == 0 && (b.cur.Len() > 0 || b.para.Len() > 0) {
					b.pageBreak()
				}
				lvl := 1
				if v := attr(t, "outline-level"); len(v) == 1 && v[0] >= '1' && v[0] <= '9' {
					lvl = int(v[0] - '0')
				}
				stack = append(stack, para{level: lvl})
			case "style":
				curStyle = attr(t, "name")
			case "paragraph-properties":
				if curStyle != "" && attr(t, "break-before") == "page" {
					breakStyles[curStyle] = true
				}
			case "p":
				st := attr(t, "style-name")
				if breakStyles[st] && len(stack) == 0 && (b.cur.Len() > 0 || b.para.Len() > 0) {
					b.pageBreak()
				}
				stack = append(stack, para{caption: captionStyleRe.MatchString(st)})
			case "sequence":
				if len(stack) > 0 {
					stack[len(stack)-1].caption = true
				}
			case "s":
				b.text(" ")
			case "tab":
				b.text("\t")
			case "line-break":
				b.text("\n")
			case "soft-page-break":
				b.endPara(0, false)
				b.pageBreak()
			case "image":
				if h := attr(t, "href"); h != "" && !strings.Contains(h, "://") {
					pics = append(pics, pic{page: b.page, href: h})
				}
			case "note", "annotation":
				inNote++
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "h", "p":
				if len(stack) > 0 {
					top := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					if len(stack) == 0 {
						b.endPara(top.level, top.caption)
					} else {
						// A caption frame's paragraph nested in another
						// one: close it as its own line.
						b.endPara(top.level, top.caption)
					}
				}
			case "note", "annotation":
				inNote--
			}
		case xml.CharData:
			if len(stack) > 0 && inNote == 0 {
				b.text(string(t))
			}
		}
	}
	b.done()
	var q ocrQueue
	for i, p := range pics {
		if i >= o.MaxImages {
			doc.Problems = append(doc.Problems, fmt.Sprintf("%s: más de %d imágenes: se leen las primeras", f.Name, o.MaxImages))
			break
		}
		readZipImage(zr, path.Clean(p.href), p.page, doc, o, &q)
	}
	q.run(ctx, doc, o.OCR)
}

// extractImageFile reads a picture handed in as a file of its own.
func extractImageFile(ctx context.Context, f File, doc *Document, o ExtractOptions) {
	img, err := decodeFile(f.Path)
	if err != nil {
		doc.Problems = append(doc.Problems, fmt.Sprintf("%s: imagen ilegible (%v)", f.Name, err))
		return
	}
	bd := img.Bounds()
	im := Image{Page: 1, Name: filepath.Base(f.Name), Width: bd.Dx(), Height: bd.Dy(), Hash: HashImage(img), HashOK: true}
	if o.OCR != nil && o.OCR.Available() {
		im.OCR = o.OCR.Read(ctx, f.Path)
	}
	doc.Images = append(doc.Images, im)
	doc.Pages = append(doc.Pages, Page{N: 1, Text: im.OCR})
	if im.OCR != "" {
		doc.OCRPages = 1
	}
}
