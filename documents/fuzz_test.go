package documents

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/deploylab/deploylab/documents/documentstest"
)

// The parsers of document text (DOCX, ODT, HTML, Markdown, plain text, PNM
// pictures) get hostile bytes: they must never panic nor hang. PDF goes to
// poppler (a separate process with a time limit) and is left out here.

func fuzzSeeds(f *testing.F) {
	dir := f.TempDir()
	spec := documentstest.Spec{Title: "T", Sections: []documentstest.Section{{Heading: "Intro", Paras: []string{"pm2 ls muestra"}, Shots: []documentstest.Shot{{Lines: []string{"pm2 ls"}, Caption: "Figura 1: x"}}}}}
	for name, w := range map[string]func(string, documentstest.Spec) error{"a.docx": documentstest.WriteDOCX, "a.odt": documentstest.WriteODT} {
		p := filepath.Join(dir, name)
		if err := w(p, spec); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		f.Add(name, b)
	}
	f.Add("a.html", []byte("<h1>x</h1><p>pm2 <b>ls</b></p><figcaption>Figura 1</figcaption>"))
	f.Add("a.md", []byte("# T\n\n![Figura 1: x](a.png)\n\f## Dos"))
	f.Add("a.txt", []byte("1. Intro\nFigura 2: captura\n"))
	f.Add("a.png", []byte("P6\n# c\n2 1\n255\n\x00\x00\x00\xff\xff\xff"))
	f.Add("a.png", []byte("P4 9 2\n\xff\x80\x00\x00"))
}

func FuzzExtract(f *testing.F) {
	fuzzSeeds(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, name string, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		if bytes.HasPrefix(data, []byte("%PDF")) {
			return
		}
		ext := filepath.Ext(name)
		if len(ext) > 8 {
			ext = ext[:8]
		}
		p := filepath.Join(dir, "f"+filepath.Base(filepath.Clean("/"+ext)))
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return
		}
		d := Extract(context.Background(), File{Name: "f" + ext, Path: p}, ExtractOptions{MaxImages: 5})
		for _, pr := range d.Problems {
			if pr == "" {
				t.Fatal("empty problem line")
			}
		}
		if bytes.Contains(data, []byte("error interno")) {
			return
		}
		for _, pr := range d.Problems {
			if bytes.Contains([]byte(pr), []byte("error interno")) {
				t.Fatalf("panic recovered: %s", pr)
			}
		}
	})
}

// FuzzOfficeXML fuzzes the XML inside a DOCX and an ODT.
func FuzzOfficeXML(f *testing.F) {
	f.Add([]byte(`<w:document><w:body><w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Hola</w:t><w:br w:type="page"/><w:lastRenderedPageBreak/></w:r></w:p><a:blip r:embed="rId9"/></w:body></w:document>`))
	f.Add([]byte(`<office:text><text:h text:outline-level="2">T</text:h><text:p>a<text:s/>b<text:soft-page-break/><draw:image xlink:href="../../x.png"/></text:p></office:text>`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, x []byte) {
		if len(x) > 1<<20 {
			return
		}
		for _, kind := range []string{"docx", "odt"} {
			var b bytes.Buffer
			zw := zip.NewWriter(&b)
			if kind == "odt" {
				w, _ := zw.Create("mimetype")
				w.Write([]byte("application/vnd.oasis.opendocument.text"))
				w, _ = zw.Create("content.xml")
				w.Write(x)
			} else {
				w, _ := zw.Create("word/document.xml")
				w.Write(x)
				w, _ = zw.Create("word/styles.xml")
				w.Write(x)
				w, _ = zw.Create("word/_rels/document.xml.rels")
				w.Write(x)
			}
			zw.Close()
			p := filepath.Join(dir, "f."+kind)
			os.WriteFile(p, b.Bytes(), 0o600)
			d := Extract(context.Background(), File{Name: "f." + kind, Path: p}, ExtractOptions{MaxImages: 3})
			for _, pr := range d.Problems {
				if bytes.Contains([]byte(pr), []byte("error interno")) {
					t.Fatalf("panic recovered: %s", pr)
				}
			}
		}
	})
}

func FuzzDecodePNM(f *testing.F) {
	f.Add([]byte("P5 3 2 255\n\x00\x01\x02\x03\x04\x05"))
	f.Add([]byte("P6\n1 1\n255\n\x01\x02\x03"))
	f.Add([]byte("P4\n99999 99999\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		img, err := DecodeImage(b)
		if err == nil {
			HashImage(img)
		}
	})
}
