package checks

import "strings"

// KindAllOf: passes when all of its parts (checks of other kinds, no weights) pass.
const KindAllOf Kind = "all_of"

func init() {
	register(KindAllOf, "passes when all of its parts (checks of other kinds, no weights) pass: evidence that needs two things at once", func() Params { return &allOfCheck{} })
}

// allOfCheck passes when every part (Check.Checks) passes, for evidence such
// as "the code exists and the history shows it was run". It fails when one
// part fails, is skipped when one is, and ends in error when none failed and
// one could not be made.
type allOfCheck struct{}

func (*allOfCheck) decode(d *decoder) { d.alternatives("checks") }

func (*allOfCheck) describe(func(k, v string)) {}

func (*allOfCheck) eval(e *env, c *Check) Result {
	p := evalParts(e, c)
	switch {
	case len(p.fails) > 0:
		return failed(strings.Join(append(p.fails, p.oks...), "; "), "no se cumple todo lo pedido")
	case len(p.errs) > 0:
		r := errorf("%s", strings.Join(p.errs, "; "))
		r.Evidence = strings.Join(p.oks, "; ")
		return r
	case len(p.skips) > 0:
		return skipf("%s", strings.Join(p.skips, "; "))
	}
	return pass(strings.Join(p.oks, "; "))
}

// parts is what a check's parts (all_of) or alternatives (any_of) said, in
// their order, each line labelled with the part's name (or id): the
// evidence of those that passed, the reason (and evidence) of those that
// failed, the reason of those in error or skipped; firstReason is the
// reason of the first that failed.
type parts struct {
	oks, fails, errs, skips []string
	firstReason             string
}

// evalParts evaluates every part of c (c.Checks).
func evalParts(e *env, c *Check) parts {
	var p parts
	for i := range c.Checks {
		part := &c.Checks[i]
		r := e.eval(part)
		label := part.Name
		if label == "" {
			label = part.ID
		}
		switch r.Outcome {
		case Pass:
			p.oks = append(p.oks, label+": "+r.Evidence)
		case Fail:
			s := label + ": " + r.Reason
			if r.Evidence != "" {
				s += " (" + r.Evidence + ")"
			}
			p.fails = append(p.fails, s)
			if p.firstReason == "" {
				p.firstReason = r.Reason
			}
		case Error:
			p.errs = append(p.errs, label+": "+r.Reason)
		case Skip:
			p.skips = append(p.skips, label+": "+r.Reason)
		}
	}
	return p
}
