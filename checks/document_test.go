package checks

import (
	"strings"
	"testing"
)

const docRubric = `
version: 1
total: 3
criteria:
  - id: a
    name: A
    points: 2
    checks:
      - {id: t, kind: tool, any: [loadtest]}
    document:
      weight: 0.5
      checks:
        - {id: code, kind: doc_text, any: ['app\.get\(']}
        - {id: shot, kind: doc_text, text: false, any: ['final count is']}
  - id: e
    name: E
    points: 1
    manual: true
    document:
      checks:
        - {id: idea, kind: doc_text, weight: 2, all: ['ligeras', 'nucleos']}
        - {id: len, kind: doc_length, min_words: 5}
`

func TestScoreDocuments(t *testing.T) {
	r, err := ParseRubric("r.yaml", []byte(docRubric))
	if err != nil {
		t.Fatal(err)
	}
	vmPass := HostFacts{Reachable: true, Tools: []Tool{{Name: "loadtest"}}}
	vmFail := HostFacts{Reachable: true}
	good := &DocFacts{Submitted: true, Readable: true, TextLayer: true, Words: 30, PageCount: 2,
		Pages:  []DocPage{{File: "i.pdf", N: 2, Text: "Código: app.get('/api/:n')\n\nLas peticiones son Ligeras\ny con dos Núcleos no da"}},
		Images: []DocImage{{File: "i.pdf", Page: 3, Name: "p. 3, imagen 1", OCR: "$ curl localhost:3000/api/50\nFinal count is 1275"}}}
	half := &DocFacts{Submitted: true, Readable: true, TextLayer: true, Words: 3, PageCount: 1,
		Pages: []DocPage{{File: "i.pdf", N: 1, Text: "app.get() final count is ligeras"}}}
	cases := []struct {
		name     string
		vm       HostFacts
		doc      *DocFacts
		vmScored bool
		a, e     float64
		aScored  bool
		review   bool
		evidence string
	}{
		{"vm and document", vmPass, good, true, 2, 1, true, false, "i.pdf p. 3, captura p. 3, imagen 1: «$ curl"},
		{"vm fails, document passes", vmFail, good, true, 1, 1, true, false, ""},
		{"text only, screenshot not read", vmPass, half, true, 1.5, 0, true, false, "i.pdf p. 1"},
		{"no submission", vmPass, &DocFacts{}, true, 1, 0, true, true, ""},
		{"documents only", HostFacts{}, good, false, 1, 1, true, false, ""},
		{"unreadable", vmPass, &DocFacts{Submitted: true, Problems: []string{"x.doc: formato .doc"}}, true, 1, 0, false, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sc := Score(r, c.vm, nil)
			if !c.vmScored {
				sc = Scorecard{Criteria: []CriterionResult{{ID: "a", Points: 2}, {ID: "e", Points: 1, Manual: true}}, DocumentsOnly: true}
			}
			ScoreDocuments(r, &sc, c.doc, c.vmScored)
			a, e := sc.Criteria[0], sc.Criteria[1]
			if a.Score != c.a || !a.Suggested || a.Scored != true {
				t.Errorf("A = %v (scored %v, suggested %v, %s), want %v", a.Score, a.Scored, a.Suggested, a.SuggestedNote, c.a)
			}
			if e.Scored != c.aScored || (e.Scored && e.Score != c.e) {
				t.Errorf("E = %v (scored %v), want %v (scored %v)", e.Score, e.Scored, c.e, c.aScored)
			}
			if sc.NeedsReview != c.review {
				t.Errorf("review = %v, want %v", sc.NeedsReview, c.review)
			}
			if c.evidence != "" {
				var ev []string
				for _, ch := range a.Checks {
					ev = append(ev, ch.Evidence)
				}
				if !strings.Contains(strings.Join(ev, "\n"), c.evidence) {
					t.Errorf("evidence %q lacks %q", ev, c.evidence)
				}
			}
		})
	}
}

func TestDocumentRubricErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"document: {weight: 0.5, checks: [{id: x, kind: doc_magic}]}", "unknown document check kind \"doc_magic\""},
		{"document: {weight: 2, checks: [{id: x, kind: doc_readable}]}", "share of the criterion's points"},
		{"document: {checks: [{id: x, kind: doc_text}]}", "give all: or any:"},
		{"document: {checks: [{id: x, kind: doc_text, any: ['(']}]}", "not a valid regular expression"},
		{"document: {checks: [{id: x, kind: doc_length, min_words: -1}]}", "must not be negative"},
		{"document: {checks: [{id: x, kind: doc_readable, any: [a]}]}", "unknown key \"any\""},
		{"document: {checks: [{id: x, kind: doc_readable, partial: []}]}", "unknown key \"partial\""},
		{"document: {checks: [{id: x, kind: tool, any: [a]}]}", "r.yaml:8: tool is not a document check kind"},
		{"document: {checks: [{id: x, kind: doc_vocabulary, min: 2}]}", "r.yaml:8: check \"x\" of kind doc_vocabulary: missing key \"terms\""},
		{"document: {checks: [{id: x, kind: doc_captions, min_share: 1.5}]}", "r.yaml:8: \"min_share\" is a share from 0 to 1"},
		{"document: {checks: [{id: x, kind: doc_sections, min_share: 0.5}]}", "give sections: or template: true"},
		{"document: {checks: [{id: x, kind: doc_text, any: a, ocr: false, text: false}]}", "ocr and text cannot both be false"},
		{"document: {checks: [{id: x, kind: doc_text, any: a, ocr: 'no'}]}", "\"ocr\" must be true or false"},
		{"document: {checks: [{id: x, kind: doc_text, any: a}, {id: x, kind: doc_readable}]}", "duplicate check id \"x\""},
	} {
		y := "version: 1\ntotal: 1\ncriteria:\n  - id: a\n    name: A\n    points: 1\n    checks: [{id: t, kind: tool, any: [x]}]\n    " + c.yaml + "\n"
		_, err := ParseRubric("r.yaml", []byte(y))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.yaml, err, c.want)
		}
	}
}

// TestDocKindOutsideDocument: a document kind among a criterion's VM checks
// is refused at its line.
func TestDocKindOutsideDocument(t *testing.T) {
	y := "version: 1\ntotal: 1\ncriteria:\n  - id: a\n    name: A\n    points: 1\n    checks:\n      - {id: t, kind: doc_text, any: [x]}\n"
	_, err := ParseRubric("r.yaml", []byte(y))
	if err == nil || !strings.Contains(err.Error(), "r.yaml:8: doc_text is a document check kind: write it under the criterion's document: checks:") {
		t.Errorf("err = %v", err)
	}
}
