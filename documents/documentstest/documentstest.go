// Package documentstest writes students' documents for tests and
// benchmarks: DOCX and ODT files built from a Spec (headings, paragraphs,
// screenshots with captions), screenshots rendered as PNG with known text,
// PDFs converted from them with LibreOffice headless, and Moodle's
// "Download all submissions" zip.
package documentstest

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/opentype"
	"golang.org/x/image/math/fixed"
)

// Spec is a document to write.
type Spec struct {
	Title    string
	Sections []Section
}

// Section is a heading, its paragraphs and its screenshots.
type Section struct {
	Heading string
	Paras   []string
	Shots   []Shot
	// PageBreak starts the section on a new page.
	PageBreak bool
}

// Shot is a screenshot: PNG (rendered from Lines when nil) and a caption.
type Shot struct {
	Lines   []string
	PNG     []byte
	Caption string
}

var (
	faceOnce sync.Once
	faceErr  error
	mono     *opentype.Font
)

// Screenshot renders lines of monospaced text, dark on light like a
// terminal with a light theme, at size px, as a PNG.
func Screenshot(lines []string, px float64) ([]byte, error) {
	faceOnce.Do(func() { mono, faceErr = opentype.Parse(gomono.TTF) })
	if faceErr != nil {
		return nil, faceErr
	}
	face, err := opentype.NewFace(mono, &opentype.FaceOptions{Size: px, DPI: 72, Hinting: font.HintingFull})
	if err != nil {
		return nil, err
	}
	defer face.Close()
	lh := int(px * 1.5)
	wmax := 0
	for _, l := range lines {
		wmax = max(wmax, font.MeasureString(face, l).Ceil())
	}
	w, h := wmax+2*int(px), lh*len(lines)+2*int(px)
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.RGBA{250, 250, 245, 255}), image.Point{}, draw.Src)
	// A title bar, as windows have.
	draw.Draw(img, image.Rect(0, 0, w, int(px/2)), image.NewUniform(color.RGBA{60, 60, 70, 255}), image.Point{}, draw.Src)
	d := &font.Drawer{Dst: img, Src: image.NewUniform(color.RGBA{20, 20, 30, 255}), Face: face}
	for i, l := range lines {
		d.Dot = fixed.P(int(px), int(px)+lh*(i+1)-lh/4)
		d.DrawString(l)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Resize scales a PNG by f (nearest neighbour on a box average), re-encoded:
// a copied screenshot pasted at another size.
func Resize(p []byte, f float64) ([]byte, error) {
	src, err := png.Decode(bytes.NewReader(p))
	if err != nil {
		return nil, err
	}
	b := src.Bounds()
	w, h := int(float64(b.Dx())*f), int(float64(b.Dy())*f)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			dst.Set(x, y, src.At(b.Min.X+int(float64(x)/f), b.Min.Y+int(float64(y)/f)))
		}
	}
	var out bytes.Buffer
	if err := png.Encode(&out, dst); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func (s *Spec) shots() ([][]byte, error) {
	var out [][]byte
	for _, sec := range s.Sections {
		for _, sh := range sec.Shots {
			p := sh.PNG
			if p == nil {
				var err error
				if p, err = Screenshot(sh.Lines, 18); err != nil {
					return nil, err
				}
			}
			out = append(out, p)
		}
	}
	return out, nil
}

func pngSize(p []byte) (int, int) {
	c, err := png.DecodeConfig(bytes.NewReader(p))
	if err != nil {
		return 400, 300
	}
	return c.Width, c.Height
}

func esc(s string) string { return html.EscapeString(s) }

