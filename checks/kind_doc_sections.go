package checks

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// KindDocSections: the template's sections are present.
const KindDocSections Kind = "doc_sections"

func init() {
	registerDoc(KindDocSections, "the template's sections are present (titles given as patterns, and/or the --template document's headings)", func() Params { return &docSectionsCheck{} })
}

// docSectionsCheck passes when at least MinShare (default 0.8) of the
// expected titles (Sections, and with Template the --template's headings)
// appear among the document's headings or text.
type docSectionsCheck struct {
	Sections   []string
	Template   bool
	MinShare   float64
	sectionsRe []*regexp.Regexp
}

func (s *docSectionsCheck) decode(d *decoder) {
	d.regexList("sections", &s.Sections, &s.sectionsRe)
	d.boolean("template", &s.Template)
	s.MinShare = 0.8
	d.share("min_share", &s.MinShare)
	if d.ok() && len(s.Sections) == 0 && !s.Template {
		d.failf(nil, "document check %q: give sections: or template: true", d.c.ID)
	}
}

func (s *docSectionsCheck) describe(add func(k, v string)) {
	for _, x := range s.Sections {
		add("sections", x)
	}
	if s.Template {
		add("template", "true")
	}
	if s.MinShare != 0.8 {
		add("min_share", strconv.FormatFloat(s.MinShare, 'f', -1, 64))
	}
}

func (s *docSectionsCheck) eval(e *env, _ *Check) Result {
	d := e.doc
	type want struct {
		label string
		re    *regexp.Regexp
	}
	var ws []want
	for i, x := range s.Sections {
		ws = append(ws, want{x, s.sectionsRe[i]})
	}
	if s.Template {
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
	body := foldedPages(d)
	found, missing := []string{}, []string{}
	for _, w := range ws {
		if w.re.MatchString(heads.String()) || w.re.MatchString(body) {
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
	if share+1e-9 >= s.MinShare {
		return pass(ev)
	}
	return failed(ev, "faltan secciones de la plantilla (se pide el %d%%)", int(math.Round(s.MinShare*100)))
}
