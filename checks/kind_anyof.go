package checks

import "strings"

// KindAnyOf: passes when one of its alternatives (checks of other kinds, no weights) passes.
const KindAnyOf Kind = "any_of"

func init() {
	register(KindAnyOf, "passes when one of its alternatives (checks of other kinds, no weights) passes", func() Params { return &anyOfCheck{} })
}

// anyOfCheck passes when one of the check's alternatives (Check.Checks)
// passes; it fails when they all fail, and ends in error when none passed
// and one could not be made.
type anyOfCheck struct{}

func (*anyOfCheck) decode(d *decoder) { d.alternatives("checks") }

func (*anyOfCheck) describe(func(k, v string)) {}

func (*anyOfCheck) eval(e *env, c *Check) Result {
	var fails, errs, skips []string
	// first is why the first alternative (the practice's own way) failed:
	// the reason a student reads; Evidence lists every alternative.
	first := ""
	for i := range c.Checks {
		alt := &c.Checks[i]
		r := e.eval(alt)
		label := alt.Name
		if label == "" {
			label = alt.ID
		}
		switch r.Outcome {
		case Pass:
			return pass(label + ": " + r.Evidence)
		case Fail:
			s := label + ": " + r.Reason
			if r.Evidence != "" {
				s += " (" + r.Evidence + ")"
			}
			fails = append(fails, s)
			if first == "" {
				first = r.Reason
			}
		case Error:
			errs = append(errs, label+": "+r.Reason)
		case Skip:
			skips = append(skips, label+": "+r.Reason)
		}
	}
	switch {
	case len(errs) > 0:
		r := errorf("%s", strings.Join(errs, "; "))
		r.Evidence = strings.Join(fails, "; ")
		return r
	case len(fails) > 0:
		if first == "" {
			first = "no se cumple ninguna alternativa"
		}
		return failed(strings.Join(fails, "; "), "%s", first)
	}
	return skipf("%s", strings.Join(skips, "; "))
}
