package checks

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/unicode/norm"
)

// Document check kinds (kind_doc_*.go, registered with registerDoc): what a
// student's submitted document must show. They read DocFacts (the text,
// headings, captions and OCR'd screenshots of the student's files, gathered
// by package documents) through env.doc, never the VM. They are written
// under a criterion's `document: checks:`, and nowhere else. Patterns are
// matched against text folded to lower case without accents ("Núcleos" is
// read as "nucleos"), so write them that way.

// DefaultDocumentWeight is the share of an automatic criterion's points that
// its document part is worth when the rubric does not say.
const DefaultDocumentWeight = 0.5

// DocumentPart is what a criterion looks for in the student's document.
type DocumentPart struct {
	// Weight is the share of the criterion's points the document is worth
	// (0-1; automatic criteria only: for a manual one the document suggests
	// the whole mark).
	Weight float64
	// Checks are of the document kinds only.
	Checks []Check
	Line   int
}

func (p *rubricParser) document(n *yaml.Node, manual bool) (*DocumentPart, error) {
	m, err := p.mapping(n, "document", []string{"weight", "checks"})
	if err != nil {
		return nil, err
	}
	d := &DocumentPart{Weight: DefaultDocumentWeight, Line: n.Line}
	if x := m["weight"]; x != nil {
		if manual {
			return nil, p.errf(x, "a manual criterion's document part suggests the whole mark: it has no weight")
		}
		if d.Weight, err = p.positive(x, "weight"); err != nil {
			return nil, err
		}
		if d.Weight > 1 {
			return nil, p.errf(x, "document weight is the share of the criterion's points (0-1), not %s", x.Value)
		}
	}
	if manual {
		d.Weight = 1
	}
	cn := m["checks"]
	if cn == nil || cn.Kind != yaml.SequenceNode || len(cn.Content) == 0 {
		return nil, p.errf(n, "document: \"checks\" must be a non-empty list")
	}
	seen := map[string]bool{}
	for _, x := range cn.Content {
		c, err := p.check(x, placeDocument)
		if err != nil {
			return nil, err
		}
		if seen[c.ID] {
			return nil, p.errf(x, "document: duplicate check id %q", c.ID)
		}
		seen[c.ID] = true
		d.Checks = append(d.Checks, c)
	}
	return d, nil
}

// share reads a number in (0, 1] (a share of something).
func (d *decoder) share(key string, dst *float64) {
	if x := d.key(key, false); x != nil {
		v, err := d.p.positive(x, key)
		if err == nil && v > 1 {
			err = d.p.errf(x, "%q is a share from 0 to 1", key)
		}
		d.set(err)
		if err == nil {
			*dst = v
		}
	}
}

// needDoc is the outcome of a document check when there is no document to
// read (nil when there is).
func needDoc(d *DocFacts) *Result {
	if d == nil || !d.Submitted {
		r := failed("", "sin entrega")
		return &r
	}
	if !d.Readable {
		r := errorf("no se pudo leer la entrega: %s", strings.Join(d.Problems, "; "))
		return &r
	}
	return nil
}

// DocFacts is what was read from one student's submission, as the document
// checks see it.
type DocFacts struct {
	// Submitted is false when the student handed nothing in.
	Submitted bool
	// Readable is false when nothing could be read (every file failed).
	Readable bool
	Files    []string
	Pages    []DocPage
	Images   []DocImage
	Headings []DocHeading
	// Captions counts caption lines.
	Captions int
	// TextLayer: text was read without OCR; OCRPages pages were scans.
	TextLayer bool
	OCRPages  int
	Words     int
	PageCount int
	// OCR says why screenshots were not read ("" when they were).
	OCRMissing string
	// Template holds the headings of the --template document.
	Template []string
	// Problems are one-line reasons part of the submission was not read.
	Problems []string
}

// DocPage is the text of one page of one file.
type DocPage struct {
	File string
	N    int
	Text string
}

