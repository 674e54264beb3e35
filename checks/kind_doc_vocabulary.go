package checks

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KindDocVocabulary: technical terms used in the document's text.
const KindDocVocabulary Kind = "doc_vocabulary"

func init() {
	registerDoc(KindDocVocabulary, "at least min of the technical terms (patterns) are used in the document's text", func() Params { return &docVocabularyCheck{} })
}

// docVocabularyCheck passes when at least Min (default 1) of Terms appear.
type docVocabularyCheck struct {
	Terms   []string
	Min     int
	termsRe []*regexp.Regexp
}

func (v *docVocabularyCheck) decode(d *decoder) {
	if d.key("terms", true) != nil {
		d.regexList("terms", &v.Terms, &v.termsRe)
	}
	v.Min = 1
	d.integer("min", &v.Min, false)
}

func (v *docVocabularyCheck) describe(add func(k, val string)) {
	add("terms", strings.Join(v.Terms, ","))
	add("min", strconv.Itoa(v.Min))
}

func (v *docVocabularyCheck) eval(e *env, _ *Check) Result {
	text := foldedPages(e.doc)
	var found []string
	for i, re := range v.termsRe {
		if re.MatchString(text) {
			found = append(found, v.Terms[i])
		}
	}
	ev := fmt.Sprintf("%d de %d términos: %s", len(found), len(v.Terms), strings.Join(found, ", "))
	if len(found) >= v.Min {
		return pass(ev)
	}
	return failed(ev, "usa menos de %d términos técnicos", v.Min)
}
