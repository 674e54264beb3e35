package checks

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
	"golang.org/x/text/unicode/norm"
)

// Document check kinds: what a student's submitted document must show. They
// read DocFacts (the text, headings, captions and OCR'd screenshots of the
// student's files, gathered by package documents), never the VM. Patterns
// are matched against text folded to lower case without accents
// ("Núcleos" is read as "nucleos"), so write them that way.
const (
	KindDocText       Kind = "doc_text"       // a passage (or a screenshot's OCR) matches all of / any of some patterns
	KindDocSections   Kind = "doc_sections"   // the template's sections are present
	KindDocCaptions   Kind = "doc_captions"   // screenshots, most of them with captions
	KindDocVocabulary Kind = "doc_vocabulary" // technical terms used
	KindDocLength     Kind = "doc_length"     // words and pages
	KindDocReadable   Kind = "doc_readable"   // a readable text layer (not a scan)
)

// docKeys lists the keys each document kind accepts besides id, name, kind
// and weight.
var docKeys = map[Kind][]string{
	KindDocText:       {"all", "any", "ocr", "text"},
	KindDocSections:   {"sections", "template", "min_share"},
	KindDocCaptions:   {"min_images", "min_share"},
	KindDocVocabulary: {"terms", "min"},
	KindDocLength:     {"min_words", "min_pages"},
	KindDocReadable:   {},
}