// DocImage is one screenshot and the text OCR read in it.
type DocImage struct {
	File    string
	Page    int
	Name    string
	OCR     string
	Caption string
}

// DocHeading is one section title.
type DocHeading struct {
	File string
	Page int
	Text string
}

// Fold lower-cases s and removes its accents, as document patterns see text.
func Fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range norm.NFD.String(s) {
		if unicode.Is(unicode.Mn, r) {
			continue
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

// foldSpace folds s and joins its words with single spaces (a line break
// inside "pm2\nls" is a space).
func foldSpace(s string) string { return strings.Join(strings.Fields(Fold(s)), " ") }

// passage is a piece of text checks quote: a paragraph and the next one.
type passage struct {
	where string // "informe.pdf p. 3" or "informe.pdf p. 3, captura image2.png"
	text  string // original
	fold  string
}

func (d *DocFacts) passages(text, ocr bool) []passage {
	var out []passage
	if text {
		for _, p := range d.Pages {
			blocks := paragraphs(p.Text)
			for i := range blocks {
				t := blocks[i]
				if i+1 < len(blocks) {
					t += "\n" + blocks[i+1]
				}
				out = append(out, passage{where: fmt.Sprintf("%s p. %d", p.File, p.N), text: t, fold: foldSpace(t)})
			}
		}
	}
	if ocr {
		for _, im := range d.Images {
			if strings.TrimSpace(im.OCR) == "" {
				continue
			}
			out = append(out, passage{where: fmt.Sprintf("%s p. %d, captura %s", im.File, im.Page, im.Name), text: im.OCR, fold: foldSpace(im.OCR)})
		}
	}
	return out
}

var blankLineRe = regexp.MustCompile(`\n\s*\n`)

// paragraphs splits a page into blocks at blank lines; a block longer than
// 800 characters is cut at line ends.
func paragraphs(s string) []string {
	var out []string
	for _, b := range blankLineRe.Split(s, -1) {
		b = strings.TrimSpace(b)
		if b == "" {
			continue
		}
		for len(b) > 800 {
			cut := strings.LastIndexByte(b[:800], '\n')
			if cut < 200 {
				cut = strings.LastIndexByte(b[:800], ' ')
			}
			if cut < 200 {
				cut = 800
			}
			out = append(out, strings.TrimSpace(b[:cut]))
			b = strings.TrimSpace(b[cut:])
		}
		if b != "" {
			out = append(out, b)
		}
	}
	return out
}

// quote shortens a passage for evidence: one line, at most 300 characters.
func quote(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 300 {
		s = string(r[:300]) + "…"
	}
	return "«" + s + "»"
}

// EvalDoc evaluates one document check against a student's document.
func EvalDoc(c *Check, d *DocFacts) Result {
	var res Result
	switch {
	case c.Params == nil || !registry[c.Kind].document:
		res = errorf("tipo de comprobación de documento desconocido %q", c.Kind)
	case needDoc(d) != nil:
		res = *needDoc(d)
	default:
		res = c.Params.eval(&env{doc: d}, c)
	}
	res.ID, res.Name, res.Kind, res.Weight = c.ID, c.Name, c.Kind, c.Weight
	if res.Outcome == Pass {
		res.Credit = 1
	}
	return res
}

// ScoreDocuments adds the document part of every criterion to sc: each
// criterion with a document part gets its document checks' results (after
// its VM checks) and a suggested mark. For an automatic criterion the mark
// is points × ((1-w) × VM share + w × document share) when its VM part was
// scored (vmScored false: documents only, the VM part is left out and the
// mark is out of points × w); for a manual one, points × document share.
// With d nil (no --submissions) sc is left as it is. Pure: no I/O.
func ScoreDocuments(r *Rubric, sc *Scorecard, d *DocFacts, vmScored bool) {
	if d == nil {
		return
	}
	total := 0.0
	review := false
	for i := range sc.Criteria {
		cr := &sc.Criteria[i]
		c := r.criterion(cr.ID)
		if c == nil || c.Document == nil {
			if cr.Scored {
				total += cr.Score
			}
			review = review || cr.NeedsReview
			continue
		}
		var passW, countW float64
		docErr := false
		for j := range c.Document.Checks {
			res := EvalDoc(&c.Document.Checks[j], d)
			res.Document = true
			switch res.Outcome {
			case Pass:
				passW += res.Weight
				countW += res.Weight
			case Fail:
				countW += res.Weight
			case Error:
				docErr = true
			}
			cr.Checks = append(cr.Checks, res)
		}
		if countW == 0 {
			// Nothing of the document could be decided: the VM half alone
			// is scored, and the teacher must look.
			cr.NeedsReview = true
			if cr.Scored && !c.Manual && vmScored {
				cr.VMPoints = round2(c.Points * (1 - c.Document.Weight))
				cr.VMScore = round2(cr.VMPoints * cr.Score / c.Points)
				cr.DocPoints = round2(c.Points * c.Document.Weight)
				cr.Score, cr.Suggested = cr.VMScore, true
				cr.SuggestedNote = fmt.Sprintf("VM %s de %s; el documento no se pudo calificar (%s de %s pendientes)", fmtNum(cr.VMScore), fmtNum(cr.VMPoints), fmtNum(cr.DocPoints), fmtNum(cr.DocPoints))
			}
			if cr.Scored {
				total += cr.Score
			}
			review = true
			continue
		}
		docShare := passW / countW
		cr.DocScore = round2(c.Points * c.Document.Weight * docShare)
		cr.DocPoints = round2(c.Points * c.Document.Weight)
		cr.Suggested = true
		switch {
		case c.Manual:
			cr.Score, cr.Scored = round2(c.Points*docShare), true
			cr.SuggestedNote = fmt.Sprintf("documento: %s de %s", fmtNum(cr.Score), fmtNum(c.Points))
		case !vmScored:
			cr.VMPoints = round2(c.Points * (1 - c.Document.Weight))
			cr.Score, cr.Scored = cr.DocScore, true
			cr.SuggestedNote = fmt.Sprintf("solo documento: %s de %s (la parte de la VM, %s, no se comprobó)", fmtNum(cr.DocScore), fmtNum(cr.DocPoints), fmtNum(cr.VMPoints))
		case cr.Scored:
			vmShare := cr.Score / c.Points
			cr.VMPoints = round2(c.Points * (1 - c.Document.Weight))
			cr.VMScore = round2(cr.VMPoints * vmShare)
			cr.Score = round2(cr.VMScore + cr.DocScore)
			cr.SuggestedNote = fmt.Sprintf("VM %s de %s + documento %s de %s", fmtNum(cr.VMScore), fmtNum(cr.VMPoints), fmtNum(cr.DocScore), fmtNum(cr.DocPoints))
		default:
			cr.SuggestedNote = fmt.Sprintf("documento %s de %s; la VM no se pudo comprobar", fmtNum(cr.DocScore), fmtNum(cr.DocPoints))
			cr.Suggested = false
		}
		if docErr || !d.Submitted {
			cr.NeedsReview = true
		}
		if cr.Scored {
			total += cr.Score
		}
		review = review || cr.NeedsReview
	}
	sc.Score = round2(total)
	sc.NeedsReview = sc.NeedsReview || review
}

// criterion returns the criterion with id, or nil.
func (r *Rubric) criterion(id string) *Criterion {
	for i := range r.Criteria {
		if r.Criteria[i].ID == id {
			return &r.Criteria[i]
		}
	}
	return nil
}

// HasDocuments reports whether some criterion has a document part.
func (r *Rubric) HasDocuments() bool {
	for _, c := range r.Criteria {
		if c.Document != nil {
			return true
		}
	}
	return false
}
