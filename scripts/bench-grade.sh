#!/usr/bin/env bash
# bench-grade.sh: grades a class of lab hosts with `deploylab grade` and
# reports the total wall time, each host's time, and how the wall time
# compares with the slowest host (parallel) and with the sum (serial).
#
# Goal (issue 6): the class in <= 60 s without --active, dominated by the
# slowest host, not by the sum of the hosts.
#
# The hosts are node-variant lab hosts with the student deployments of
# grade/testdata/fixtures (complete, no-cluster, pm2-fork, app-stopped, in
# turn). Lab hosts share this machine's CPUs: the probe's blocking experiment
# (a ~5 s CPU-bound request on every app port) then costs CPU time that real
# VMs would each pay on their own CPUs; the script also reports a run with a
# rubric without that check (its scores differ: the weights change), which
# measures grade itself. Every host of a fixture must get the same score.
#
# Environment:
#   HOSTS=30      lab hosts            FORKS=30      deploylab grade --forks
#   KEEP=0        1: leave the lab running (prints its directory)
# Needs: root, systemd-container and debootstrap (the lab), go.
set -euo pipefail

HOSTS=${HOSTS:-30}
FORKS=${FORKS:-30}
KEEP=${KEEP:-0}

die() { echo "bench-grade: error: $*" >&2; exit 1; }
GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || die "go not found"
[ "$(id -u)" = 0 ] || die "the lab needs root"

cd "$(dirname "$0")/.."
work=$(mktemp -d)
dl="$work/deploylab"
labdir="$work/lab"
cleanup() {
	if [ "$KEEP" != 1 ] && [ -f "$labdir/lab.json" ]; then "$dl" lab stop --lab-dir "$labdir" >/dev/null 2>&1 || true; fi
	[ "$KEEP" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT

"$GO" build -o "$dl" ./cmd/deploylab
t0=$(date +%s.%N)
"$dl" lab start --hosts "$HOSTS" --variant node --lab-dir "$labdir" >/dev/null
t1=$(date +%s.%N)
printf 'lab: %d hosts started in %.1fs\n' "$HOSTS" "$(echo "$t1 - $t0" | bc)"

fixtures=(complete no-cluster pm2-fork app-stopped)
tar -C grade/testdata/fixtures -cf "$work/fixtures.tar" .
setup() {
	local n=$1 fx=$2
	"$dl" lab ssh "$n" --lab-dir "$labdir" -- 'mkdir -p /tmp/fixtures && tar -xf - -C /tmp/fixtures' <"$work/fixtures.tar"
	"$dl" lab ssh "$n" --lab-dir "$labdir" -- "F=/tmp/fixtures sh /tmp/fixtures/$fx.sh" </dev/null >"$work/setup.$n.log" 2>&1 ||
		{ echo "set up $fx on lab$n failed:"; cat "$work/setup.$n.log"; return 1; }
}
pids=()
for n in $(seq "$HOSTS"); do
	fx=${fixtures[$(((n - 1) % ${#fixtures[@]}))]}
	setup "$n" "$fx" &
	pids+=($!)
	# npm and pm2 are CPU-heavy: set up 8 hosts at a time
	if [ $((n % 8)) = 0 ]; then wait "${pids[@]}"; pids=(); fi
done
[ ${#pids[@]} = 0 ] || wait "${pids[@]}"
t2=$(date +%s.%N)
printf 'fixtures: set up in %.1fs (%s in turn)\n' "$(echo "$t2 - $t1" | bc)" "${fixtures[*]}"
sleep 5 # let the load tests' node processes settle

# A rubric without the blocking experiment, to measure grade itself.
python3 - rubric.yaml "$work/noblock.yaml" <<'EOF'
import re, sys
src = open(sys.argv[1]).read()
# drop the no_bloquea check (7 lines from its "- id:")
out = re.sub(r"\n      - id: no_bloquea\n(?:        .*\n)+", "\n", src)
open(sys.argv[2], "w").write(out)
EOF

run() {
	local label=$1
	shift
	local s e
	s=$(date +%s.%N)
	set +e
	"$dl" grade -i "$labdir/inventory.yaml" --forks "$FORKS" --out "$work/$label.xlsx" "$@" >"$work/$label.out" 2>"$work/$label.err"
	local code=$?
	set -e
	e=$(date +%s.%N)
	local wall
	wall=$(echo "$e - $s" | bc)
	# per-host seconds from the progress lines "labN  score  (12.3s)"
	sed -n 's/.*(\([0-9.]*\)s)$/\1/p' "$work/$label.out" | sort -n >"$work/$label.times"
	local n min med max sum
	n=$(wc -l <"$work/$label.times")
	min=$(head -n 1 "$work/$label.times")
	max=$(tail -n 1 "$work/$label.times")
	med=$(sed -n "$(((n + 1) / 2))p" "$work/$label.times")
	sum=$(paste -sd+ "$work/$label.times" | bc)
	printf '%-12s exit %d  wall %6.1fs  hosts %d  per host: min %.1fs median %.1fs max %.1fs  sum %.1fs  wall/slowest %.2f  sum/wall %.1f\n' \
		"$label" "$code" "$wall" "$n" "$min" "$med" "$max" "$sum" "$(echo "$wall / $max" | bc -l)" "$(echo "$sum / $wall" | bc -l)"
	tail -n 2 "$work/$label.out" | sed 's/^/             /'
	# scores by fixture: every host of a fixture must get the same one
	for i in "${!fixtures[@]}"; do
		printf '             %-12s scores: %s\n' "${fixtures[$i]}" "$(awk -v k=${#fixtures[@]} -v i="$i" \
			'$1 ~ /^lab[0-9]+$/ { n = substr($1, 4) + 0; if ((n - 1) % k == i) print $2 }' "$work/$label.out" | sort | uniq -c | tr -s ' \n' ' ')"
	done
}
echo "deploylab grade, $HOSTS hosts, --forks $FORKS, no --active:"
run default
run noblocking --rubric "$work/noblock.yaml"
if [ "$KEEP" = 1 ]; then echo "lab left running: $labdir (stop: $dl lab stop --lab-dir $labdir)"; fi
