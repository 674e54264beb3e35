package checks

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// KindHistory: the users' shell history shows a command was run.
const KindHistory Kind = "history"

func init() {
	register(KindHistory, "the users' shell history shows a command was run", func() Params { return &historyCheck{} })
}

// historyCheck passes when at least Min history lines match Pattern.
type historyCheck struct {
	Pattern   string
	Min       int
	patternRe *regexp.Regexp
}

func (h *historyCheck) decode(d *decoder) {
	d.regexp("pattern", &h.Pattern, &h.patternRe, true)
	h.Min = 1
	d.integer("min", &h.Min, false)
}

func (h *historyCheck) describe(add func(k, v string)) {
	add("pattern", h.Pattern)
	if h.Min != 1 {
		add("min", strconv.Itoa(h.Min))
	}
}

func (h *historyCheck) eval(e *env, _ *Check) Result {
	var lines []string
	for _, l := range e.f.History {
		if h.patternRe.MatchString(l.Line) {
			lines = append(lines, clip(l.Line, 100))
		}
	}
	if len(lines) >= h.Min && len(lines) > 0 {
		return pass(strings.Join(firstN(lines, 3), " | "))
	}
	if len(lines) > 0 {
		return failed(strings.Join(lines, " | "), "%s en el historial, %s", nouns(len(lines), "orden", "órdenes"), expected("al menos", h.Min))
	}
	return failed(fmt.Sprintf("%s; se buscó /%s/", nouns(len(e.f.History), "línea de historial vista", "líneas de historial vistas"), h.Pattern), "el historial no muestra esa orden")
}
