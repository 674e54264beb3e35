#!/usr/bin/env bash
# bench-gotest.sh: the Go benchmarks of the payload (speed targets that are
# measures, not tests: rate held by loadgen, the sessions figures of issue 17).
#   BENCHTIME=1x (default) or e.g. 3x     PKGS=./payload/...
set -euo pipefail
cd "$(dirname "$0")/.."
GO=$(command -v go || echo /usr/local/go/bin/go)
"$GO" test -run '^$' -bench . -benchtime "${BENCHTIME:-1x}" ${PKGS:-./payload/...}
