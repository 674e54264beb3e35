#!/usr/bin/env bash
# screenshots.sh: the README's pictures of deploylab's HTML reports, from a real
# lab run (nothing drawn by hand). It starts three lab hosts (a small class):
#   host 1: both stacks deployed (deploylab up, up --app node), benched with
#           bench --compare --short: the bench report and its charts;
#   host 2: only deploylab's Go servers;  host 3: nothing deployed;
# grades the three (the class report), takes the screenshots with headless
# Chromium into docs/img/, and stops the lab hosts.
# Run as root on Debian 12: scripts/screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

scripts/install-deps.sh --lab
command -v chromium >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
go build -o bin/deploylab ./cmd/deploylab
dl=bin/deploylab

labdir=/var/lib/deploylab/screenshots
work=$(mktemp -d /tmp/deploylab-screenshots.XXXXXX)
out=docs/img
mkdir -p "$out"
cleanup() { "$dl" lab stop --lab-dir "$labdir" >/dev/null 2>&1 || true; }
trap cleanup EXIT

"$dl" lab start --hosts 3 --variant node --lab-dir "$labdir"
inv=$("$dl" lab inventory --lab-dir "$labdir")
mapfile -t hosts < <("$dl" lab status --lab-dir "$labdir" | awk 'NR > 1 {print $1}')
[ "${#hosts[@]}" -ge 3 ] || { echo "screenshots: expected 3 lab hosts, got: ${hosts[*]}" >&2; exit 1; }

"$dl" up -i "$inv" --limit "${hosts[0]},${hosts[1]}"
"$dl" up --app node -i "$inv" --limit "${hosts[0]}"
"$dl" bench --compare --short -i "$inv" --limit "${hosts[0]}" --results-dir "$work/results" \
	--html "$work/informe.html" --charts "$work/charts"
# The class: grade exits 0, or 3 when a host needs review; both are results.
"$dl" grade -i "$inv" --results-dir "$work/results" --out "$work/notas.xlsx" --html "$work/clase.html" || [ $? = 3 ]

shot() { # shot FILE.html OUT.png WIDTH HEIGHT
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
		--disable-background-networking --disable-component-update --disable-sync \
		--hide-scrollbars --user-data-dir="$work/chromium" --window-size="$3,$4" \
		--screenshot="$2" "file://$1" >/dev/null 2>&1
	[ -s "$2" ] || { echo "screenshots: no $2" >&2; exit 1; }
	echo "screenshots: $2"
}
shot "$work/informe.html" "$out/bench-report.png" 1300 1500
shot "$work/clase.html" "$out/class-report.png" 1300 1200
blocking=$(ls "$work"/charts/*-blocking.png | head -1)
cp "$blocking" "$out/bench-blocking.png"
echo "screenshots: $out/bench-blocking.png (from $blocking)"
cp "$work/informe.html" "$out/bench-report.html"
cp "$work/clase.html" "$out/class-report.html"
echo "screenshots: the reports themselves are in $out/ too"
