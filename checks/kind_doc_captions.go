package checks

import (
	"fmt"
	"math"
	"strconv"
)

// KindDocCaptions: the document has screenshots, most of them captioned.
const KindDocCaptions Kind = "doc_captions"

func init() {
	registerDoc(KindDocCaptions, "the document has at least min_images screenshots, min_share of them with a caption", func() Params { return &docCaptionsCheck{} })
}

// docCaptionsCheck passes with at least MinImages pictures (default 1) and
// MinShare of them (default 0.5) with a caption.
type docCaptionsCheck struct {
	MinImages int
	MinShare  float64
}

func (c *docCaptionsCheck) decode(d *decoder) {
	c.MinImages, c.MinShare = 1, 0.5
	d.integer("min_images", &c.MinImages, false)
	d.share("min_share", &c.MinShare)
}

func (c *docCaptionsCheck) describe(add func(k, v string)) {
	add("min_images", strconv.Itoa(c.MinImages))
	add("min_share", strconv.FormatFloat(c.MinShare, 'f', -1, 64))
}

func (c *docCaptionsCheck) eval(e *env, _ *Check) Result {
	d := e.doc
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
