#!/usr/bin/env bash
# test.sh: runs every deploylab test, installing what the tests need first.
# Run as root on Debian 12: scripts/test.sh  (README: "Run every test").
# Lab-host tests run for real; they skip only with DEPLOYLAB_SKIP_LAB=1,
# which CI never sets.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/install-deps.sh

echo "== lab images (cached in ${DEPLOYLAB_CACHE_DIR:-/var/cache/deploylab})"
go build -o bin/deploylab ./cmd/deploylab
bin/deploylab lab image --variant base
bin/deploylab lab image --variant node

echo "== the Express app (the differential peer and the Node deployment's tests)"
express=nodeapp
if [ ! -d "$express/node_modules/express" ]; then
	(cd "$express" && npm ci --no-audit --no-fund >/dev/null)
fi

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt needed on: $unformatted" >&2
	exit 1
fi
go vet ./...

# Three groups, each package run once in plain go test or once under -race
# (CI=true: a missing prerequisite fails, never skips):
#   serial:   deploy, grade and bench assert throughput on lab hosts (the
#             cluster beats the single server on 2 CPUs), which only holds
#             when no other test binary shares the cores: their lab tests
#             (named *Lab*) run one package at a time, the rest of them
#             under -race below;
#   raceonly: the concurrent packages that need no lab host (cluster
#             master and workers, loadgen, SSH/SFTP, the store, report):
#             their one run is under the race detector;
#   the rest: two packages at a time (lab and cmd/deploylab start lab
#             hosts of their own, without throughput assertions).
serial="./deploy ./grade ./bench"
raceonly="./payload/... ./remote ./inventory ./internal/... ./gradebook ./render"
rest=$(go list ./... | grep -v -x -F -f <(go list $serial $raceonly))

echo "== go test, two packages at a time"
go test -p 2 -count=1 -timeout 40m "$@" $rest

echo "== go test: the lab tests of deploy, grade and bench, one package at a time"
go test -p 1 -count=1 -timeout 40m -run Lab "$@" $serial

echo "== fuzz the parsers of host output (a few seconds each)"
# Every parser of text a VM prints has a fuzz target; the seed corpora in
# testdata/fuzz ran above as plain tests, here each target also explores
# new inputs briefly (DEPLOYLAB_FUZZTIME, default 5s; 9 targets).
for target in $(go test -list '^Fuzz' ./observe | grep '^Fuzz'); do
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "${DEPLOYLAB_FUZZTIME:-5s}" ./observe
done

echo "== go test -race: the concurrent packages, and deploy, grade and bench without their lab tests"
# deploy's and grade's runs over in-process hostile hosts are the
# concurrent code here. The lab tests ran above, unraced:
# DEPLOYLAB_SKIP_LAB=1 is this run's explicit, logged skip of them (in CI a
# test that needs lab hosts without "Lab" in its name fails here, so none
# is left out of both runs).
DEPLOYLAB_SKIP_LAB=1 go test -race -p 2 -count=1 -timeout 20m "$@" $raceonly $serial
