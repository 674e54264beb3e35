// Package checks grades a host against a rubric: it holds the rubric
// (rubric.yaml, strictly decoded with file:line errors), the facts observed on
// a host (HostFacts, gathered in one round trip by observe's script and
// read back by ParseProbe), and Grade, a pure function from rubric, facts and
// bench results to a Scorecard.
//
// Declared vs observed (as in goss): a check's YAML says what the rubric
// expects; the probe observes the host once; each check only reads the facts.
// Every check ends in one of four outcomes:
//
//   - pass: the expectation holds;
//   - fail: the host was observed and the expectation does not hold;
//   - skip: the check does not apply to this run (for example respawn and
//     reload without --active, or bench with no bench results); it is left out
//     of the score;
//   - error: the check could not be made (host unreachable, a tool or a
//     permission missing on the host, inconclusive observation). It is never
//     scored as a fail: it is left out of the score, shown with its reason,
//     and its criterion is marked "needs review" for the teacher.
//
// Scoring: an automatic criterion scores points × (weight earned) / (weight
// of passing + failing checks), rounded to hundredths. A passing check earns
// its weight; a failing one earns Credit × weight, where Credit is the best
// share of its partial-credit evidence that was found (the rubric's
// `partial:` list; 0 without one), and its Reason then says in one sentence
// what was missing and what was found. A criterion
// with no passing or failing check has no score (Scored is false) and needs
// review. Manual criteria are scored by the teacher in the spreadsheet.
//
// Every result carries Evidence: what was observed (a body, a process line, a
// JSON field), so a student can be told exactly why a point was lost.
//
// # Check kinds: one file each
//
// A check kind lives in one file, kind_<name>.go, and nowhere else. The file
// holds:
//
//   - a Params type with the kind's parameters and three methods:
//     decode(d *decoder) reads the kind's keys from the rubric through the
//     strict decoder (d.str, d.regexp, d.integer, d.boolean, d.count,
//     d.urlPath, d.target for server:/port: …; wrong types, bad values and
//     missing required keys become errors with file:line, and any key the
//     kind does not ask for is refused); eval(e *env, c *Check) Result is the
//     check, a pure function of the host's facts and bench results (e.f,
//     e.bench, e.pick for the app servers) that returns pass, fail, skip or
//     error with the evidence it saw and, unless it passed, a reason a student
//     understands; describe(add) lists the declared parameters for the
//     teacher's Rúbrica sheet;
//   - optionally probe(o *observe.Options), when the probe must observe
//     something the rubric names (a path to GET, a unit, a command);
//   - an init that calls register(kind, doc, constructor): the doc line is
//     the kind's row in README's table of check kinds (KindsTable), which
//     TestReadmeKindsTable keeps in step (go test ./checks -run
//     TestReadmeKindsTable -update rewrites it).
//
// So adding a kind is one new file, kind_<name>.go (with its Kind const), and
// its kind_<name>_test.go (table tests of eval over HostFacts fixtures with
// Evaluate or Score, and the decode errors), then -update for README. If the
// kind needs facts the probe does not gather yet, add their gathering and
// parsing to observe (observe/observe.sh and a fuzz-tested parser), and the
// fields to HostFacts (FactsOf), first.
package checks
