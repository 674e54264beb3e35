package documents

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/documents/documentstest"
)

// TestScannedPDF: a PDF with no text layer (a page that is one picture of
// text, as a scanner or "print as image" makes it, built by LibreOffice
// from a document holding only that picture) is read with OCR: its page
// text is the picture's, the page counts as scanned and the problem line
// says so; without OCR the problem line says the text could not be read.
func TestScannedPDF(t *testing.T) {
	if !documentstest.HaveLibreOffice() {
		t.Fatal("soffice is not installed: run scripts/install-deps.sh")
	}
	ocr := needTesseract(t)
	dir := t.TempDir()
	lines := []string{
		"Conclusiones de la practica de despliegue",
		"El cluster reparte las peticiones entre los workers",
		"pm2 ls muestra cuatro instancias online",
		"Final count is 1275",
	}
	spec := documentstest.Spec{Sections: []documentstest.Section{{Shots: []documentstest.Shot{{Lines: lines}}}}}
	src := filepath.Join(dir, "escaneado.docx")
	if err := documentstest.WriteDOCX(src, spec); err != nil {
		t.Fatal(err)
	}
	if err := documentstest.ToPDF(context.Background(), dir, src); err != nil {
		t.Fatal(err)
	}
	pdf := filepath.Join(dir, "escaneado.pdf")
	st, err := os.Stat(pdf)
	if err != nil {
		t.Fatal(err)
	}
	f := File{Name: "escaneado.pdf", Path: pdf, Size: st.Size()}

	d := Extract(context.Background(), f, ExtractOptions{OCR: ocr, TempDir: dir})
	text := ""
	for _, p := range d.Pages {
		text += p.Text
	}
	if d.TextLayer || d.OCRPages != 1 || len(d.Images) != 1 {
		t.Errorf("text layer %v, %d OCR pages, %d images; want a scan of one page", d.TextLayer, d.OCRPages, len(d.Images))
	}
	for _, w := range []string{"Final count is 1275", "pm2 ls"} {
		if !strings.Contains(text, w) {
			t.Errorf("page text %q lacks %q", text, w)
		}
	}
	if !strings.Contains(strings.Join(d.Problems, "\n"), "PDF sin capa de texto (escaneado o impreso como imagen): leído con OCR") {
		t.Errorf("problems = %q", d.Problems)
	}

	d = Extract(context.Background(), f, ExtractOptions{TempDir: dir})
	if d.OCRPages != 0 || d.Words() != 0 || !strings.Contains(strings.Join(d.Problems, "\n"), "sin OCR: no se pudo leer su texto") {
		t.Errorf("without OCR: %d OCR pages, %d words, problems %q", d.OCRPages, d.Words(), d.Problems)
	}
}
