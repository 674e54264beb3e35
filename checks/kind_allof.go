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
	var oks, fails, errs, skips []string
	for i := range c.Checks {
		part := &c.Checks[i]
		r := e.eval(part)
		label := part.Name
		if label == "" {
			label = part.ID
		}
		switch r.Outcome {
		case Pass:
			oks = append(oks, label+": "+r.Evidence)
		case Fail:
			s := label + ": " + r.Reason
			if r.Evidence != "" {
				s += " (" + r.Evidence + ")"
			}
			fails = append(fails, s)
		case Error:
			errs = append(errs, label+": "+r.Reason)
		case Skip:
			skips = append(skips, label+": "+r.Reason)
		}
	}
	switch {
	case len(fails) > 0:
		return failed(strings.Join(append(fails, oks...), "; "), "no se cumple todo lo pedido")
	case len(errs) > 0:
		r := errorf("%s", strings.Join(errs, "; "))
		r.Evidence = strings.Join(oks, "; ")
		return r
	case len(skips) > 0:
		return skipf("%s", strings.Join(skips, "; "))
	}
	return pass(strings.Join(oks, "; "))
}
