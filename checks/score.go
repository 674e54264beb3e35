package checks

import (
	"math"
	"time"
)

// Outcome is a check's result.
type Outcome string

// The four outcomes (see the package comment for how each is scored).
const (
	Pass  Outcome = "pass"
	Fail  Outcome = "fail"
	Skip  Outcome = "skip"
	Error Outcome = "error"
)

// BenchSummary is one bench result, as the bench package hands it to Grade.
type BenchSummary struct {
	Server string // "single" or "cluster"
	Route  string // "/api/500000"
	RPS    float64
	P50us  float64
	P99us  float64
	Errors int
	Tool   string // "loadgen 1.0", "loadtest 8.0.3"
	// At is when it ran; when a route and server have several results the
	// latest one counts (the last one given if At is zero).
	At time.Time
}

// Scorecard is the score of one host.
type Scorecard struct {
	Host      string
	Reachable bool
	// Reason says why the host could not be probed.
	Reason   string
	Criteria []CriterionResult
	// Score is the sum of the scored automatic criteria (manual criteria are
	// added by the teacher in the spreadsheet).
	Score float64
	// NeedsReview is true when some criterion needs the teacher's eye.
	NeedsReview bool
	Bench       []BenchSummary

	// DocumentsOnly is true for a row graded from a submission alone
	// (grade --submissions without hosts).
	DocumentsOnly bool
	// ReviewNotes say, one line each, why the row needs the teacher's eye
	// beyond the checks ("sin entrega", an unreadable file, a similar
	// pair); shown in Revisar.
	ReviewNotes []string
}

// CriterionResult is the score of one criterion.
type CriterionResult struct {
	ID     string
	Name   string
	Points float64
	Manual bool
	// Score is points × passing weight / (passing + failing weight), rounded
	// to hundredths; meaningful only when Scored.
	Score  float64
	Scored bool
	// NeedsReview: a check ended in error, or nothing could be checked.
	NeedsReview bool
	Checks      []Result

	// Suggested is true when the score includes a document part (see
	// ScoreDocuments): a suggestion the teacher confirms or overrides.
	// SuggestedNote says how it was made ("VM 1.5 de 2 + documento 0.5 de 1").
	Suggested     bool
	SuggestedNote string
	// VMScore of VMPoints and DocScore of DocPoints are the two parts of a
	// criterion with a document part.
	VMScore, VMPoints   float64
	DocScore, DocPoints float64
}

// Result is the outcome of one check, with what was observed.
type Result struct {
	ID     string
	Name   string
	Kind   Kind
	Weight float64
	Outcome
	// Evidence is what was observed (a body, a process line, a JSON field).
	Evidence string
	// Reason explains a fail, skip or error in one line.
	Reason string
	// Credit is the part of Weight the check earns: 1 for a pass, 0 for a
	// fail, and in between for a fail that earned partial credit from its
	// evidence of work (Reason then says what was missing and what was
	// found). Skip and error earn nothing and count for nothing.
	Credit float64
	// Document is true for a check of the student's document.
	Document bool
}

// Partial reports whether the check earned part of its weight.
func (r Result) Partial() bool { return r.Outcome == Fail && r.Credit > 0 }

// Grade scores facts (and bench results) against the rubric. It is a pure
// function: no I/O, the same inputs give the same report.
func Score(r *Rubric, facts HostFacts, bench []BenchSummary) Scorecard {
	rep := Scorecard{Host: facts.Host, Reachable: facts.Reachable, Reason: facts.Error, Bench: bench}
	if !facts.Reachable && rep.Reason == "" {
		rep.Reason = "host no sondeado"
	}
	env := newEnv(r, &facts, bench)
	for _, c := range r.Criteria {
		cr := CriterionResult{ID: c.ID, Name: c.Name, Points: c.Points, Manual: c.Manual}
		if c.Manual {
			rep.Criteria = append(rep.Criteria, cr)
			continue
		}
		var passW, countW float64
		for _, ch := range c.Checks {
			var res Result
			if !facts.Reachable {
				res = Result{Outcome: Error, Reason: "host inalcanzable: " + rep.Reason}
			} else {
				res = env.evalTop(&ch)
			}
			res.ID, res.Name, res.Kind, res.Weight = ch.ID, ch.Name, ch.Kind, ch.Weight
			if res.Outcome == Skip {
				res.Reason += " (no cuenta para la nota: su peso se reparte entre las demás)"
			}
			switch res.Outcome {
			case Pass:
				passW += ch.Weight
				countW += ch.Weight
			case Fail:
				passW += ch.Weight * res.Credit
				countW += ch.Weight
			case Error:
				cr.NeedsReview = true
			}
			cr.Checks = append(cr.Checks, res)
		}
		if countW > 0 {
			cr.Scored = true
			cr.Score = round2(c.Points * passW / countW)
			rep.Score += cr.Score
		} else {
			cr.NeedsReview = true
		}
		if cr.NeedsReview {
			rep.NeedsReview = true
		}
		rep.Criteria = append(rep.Criteria, cr)
	}
	rep.Score = round2(rep.Score)
	return rep
}

func round2(v float64) float64 {
	return math.Round(v*100) / 100
}
