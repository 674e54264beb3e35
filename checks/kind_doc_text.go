package checks

import (
	"regexp"
	"strconv"
	"strings"
)

// KindDocText: a passage of the document (a paragraph and the next) or a
// screenshot's OCR'd text matches all of / any of some patterns.
const KindDocText Kind = "doc_text"

func init() {
	registerDoc(KindDocText, "a passage of the document (a paragraph and the next) or a screenshot's OCR'd text matches all of / any of some patterns", func() Params { return &docTextCheck{} })
}

// docTextCheck passes when one passage matches every All pattern and at
// least one Any pattern; OCR and Text say where to look (default both).
type docTextCheck struct {
	All, Any     []string
	OCR, Text    bool
	allRe, anyRe []*regexp.Regexp
}

func (t *docTextCheck) decode(d *decoder) {
	d.regexList("all", &t.All, &t.allRe)
	d.regexList("any", &t.Any, &t.anyRe)
	t.OCR, t.Text = true, true
	d.boolean("ocr", &t.OCR)
	d.boolean("text", &t.Text)
	if d.ok() && len(t.All) == 0 && len(t.Any) == 0 {
		d.failf(nil, "document check %q: give all: or any: (patterns)", d.c.ID)
	}
	if d.ok() && !t.OCR && !t.Text {
		d.failf(nil, "document check %q: ocr and text cannot both be false", d.c.ID)
	}
}

func (t *docTextCheck) describe(add func(k, v string)) {
	for _, s := range t.All {
		add("all", s)
	}
	for _, s := range t.Any {
		add("any", s)
	}
	if !t.OCR {
		add("ocr", strconv.FormatBool(t.OCR))
	}
	if !t.Text {
		add("text", strconv.FormatBool(t.Text))
	}
}

func (t *docTextCheck) eval(e *env, _ *Check) Result {
	d := e.doc
	ps := d.passages(t.Text, t.OCR)
	best, bestN := -1, -1
	for i, p := range ps {
		n := 0
		for _, re := range t.allRe {
			if re.MatchString(p.fold) {
				n++
			}
		}
		anyOK := len(t.anyRe) == 0
		for _, re := range t.anyRe {
			if re.MatchString(p.fold) {
				anyOK = true
				break
			}
		}
		if n == len(t.allRe) && anyOK {
			return pass(p.where + ": " + quote(p.text))
		}
		if anyOK && n > bestN {
			best, bestN = i, n
		}
	}
	note := ""
	if t.OCR && d.OCRMissing != "" && len(d.Images) > 0 {
		note = " (las capturas no se leyeron: " + d.OCRMissing + ")"
	}
	if best >= 0 && len(t.allRe) > 1 && bestN > 0 {
		return failed(ps[best].where+": "+quote(ps[best].text), "ningún pasaje reúne todas las ideas (el más cercano tiene %d de %d)%s", bestN, len(t.allRe), note)
	}
	return failed("", "no aparece en el documento%s", note)
}

// folded is used by the kinds that read the whole text.
func foldedPages(d *DocFacts) string {
	var b strings.Builder
	for _, p := range d.Pages {
		b.WriteString(Fold(p.Text) + "\n")
	}
	return b.String()
}