// WriteDOCX writes s as a Word document with Heading 1 and Caption styles
// and the screenshots inline.
func WriteDOCX(path string, s Spec) error {
	shots, err := s.shots()
	if err != nil {
		return err
	}
	var body strings.Builder
	para := func(style, text string) {
		body.WriteString("<w:p>")
		if style != "" {
			fmt.Fprintf(&body, `<w:pPr><w:pStyle w:val="%s"/></w:pPr>`, style)
		}
		fmt.Fprintf(&body, `<w:r><w:t xml:space="preserve">%s</w:t></w:r></w:p>`, esc(text))
	}
	if s.Title != "" {
		para("Title", s.Title)
	}
	var rels strings.Builder
	n := 0
	for _, sec := range s.Sections {
		if sec.PageBreak {
			body.WriteString(`<w:p><w:r><w:br w:type="page"/></w:r></w:p>`)
		}
		para("Heading1", sec.Heading)
		for _, p := range sec.Paras {
			para("", p)
		}
		for _, sh := range sec.Shots {
			n++
			w, h := pngSize(shots[n-1])
			// Fit the page width (15 cm) at most.
			cx := int64(w) * 9525
			cy := int64(h) * 9525
			if cx > 5400000 {
				cy = cy * 5400000 / cx
				cx = 5400000
			}
			fmt.Fprintf(&rels, `<Relationship Id="rImg%d" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/image" Target="media/image%d.png"/>`, n, n)
			fmt.Fprintf(&body, `<w:p><w:r><w:drawing><wp:inline><wp:extent cx="%d" cy="%d"/><wp:docPr id="%d" name="Imagen %d"/>`+
				`<a:graphic xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/picture">`+
				`<pic:pic xmlns:pic="http://schemas.openxmlformats.org/drawingml/2006/picture"><pic:nvPicPr><pic:cNvPr id="%d" name="image%d.png"/><pic:cNvPicPr/></pic:nvPicPr>`+
				`<pic:blipFill><a:blip r:embed="rImg%d"/><a:stretch><a:fillRect/></a:stretch></pic:blipFill>`+
				`<pic:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="%d" cy="%d"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom></pic:spPr></pic:pic>`+
				`</a:graphicData></a:graphic></wp:inline></w:drawing></w:r></w:p>`, cx, cy, n, n, n, n, n, cx, cy)
			if sh.Caption != "" {
				para("Caption", sh.Caption)
			}
		}
	}
	files := map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Default Extension="png" ContentType="image/png"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/><Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml"/></Types>`,
		"_rels/.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>`,
		"word/_rels/document.xml.rels": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rSty" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles" Target="styles.xml"/>` + rels.String() + `</Relationships>`,
		"word/styles.xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:styles xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">
<w:style w:type="paragraph" w:default="1" w:styleId="Normal"><w:name w:val="Normal"/><w:rPr><w:sz w:val="22"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Title"><w:name w:val="Title"/><w:basedOn w:val="Normal"/><w:pPr><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:b/><w:sz w:val="40"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Heading1"><w:name w:val="heading 1"/><w:basedOn w:val="Normal"/><w:pPr><w:keepNext/><w:spacing w:before="240" w:after="120"/><w:outlineLvl w:val="0"/></w:pPr><w:rPr><w:b/><w:sz w:val="32"/></w:rPr></w:style>
<w:style w:type="paragraph" w:styleId="Caption"><w:name w:val="caption"/><w:basedOn w:val="Normal"/><w:rPr><w:i/><w:sz w:val="18"/></w:rPr></w:style>
</w:styles>`,
		"word/document.xml": `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"><w:body>` +
			body.String() + `<w:sectPr><w:pgSz w:w="11906" w:h="16838"/><w:pgMar w:top="1417" w:right="1701" w:bottom="1417" w:left="1701" w:header="708" w:footer="708" w:gutter="0"/></w:sectPr></w:body></w:document>`,
	}
	order := []string{"[Content_Types].xml", "_rels/.rels", "word/_rels/document.xml.rels", "word/styles.xml", "word/document.xml"}
	return writeZip(path, nil, order, files, shots, "word/media/image%d.png")
}

