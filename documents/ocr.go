package documents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// OCR reads the text of pictures with tesseract (Debian's tesseract-ocr,
// with tesseract-ocr-spa and tesseract-ocr-eng). Results are cached by the
// picture's content (in memory, and in CacheDir when set), so the same
// screenshot is read once and a re-grade reads none again.
type OCR struct {
	// Langs is tesseract's -l (default "spa+eng", or what is installed).
	Langs string
	// Timeout bounds one picture (default 60 s).
	Timeout time.Duration
	// CacheDir keeps the text read per picture ("" = memory only).
	CacheDir string

	once    sync.Once
	ok      bool
	missing string
	mu      sync.Mutex
	cache   map[string]string
}

// NewOCR returns an OCR with the default languages and the cache in
// cacheDir ("" none).
func NewOCR(cacheDir string) *OCR { return &OCR{CacheDir: cacheDir} }

func (o *OCR) init() {
	o.once.Do(func() {
		o.cache = map[string]string{}
		if o.Timeout <= 0 {
			o.Timeout = 60 * time.Second
		}
		if !HaveTool("tesseract") {
			o.missing = "tesseract no está instalado (paquetes tesseract-ocr, tesseract-ocr-spa, tesseract-ocr-eng): las capturas no se leen, se califica solo el texto"
			return
		}
		out, _, err := run(context.Background(), 20*time.Second, 1<<16, "tesseract", "--list-langs")
		if err != nil {
			o.missing = "tesseract no funciona (" + err.Error() + "): las capturas no se leen, se califica solo el texto"
			return
		}
		have := map[string]bool{}
		for _, l := range strings.Split(string(out), "\n") {
			have[strings.TrimSpace(l)] = true
		}
		if o.Langs == "" {
			var ls []string
			for _, l := range []string{"spa", "eng"} {
				if have[l] {
					ls = append(ls, l)
				}
			}
			if len(ls) == 0 {
				o.missing = "tesseract no tiene los idiomas spa ni eng (paquetes tesseract-ocr-spa, tesseract-ocr-eng): las capturas no se leen"
				return
			}
			o.Langs = strings.Join(ls, "+")
		}
		o.ok = true
	})
}

// Available reports whether tesseract can be used.
func (o *OCR) Available() bool {
	if o == nil {
		return false
	}
	o.init()
	return o.ok
}

// Missing says why OCR is not available ("" when it is).
func (o *OCR) Missing() string {
	if o == nil {
		return "OCR desactivado"
	}
	o.init()
	return o.missing
}

// maxOCRText bounds the text kept from one picture.
const maxOCRText = 64 << 10

// Read returns the text tesseract reads in the picture at path ("" when it
// cannot: OCR is a help, never a reason to stop).
func (o *OCR) Read(ctx context.Context, path string) string {
	if !o.Available() {
		return ""
	}
	sum, err := fileSum(path)
	if err != nil {
		return ""
	}
	o.mu.Lock()
	t, ok := o.cache[sum]
	o.mu.Unlock()
	if ok {
		return t
	}
	cached := ""
	if o.CacheDir != "" {
		cached = filepath.Join(o.CacheDir, sum[:2], sum+".txt")
		if b, err := os.ReadFile(cached); err == nil {
			t = string(b)
			o.remember(sum, t)
			return t
		}
	}
	out, _, err := run(ctx, o.Timeout, maxOCRText, "tesseract", path, "stdout", "-l", o.Langs, "--psm", "3")
	if err != nil {
		return ""
	}
	t = sanitize(string(out))
	o.remember(sum, t)
	if cached != "" {
		if os.MkdirAll(filepath.Dir(cached), 0o700) == nil {
			tmp := cached + ".tmp"
			if os.WriteFile(tmp, []byte(t), 0o600) == nil {
				_ = os.Rename(tmp, cached)
			}
		}
	}
	return t
}

func (o *OCR) remember(sum, t string) {
	o.mu.Lock()
	o.cache[sum] = t
	o.mu.Unlock()
}

func fileSum(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sanitize drops control characters (but new lines and tabs) and invalid
// UTF-8 from outside text.
func sanitize(s string) string {
	s = strings.ToValidUTF8(s, "")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r == '\r':
			return -1
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\ufeff':
			return -1
		}
		return r
	}, s)
}
