#!/usr/bin/env bash
# bench-documents.sh: grading a class's documents (issue 15): 60 documents of
# 16 pages and 20 screenshots each (DEPLOYLAB_BENCH_DOCS to change), read with
# OCR off and on. Targets on 2 idle cores: OCR off <= 10 s, on <= 90 s. The
# load average is printed before and after: on a shared machine the wall time
# measures the neighbours too, and cpu-s/op (this process and its tools) is
# the figure to compare.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=$(command -v go || echo /usr/local/go/bin/go)
echo "cores: $(nproc)  load before: $(cut -d' ' -f1-3 /proc/loadavg)"
"$GO" test -run '^$' -bench Class -benchtime 1x -timeout 2h ./documents/
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
