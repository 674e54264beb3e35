// Package checks grades a host against a rubric: it holds the rubric
// (rubric.yaml, strictly decoded with file:line errors), the facts observed on
// a host (HostFacts, gathered in one round trip by the embedded probe.sh and
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
// Scoring: an automatic criterion scores points × (weight of passing checks) /
// (weight of passing + failing checks), rounded to hundredths. A criterion
// with no passing or failing check has no score (Scored is false) and needs
// review. Manual criteria are scored by the teacher in the spreadsheet.
//
// Every result carries Evidence: what was observed (a body, a process line, a
// JSON field), so a student can be told exactly why a point was lost.
package checks