// WriteODT writes s as an OpenDocument text with outline headings and the
// screenshots in frames, each followed by its caption.
func WriteODT(path string, s Spec) error {
	shots, err := s.shots()
	if err != nil {
		return err
	}
	var body strings.Builder
	if s.Title != "" {
		fmt.Fprintf(&body, `<text:p text:style-name="Title">%s</text:p>`, esc(s.Title))
	}
	n := 0
	for _, sec := range s.Sections {
		style := "Heading_20_1"
		if sec.PageBreak {
			style = "PB"
		}
		fmt.Fprintf(&body, `<text:h text:style-name="%s" text:outline-level="1">%s</text:h>`, style, esc(sec.Heading))
		for _, p := range sec.Paras {
			fmt.Fprintf(&body, `<text:p text:style-name="Standard">%s</text:p>`, esc(p))
		}
		for _, sh := range sec.Shots {
			n++
			w, h := pngSize(shots[n-1])
			cw := float64(w) * 2.54 / 96
			ch := float64(h) * 2.54 / 96
			if cw > 15 {
				ch = ch * 15 / cw
				cw = 15
			}
			fmt.Fprintf(&body, `<text:p text:style-name="Standard"><draw:frame draw:name="Imagen%d" text:anchor-type="as-char" svg:width="%.2fcm" svg:height="%.2fcm"><draw:image xlink:href="Pictures/image%d.png" xlink:type="simple" xlink:show="embed" xlink:actuate="onLoad"/></draw:frame></text:p>`, n, cw, ch, n)
			if sh.Caption != "" {
				fmt.Fprintf(&body, `<text:p text:style-name="Caption">%s</text:p>`, esc(sh.Caption))
			}
		}
	}
	ns := `xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:style="urn:oasis:names:tc:opendocument:xmlns:style:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0" xmlns:xlink="http://www.w3.org/1999/xlink" xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" xmlns:fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"`
	var manifest strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&manifest, `<manifest:file-entry manifest:full-path="Pictures/image%d.png" manifest:media-type="image/png"/>`, i)
	}
	files := map[string]string{
		"META-INF/manifest.xml": `<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.text"/><manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/><manifest:file-entry manifest:full-path="styles.xml" manifest:media-type="text/xml"/>` + manifest.String() + `</manifest:manifest>`,
		"styles.xml": `<?xml version="1.0" encoding="UTF-8"?>
<office:document-styles ` + ns + ` office:version="1.2"><office:styles>
<style:style style:name="Standard" style:family="paragraph"/>
<style:style style:name="Heading_20_1" style:display-name="Heading 1" style:family="paragraph" style:default-outline-level="1"><style:text-properties fo:font-size="16pt" fo:font-weight="bold"/></style:style>
<style:style style:name="Title" style:family="paragraph"><style:text-properties fo:font-size="20pt" fo:font-weight="bold"/></style:style>
<style:style style:name="Caption" style:family="paragraph"><style:text-properties fo:font-size="9pt" fo:font-style="italic"/></style:style>
</office:styles></office:document-styles>`,
		"content.xml": `<?xml version="1.0" encoding="UTF-8"?>
<office:document-content ` + ns + ` office:version="1.2"><office:automatic-styles><style:style style:name="PB" style:family="paragraph" style:parent-style-name="Heading_20_1"><style:paragraph-properties fo:break-before="page"/></style:style></office:automatic-styles><office:body><office:text>` +
			body.String() + `</office:text></office:body></office:document-content>`,
	}
	order := []string{"META-INF/manifest.xml", "styles.xml", "content.xml"}
	return writeZip(path, []byte("application/vnd.oasis.opendocument.text"), order, files, shots, "Pictures/image%d.png")
}

func writeZip(path string, mimetype []byte, order []string, files map[string]string, shots [][]byte, shotName string) error {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	if mimetype != nil {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
		if err != nil {
			return err
		}
		w.Write(mimetype)
	}
	for _, name := range order {
		w, err := zw.Create(name)
		if err != nil {
			return err
		}
		if _, err := w.Write([]byte(files[name])); err != nil {
			return err
		}
	}
	for i, p := range shots {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf(shotName, i+1), Method: zip.Store})
		if err != nil {
			return err
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// HaveLibreOffice reports whether soffice can convert documents.
func HaveLibreOffice() bool {
	_, err := exec.LookPath("soffice")
	return err == nil
}

var sofficeMu sync.Mutex

// ToPDF converts documents to PDF with LibreOffice headless into outDir, in
// one soffice run (its own profile, so it never meets a running office).
func ToPDF(ctx context.Context, outDir string, srcs ...string) error {
	sofficeMu.Lock()
	defer sofficeMu.Unlock()
	prof, err := os.MkdirTemp("", "deploylab-soffice-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(prof)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	args := append([]string{"-env:UserInstallation=file://" + prof, "--headless", "--norestore", "--convert-to", "pdf", "--outdir", outDir}, srcs...)
	out, err := exec.CommandContext(ctx, "soffice", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("soffice: %v: %s", err, out)
	}
	for _, s := range srcs {
		p := filepath.Join(outDir, strings.TrimSuffix(filepath.Base(s), filepath.Ext(s))+".pdf")
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("soffice did not write %s: %s", p, out)
		}
	}
	return nil
}

// Entry is one file of a Moodle archive: the student's folder name and the
// file's name and content.
type Entry struct {
	Student string
	Number  int
	Name    string
	Data    []byte
}

// MoodleZip writes Moodle's "Download all submissions" archive:
// "Full Name_<number>_assignsubmission_file_/<name>".
func MoodleZip(path string, entries []Entry) error {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		w, err := zw.Create(fmt.Sprintf("%s_%d_assignsubmission_file_/%s", e.Student, e.Number, e.Name))
		if err != nil {
			return err
		}
		if _, err := w.Write(e.Data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
