#!/usr/bin/env bash
# bench.sh: every benchmark, each printing ratios against a reference run made
# in the same script (wrk, the Express app, npm loadtest, Ansible). These are
# measurements, not tests: they never fail on a figure. Run as root.
#   scripts/bench.sh            all of them
#   scripts/bench.sh payload    only scripts/bench-payload.sh (likewise loadgen, gotest, up, grade, documents)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"
scripts/install-deps.sh >/dev/null

only=${1:-}
for b in payload loadgen gotest up grade documents; do
	[ -n "$only" ] && [ "$only" != "$b" ] && continue
	s=scripts/bench-$b.sh
	[ -x "$s" ] || continue
	echo "== $s"
	"$s"
	echo
done