// DocKinds returns the document check kinds, sorted.
func DocKinds() []Kind {
	ks := make([]Kind, 0, len(docKeys))
	for k := range docKeys {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// DefaultDocumentWeight is the share of an automatic criterion's points that
// its document part is worth when the rubric does not say.
const DefaultDocumentWeight = 0.5

// DocumentPart is what a criterion looks for in the student's document.
type DocumentPart struct {
	// Weight is the share of the criterion's points the document is worth
	// (0-1; automatic criteria only: for a manual one the document suggests
	// the whole mark).
	Weight float64
	Checks []DocCheck
	Line   int
}

// DocCheck is one document check.
type DocCheck struct {
	ID     string
	Name   string
	Kind   Kind
	Weight float64
	Line   int

	// doc_text: All must each match within one passage (a paragraph and
	// the next), Any at least one; OCR and Text say where to look
	// (default both).
	All, Any  []string
	OCR, Text bool
	allRe     []*regexp.Regexp
	anyRe     []*regexp.Regexp

	// doc_sections: Sections are the titles expected (patterns); Template
	// adds the headings of the --template document. MinShare is the share
	// that must be present (default 0.8; doc_captions: of the pictures
	// with a caption, default 0.5).
	Sections   []string
	Template   bool
	MinShare   float64
	sectionsRe []*regexp.Regexp

	// doc_captions
	MinImages int

	// doc_vocabulary: at least Min of Terms used.
	Terms   []string
	termsRe []*regexp.Regexp
	Min     int

	// doc_length
	MinWords, MinPages int
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
		c, err := p.docCheck(x)
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

func (p *rubricParser) docCheck(n *yaml.Node) (DocCheck, error) {
	if n.Kind != yaml.MappingNode {
		return DocCheck{}, p.errf(n, "a document check must be a mapping")
	}
	var kn *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			kn = n.Content[i+1]
		}
	}
	if kn == nil {
		return DocCheck{}, p.errf(n, "document check: missing key \"kind\"")
	}
	kind := Kind(kn.Value)
	extra, ok := docKeys[kind]
	if !ok {
		var ks []string
		for _, k := range DocKinds() {
			ks = append(ks, string(k))
		}
		return DocCheck{}, p.errf(kn, "unknown document check kind %q (known: %s)", kn.Value, strings.Join(ks, ", "))
	}
	m, err := p.mapping(n, "document check of kind "+string(kind), append(slices.Clone(commonCheckKeys), extra...))
	if err != nil {
		return DocCheck{}, err
	}
	c := DocCheck{Kind: kind, Line: n.Line, Weight: 1, OCR: true, Text: true, MinShare: 0.8, MinImages: 1, Min: 1}
	if c.ID, err = p.id(m, n, "document check"); err != nil {
		return c, err
	}
	if x := m["name"]; x != nil {
		if c.Name, err = p.str(x, "name"); err != nil {
			return c, err
		}
	}
	if x := m["weight"]; x != nil {
		if c.Weight, err = p.positive(x, "weight"); err != nil {
			return c, err
		}
	}
	list := func(key string, src *[]string, dst *[]*regexp.Regexp) error {
		if x := m[key]; x != nil && err == nil {
			*src, *dst, err = p.regexList(x, key)
		}
		return err
	}
	boolean := func(key string, dst *bool) {
		if x := m[key]; x != nil && err == nil {
			*dst, err = p.boolean(x, key)
		}
	}
	integer := func(key string, dst *int) {
		if x := m[key]; x != nil && err == nil {
			*dst, err = p.integer(x, key)
			if err == nil && *dst < 0 {
				err = p.errf(x, "%q must not be negative", key)
			}
		}
	}
	share := func(key string, dst *float64) {
		if x := m[key]; x != nil && err == nil {
			*dst, err = p.positive(x, key)
			if err == nil && *dst > 1 {
				err = p.errf(x, "%q is a share from 0 to 1", key)
			}
		}
	}
	switch kind {
	case KindDocText:
		_ = list("all", &c.All, &c.allRe)
		_ = list("any", &c.Any, &c.anyRe)
		boolean("ocr", &c.OCR)
		boolean("text", &c.Text)
		if err == nil && len(c.All) == 0 && len(c.Any) == 0 {
			err = p.errf(n, "document check %q: give all: or any: (patterns)", c.ID)
		}
		if err == nil && !c.OCR && !c.Text {
			err = p.errf(n, "document check %q: ocr and text cannot both be false", c.ID)
		}
	case KindDocSections:
		_ = list("sections", &c.Sections, &c.sectionsRe)
		boolean("template", &c.Template)
		share("min_share", &c.MinShare)
		if err == nil && len(c.Sections) == 0 && !c.Template {
			err = p.errf(n, "document check %q: give sections: or template: true", c.ID)
		}
	case KindDocCaptions:
		c.MinShare = 0.5
		integer("min_images", &c.MinImages)
		share("min_share", &c.MinShare)
	case KindDocVocabulary:
		_ = list("terms", &c.Terms, &c.termsRe)
		integer("min", &c.Min)
		if err == nil && len(c.Terms) == 0 {
			err = p.errf(n, "document check %q: missing key \"terms\"", c.ID)
		}
	case KindDocLength:
		integer("min_words", &c.MinWords)
		integer("min_pages", &c.MinPages)
	}
	return c, err
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

// EvalDoc evaluates one document check.
func EvalDoc(c *DocCheck, d *DocFacts) Result {
	res := evalDoc(c, d)
	res.ID, res.Name, res.Kind, res.Weight = c.ID, c.Name, c.Kind, c.Weight
	if res.Outcome == Pass {
		res.Credit = 1
	}
	return res
}

func evalDoc(c *DocCheck, d *DocFacts) Result {
	if d == nil || !d.Submitted {
		return failed("", "sin entrega")
	}
	if !d.Readable {
		return errorf("no se pudo leer la entrega: %s", strings.Join(d.Problems, "; "))
	}
	switch c.Kind {
	case KindDocText:
		return docText(c, d)
	case KindDocSections:
		return docSections(c, d)
	case KindDocCaptions:
		return docCaptions(c, d)
	case KindDocVocabulary:
		return docVocabulary(c, d)
	case KindDocLength:
		return docLength(c, d)
	case KindDocReadable:
		return docReadable(d)
	}
	return errorf("tipo de comprobación de documento desconocido %q", c.Kind)
}

func docText(c *DocCheck, d *DocFacts) Result {
	ps := d.passages(c.Text, c.OCR)
	best, bestN := -1, -1
	for i, p := range ps {
		n := 0
		for _, re := range c.allRe {
			if re.MatchString(p.fold) {
				n++
			}
		}
		anyOK := len(c.anyRe) == 0
		for _, re := range c.anyRe {
			if re.MatchString(p.fold) {
				anyOK = true
				break
			}
		}
		if n == len(c.allRe) && anyOK {
			return pass(p.where + ": " + quote(p.text))
		}
		if anyOK && n > bestN {
			best, bestN = i, n
		}
	}
	note := ""
	if c.OCR && d.OCRMissing != "" && len(d.Images) > 0 {
		note = " (las capturas no se leyeron: " + d.OCRMissing + ")"
	}
	if best >= 0 && len(c.allRe) > 1 && bestN > 0 {
		return failed(ps[best].where+": "+quote(ps[best].text), "ningún pasaje reúne todas las ideas (el más cercano tiene %d de %d)%s", bestN, len(c.allRe), note)
	}
	return failed("", "no aparece en el documento%s", note)
}

func docSections(c *DocCheck, d *DocFacts) Result {
	type want struct {
		label string
		re    *regexp.Regexp
	}
	var ws []want
	for i, s := range c.Sections {
		ws = append(ws, want{s, c.sectionsRe[i]})
	}
	if c.Template {
		if len(d.Template) == 0 && len(ws) == 0 {
			return skipf("sin plantilla (--template) de la que leer las secciones")
		}
		for _, h := range d.Template {
			f := strings.TrimSpace(Fold(h))
			f = strings.TrimLeft(f, "0123456789. ")
			if f == "" {
				continue
			}
			ws = append(ws, want{h, regexp.MustCompile(`(^|\n)\s*[\d.]*\s*` + regexp.QuoteMeta(f))})
		}
	}
	var heads strings.Builder
	for _, h := range d.Headings {
		heads.WriteString(Fold(h.Text) + "\n")
	}
	var body strings.Builder
	for _, p := range d.Pages {
		body.WriteString(Fold(p.Text) + "\n")
	}
	found, missing := []string{}, []string{}
	for _, w := range ws {
		if w.re.MatchString(heads.String()) || w.re.MatchString(body.String()) {
			found = append(found, w.label)
		} else {
			missing = append(missing, w.label)
		}
	}
	if len(ws) == 0 {
		return skipf("la plantilla no tiene títulos de sección")
	}
	share := float64(len(found)) / float64(len(ws))
	ev := fmt.Sprintf("%d de %d secciones", len(found), len(ws))
	if len(missing) > 0 {
		ev += "; faltan: " + strings.Join(missing, ", ")
	}
	if share+1e-9 >= c.MinShare {
		return pass(ev)
	}
	return failed(ev, "faltan secciones de la plantilla (se pide el %d%%)", int(math.Round(c.MinShare*100)))
}

func docCaptions(c *DocCheck, d *DocFacts) Result {
	n := len(d.Images)
	withCaption := 0
	for _, im := range d.Images {
		if im.Caption != "" {
			withCaption++
		}
	}
	captions := max(withCaption, min(d.Captions, n))
	ev := fmt.Sprintf("%d capturas, %d pies de figura", n, d.Captions)
	if n < c.MinImages {
		return failed(ev, "menos de %d capturas", c.MinImages)
	}
	if n == 0 {
		return pass(ev)
	}
	if float64(captions)/float64(n)+1e-9 >= c.MinShare {
		return pass(ev)
	}
	return failed(ev, "pocas capturas con pie de figura (se pide el %d%%)", int(math.Round(c.MinShare*100)))
}

func docVocabulary(c *DocCheck, d *DocFacts) Result {
	var all strings.Builder
	for _, p := range d.Pages {
		all.WriteString(Fold(p.Text) + "\n")
	}
	text := all.String()
	var found []string
	for i, re := range c.termsRe {
		if re.MatchString(text) {
			found = append(found, c.Terms[i])
		}
	}
	ev := fmt.Sprintf("%d de %d términos: %s", len(found), len(c.Terms), strings.Join(found, ", "))
	if len(found) >= c.Min {
		return pass(ev)
	}
	return failed(ev, "usa menos de %d términos técnicos", c.Min)
}

func docLength(c *DocCheck, d *DocFacts) Result {
	ev := fmt.Sprintf("%d palabras, %d páginas", d.Words, d.PageCount)
	switch {
	case d.Words < c.MinWords:
		return failed(ev, "menos de %d palabras", c.MinWords)
	case d.PageCount < c.MinPages:
		return failed(ev, "menos de %d páginas", c.MinPages)
	}
	return pass(ev)
}

func docReadable(d *DocFacts) Result {
	ev := fmt.Sprintf("%d palabras con capa de texto", d.Words)
	if d.OCRPages > 0 {
		ev += fmt.Sprintf("; %d páginas escaneadas leídas con OCR", d.OCRPages)
	}
	if !d.TextLayer {
		return failed(ev, "el documento no tiene capa de texto (escaneado o impreso como imagen)")
	}
	if d.OCRPages > 0 {
		return failed(ev, "parte del documento está escaneada")
	}
	return pass(ev)
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
