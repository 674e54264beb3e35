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
	// Parts are pure functions of the facts: evaluating them all and taking
	// the first that passed is evaluating them until one passes.
	p := evalParts(e, c)
	switch {
	case len(p.oks) > 0:
		return pass(p.oks[0])
	case len(p.errs) > 0:
		r := errorf("%s", strings.Join(p.errs, "; "))
		r.Evidence = strings.Join(p.fails, "; ")
		return r
	case len(p.fails) > 0:
		// The first alternative's (the practice's own way) reason is the
		// one a student reads; Evidence lists every alternative.
		first := p.firstReason
		if first == "" {
			first = "no se cumple ninguna alternativa"
		}
		return failed(strings.Join(p.fails, "; "), "%s", first)
	}
	return skipf("%s", strings.Join(p.skips, "; "))
}
