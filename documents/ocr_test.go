package documents

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/deploylab/deploylab/documents/documentstest"
)

// needTesseract fails (never skips) when tesseract or its Spanish model is
// missing: scripts/install-deps.sh installs them.
func needTesseract(t *testing.T) *OCR {
	t.Helper()
	o := NewOCR("")
	if !o.Available() {
		t.Fatalf("%s (scripts/install-deps.sh installs tesseract-ocr, tesseract-ocr-spa, tesseract-ocr-eng)", o.Missing())
	}
	return o
}

// TestOCRReadAll: pictures are read in batches of one tesseract each, each
// picture lands in its own slot; the same content (a copied screenshot,
// twice in one call and again in a later call) is read once; a picture
// tesseract cannot open stops the batch and the rest are read one by one;
// the disk cache answers a second OCR without tesseract.
func TestOCRReadAll(t *testing.T) {
	o := needTesseract(t)
	dir := t.TempDir()
	var paths []string
	for i := 0; i < 14; i++ {
		png, err := documentstest.Screenshot([]string{fmt.Sprintf("pm2 ls captura %d", 100+i), fmt.Sprintf("Final count is %d", 5000+i)}, 18)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, fmt.Sprintf("s%02d.png", i))
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	// A copy of picture 3 under another name.
	dup := filepath.Join(dir, "copia.png")
	b, _ := os.ReadFile(paths[3])
	os.WriteFile(dup, b, 0o644)
	o.CacheDir = filepath.Join(dir, "cache")
	texts := o.ReadAll(context.Background(), append(append([]string{}, paths...), dup))
	for i := range paths {
		if want := fmt.Sprintf("Final count is %d", 5000+i); !strings.Contains(texts[i], want) {
			t.Errorf("picture %d: %q lacks %q", i, texts[i], want)
		}
	}
	if texts[14] != texts[3] {
		t.Errorf("copy read %q, original %q", texts[14], texts[3])
	}
	runs, pics := o.Stats()
	if pics != 14 || runs != min(o.Workers, 2) {
		t.Errorf("%d runs read %d pictures, want 14 pictures in %d runs", runs, pics, min(o.Workers, 2))
	}
	// Read again: nothing new.
	o.ReadAll(context.Background(), paths[:2])
	if r, p := o.Stats(); r != runs || p != pics {
		t.Errorf("re-read ran tesseract again: %d runs, %d pictures", r-runs, p-pics)
	}
	// A fresh OCR with the same cache directory reads nothing either.
	o2 := NewOCR(o.CacheDir)
	if got := o2.Read(context.Background(), paths[5]); got != texts[5] {
		t.Errorf("cached text %q, want %q", got, texts[5])
	}
	if r, _ := o2.Stats(); r != 0 {
		t.Errorf("cached picture ran tesseract %d times", r)
	}
	// A file tesseract cannot read in the middle of a batch.
	bad := filepath.Join(dir, "roto.png")
	os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nno es una imagen"), 0o644)
	o3 := NewOCR("")
	mixed := []string{paths[0], bad, paths[1]}
	got := o3.ReadAll(context.Background(), mixed)
	if !strings.Contains(got[0], "5000") || got[1] != "" || !strings.Contains(got[2], "5001") {
		t.Errorf("with a broken picture: %q", got)
	}
	// A read cut short (Ctrl-C) is not remembered, in memory or on disk:
	// the next read, by the same OCR or by a later run, reads the picture.
	cutDir := filepath.Join(dir, "cut")
	o4 := NewOCR(cutDir)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if got := o4.ReadAll(cancelled, paths[6:8]); got[0] != "" || got[1] != "" {
		t.Errorf("cancelled read gave %q", got)
	}
	if got := o4.ReadAll(context.Background(), paths[6:8]); !strings.Contains(got[0], "5006") || !strings.Contains(got[1], "5007") {
		t.Errorf("after a cancelled read, the same OCR read %q", got)
	}
	o5 := NewOCR(cutDir)
	if got := o5.Read(context.Background(), paths[6]); !strings.Contains(got, "5006") {
		t.Errorf("after a cancelled read, the disk cache gave %q", got)
	}
}
