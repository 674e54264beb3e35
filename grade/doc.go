// Package grade is `deploylab grade` as a library: it visits every student's
// host in parallel (bounded by Forks, each host under its own time limit),
// observes it once with the checks package's probe (one batched round trip
// over SSH), optionally disturbs it with the active checks (kill a worker and
// watch it come back; reload under load and count failed requests), adds the
// latest bench results, scores the rubric with checks.Score and writes the
// teacher's spreadsheet, the gradebook CSV and one feedback text per student
// with package gradebook.
//
// What it guarantees: outputs are checked before any host is visited (an
// unwritable --out, a locked or unreadable old sheet fail at once); a host
// that cannot be reached, or that hangs past its time limit, still gets its
// row, marked for review; a cancelled run (Ctrl-C) writes the rows finished so
// far and marks the others as not graded, so no manual mark typed in the old
// sheet is lost; the outcome is classified with internal/fail (Unreachable
// when some host could not be graded, Interrupted when cancelled).
package grade
