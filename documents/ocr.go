package documents

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// OCR reads the text of pictures with tesseract (Debian's tesseract-ocr,
// with tesseract-ocr-spa and tesseract-ocr-eng). Results are cached by the
// picture's content (in memory, and in CacheDir when set), so the same
// screenshot is read once and a re-grade reads none again.
type OCR struct {
	// Langs is tesseract's -l (default "spa", or "eng" when spa is not
	// installed; "spa+eng" reads both models, about twice the time).
	Langs string
	// Timeout bounds one picture (default 60 s).
	Timeout time.Duration
	// CacheDir keeps the text read per picture ("" = memory only).
	CacheDir string

	// Workers bounds the tesseract processes run at once, across every
	// document read in parallel (default: the CPUs).
	Workers int

	once     sync.Once
	ok       bool
	missing  string
	mu       sync.Mutex
	cache    map[string]string
	inflight map[string]*ocrCall
	sem      chan struct{}
	// Runs counts tesseract processes started, Pictures the pictures they
	// read (for the benchmark's figures).
	runs, pictures int
}

// ocrCall is a picture being read by one caller; others with the same
// content wait for its text instead of reading it again.
type ocrCall struct {
	done chan struct{}
	text string
}

// NewOCR returns an OCR with the default languages and the cache in
// cacheDir ("" none).
func NewOCR(cacheDir string) *OCR { return &OCR{CacheDir: cacheDir} }

