package checks

import (
	"fmt"
	"strconv"
)

// KindDocLength: the document's length in words (of its text layer) and pages.
const KindDocLength Kind = "doc_length"

func init() {
	registerDoc(KindDocLength, "the document has at least min_words words (text layer) and min_pages pages", func() Params { return &docLengthCheck{} })
}

type docLengthCheck struct {
	MinWords, MinPages int
}

func (l *docLengthCheck) decode(d *decoder) {
	d.integer("min_words", &l.MinWords, false)
	d.integer("min_pages", &l.MinPages, false)
}

func (l *docLengthCheck) describe(add func(k, v string)) {
	if l.MinWords > 0 {
		add("min_words", strconv.Itoa(l.MinWords))
	}
	if l.MinPages > 0 {
		add("min_pages", strconv.Itoa(l.MinPages))
	}
}

func (l *docLengthCheck) eval(e *env, _ *Check) Result {
	d := e.doc
	ev := fmt.Sprintf("%d palabras, %d páginas", d.Words, d.PageCount)
	switch {
	case d.Words < l.MinWords:
		return failed(ev, "menos de %d palabras", l.MinWords)
	case d.PageCount < l.MinPages:
		return failed(ev, "menos de %d páginas", l.MinPages)
	}
	return pass(ev)
}