func (o *OCR) init() {
	o.once.Do(func() {
		o.cache = map[string]string{}
		o.inflight = map[string]*ocrCall{}
		if o.Timeout <= 0 {
			o.Timeout = 60 * time.Second
		}
		if o.Workers <= 0 {
			o.Workers = runtime.NumCPU()
		}
		o.sem = make(chan struct{}, o.Workers)
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
			// One model: Spanish reads the English of a terminal or of
			// pm2's tables as well as spa+eng does (see the README), and
			// each language added costs a whole pass over the picture.
			for _, l := range []string{"spa", "eng"} {
				if have[l] {
					o.Langs = l
					break
				}
			}
			if o.Langs == "" {
				o.missing = "tesseract no tiene los idiomas spa ni eng (paquetes tesseract-ocr-spa, tesseract-ocr-eng): las capturas no se leen"
				return
			}
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
	return o.ReadAll(ctx, []string{path})[0]
}

// tesseractArgs are the options of every run: page segmentation 3 (auto,
// screenshots have columns), and no second pass over inverted text
// (tessedit_do_invert=0: about a fifth of the time, and screenshots of dark
// terminals still read, their text being light on one dark block).
var tesseractArgs = []string{"--psm", "3", "-c", "tessedit_do_invert=0"}

// batchPictures is how many pictures one tesseract process reads at most
// (its languages are loaded once per process, which costs about as much as
// reading two screenshots).
const batchPictures = 12

// ReadAll returns the text of each picture in paths (same order; "" for one
// that cannot be read). Pictures are known by their content: one already
// read (in memory, in CacheDir, or being read by another caller now: copied
// screenshots across students) is not read again. The rest are read in
// batches, one tesseract process per batch (tesseract takes a list of
// files), with at most Workers processes at once across all callers.
func (o *OCR) ReadAll(ctx context.Context, paths []string) []string {
	out := make([]string, len(paths))
	if !o.Available() || len(paths) == 0 {
		return out
	}
	sums := make([]string, len(paths))
	var wait []*ocrCall
	var waitIdx []int
	owned := map[string]*ocrCall{}
	var todo []int // indexes of the first path of each content this call reads
	for i, p := range paths {
		sum, err := fileSum(p)
		if err != nil {
			continue
		}
		sums[i] = sum
		if t, ok := o.lookup(sum); ok {
			out[i] = t
			continue
		}
		o.mu.Lock()
		if c, ok := o.inflight[sum]; ok {
			o.mu.Unlock()
			if owned[sum] == nil {
				wait = append(wait, c)
				waitIdx = append(waitIdx, i)
			}
			continue
		}
		c := &ocrCall{done: make(chan struct{})}
		o.inflight[sum] = c
		o.mu.Unlock()
		owned[sum] = c
		todo = append(todo, i)
	}
	// Split what is ours into batches; at most Workers run at once.
	var wg sync.WaitGroup
	nb := min(o.Workers, (len(todo)+batchPictures-1)/batchPictures)
	for b := 0; b < nb; b++ {
		var idx []int
		for k := b; k < len(todo); k += nb {
			idx = append(idx, todo[k])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ps []string
			for _, i := range idx {
				ps = append(ps, paths[i])
			}
			texts, read := o.batch(ctx, ps)
			for k, i := range idx {
				out[i] = texts[k]
				c := owned[sums[i]]
				c.text = texts[k]
				// A picture tesseract did not read (timeout, Ctrl-C) is
				// not remembered: the next run reads it again.
				if read[k] {
					o.remember(sums[i], c.text)
					o.store(sums[i], c.text)
				}
				o.mu.Lock()
				delete(o.inflight, sums[i])
				o.mu.Unlock()
				close(c.done)
			}
		}()
	}
	wg.Wait()
	// Same content twice in paths, or read by another caller meanwhile.
	for i := range paths {
		if out[i] == "" && sums[i] != "" {
			if c := owned[sums[i]]; c != nil {
				out[i] = c.text
			}
		}
	}
	for k, c := range wait {
		select {
		case <-c.done:
			out[waitIdx[k]] = c.text
		case <-ctx.Done():
		}
	}
	return out
}

// lookup finds a picture's text in memory or in CacheDir.
func (o *OCR) lookup(sum string) (string, bool) {
	o.mu.Lock()
	t, ok := o.cache[sum]
	o.mu.Unlock()
	if ok || o.CacheDir == "" {
		return t, ok
	}
	b, err := os.ReadFile(filepath.Join(o.CacheDir, sum[:2], sum+".txt"))
	if err != nil {
		return "", false
	}
	t = string(b)
	o.remember(sum, t)
	return t, true
}

// store keeps a picture's text in CacheDir (when set).
func (o *OCR) store(sum, t string) {
	if o.CacheDir == "" {
		return
	}
	cached := filepath.Join(o.CacheDir, sum[:2], sum+".txt")
	if os.MkdirAll(filepath.Dir(cached), 0o700) == nil {
		tmp := cached + ".tmp"
		if os.WriteFile(tmp, []byte(t), 0o600) == nil {
			_ = os.Rename(tmp, cached)
		}
	}
}

// batch runs one tesseract over paths (a list file when more than one) and
// splits its output at the page separators; read says which pictures
// tesseract really read. When the run fails or its pages do not add up (a
// picture tesseract cannot open stops the list), each picture is read on
// its own.
func (o *OCR) batch(ctx context.Context, paths []string) (texts []string, read []bool) {
	texts = make([]string, len(paths))
	read = make([]bool, len(paths))
	one := func(i int) {
		if out, ok := o.tesseract(ctx, paths[i], 1); ok {
			texts[i], read[i] = sanitize(out), true
		}
	}
	if len(paths) == 1 || !listable(paths) {
		for i := range paths {
			one(i)
		}
		return texts, read
	}
	list, err := os.CreateTemp(filepath.Dir(paths[0]), "deploylab-ocr-*.txt")
	if err == nil {
		_, err = list.WriteString(strings.Join(paths, "\n") + "\n")
		list.Close()
		defer os.Remove(list.Name())
	}
	if err == nil {
		if out, ok := o.tesseract(ctx, list.Name(), len(paths)); ok {
			pages := strings.Split(out, "\f")
			if len(pages) == len(paths)+1 && strings.TrimSpace(pages[len(paths)]) == "" {
				pages = pages[:len(paths)]
			}
			if len(pages) == len(paths) {
				for i, p := range pages {
					texts[i], read[i] = sanitize(p), true
				}
				return texts, read
			}
		}
	}
	for i := range paths {
		one(i)
	}
	return texts, read
}

// listable: tesseract's list file has one path per line.
func listable(paths []string) bool {
	for _, p := range paths {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, "\n\r") {
			return false
		}
	}
	return true
}

// tesseract runs one process (one of Workers at a time) on input, a picture
// or a list of n pictures.
func (o *OCR) tesseract(ctx context.Context, input string, n int) (string, bool) {
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return "", false
	}
	defer func() { <-o.sem }()
	o.mu.Lock()
	o.runs++
	o.pictures += n
	o.mu.Unlock()
	args := append([]string{input, "stdout", "-l", o.Langs}, tesseractArgs...)
	out, _, err := run(ctx, o.Timeout*time.Duration(n), maxOCRText*n, "tesseract", args...)
	if err != nil {
		return "", false
	}
	return string(out), true
}

// Stats returns the tesseract processes run and the pictures they read.
func (o *OCR) Stats() (runs, pictures int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.runs, o.pictures
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

// ocrQueue collects a document's pictures so that they are read together
// (ReadAll) once the document's pictures are all unpacked.
type ocrQueue struct {
	idx   []int    // index in doc.Images
	paths []string // the picture's file
	temp  []bool   // remove the file after reading
}

func (q *ocrQueue) add(i int, path string, temp bool) {
	q.idx = append(q.idx, i)
	q.paths = append(q.paths, path)
	q.temp = append(q.temp, temp)
}

// run reads the queued pictures into doc.Images and removes the temporary
// files (also without OCR).
func (q *ocrQueue) run(ctx context.Context, doc *Document, o *OCR) {
	if o != nil && o.Available() {
		texts := o.ReadAll(ctx, q.paths)
		for k, i := range q.idx {
			doc.Images[i].OCR = texts[k]
		}
	}
	for k, p := range q.paths {
		if q.temp[k] {
			os.Remove(p)
		}
	}
	*q = ocrQueue{}
}
