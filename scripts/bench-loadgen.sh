#!/usr/bin/env bash
# bench-loadgen.sh: measures loadgen against wrk, the reference, on the same
# local server for the same time: requests/s of each, the ratio loadgen/wrk,
# and each client's CPU time per request (user+sys from /usr/bin/time).
# Rounds alternate which client goes first; the summary takes medians.
#
# Goal (issue): loadgen >= 0.9x wrk's requests/s, <= 45 us of CPU per request.
#
# Environment:
#   DURATION=10      seconds per run          ROUNDS=3     rounds
#   CONNS=100        connections (-c)         THREADS=2    wrk -t, loadgen --cores
#   SERVER=go        go: a trivial net/http "Hello World!" server (built here);
#                    sumserver: payload/sumserver in parallel mode;
#                    express: needs node and `npm install express` in EXPRESS_DIR
#   URL_PATH=/       path requested           PORT=18931   server port
#   KEEPALIVE=1      loadgen -k (wrk always keeps connections alive)
# Needs: go, wrk, /usr/bin/time (apt-get install wrk time).
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100}
THREADS=${THREADS:-2}
SERVER=${SERVER:-go}
URL_PATH=${URL_PATH:-/}
PORT=${PORT:-18931}
KEEPALIVE=${KEEPALIVE:-1}
EXPRESS_DIR=${EXPRESS_DIR:-}

die() { echo "bench-loadgen: error: $*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk not found: apt-get install wrk"
[ -x /usr/bin/time ] || die "/usr/bin/time not found: apt-get install time"
GO=$(command -v go || echo /usr/local/go/bin/go)
[ -x "$GO" ] || die "go not found"

cd "$(dirname "$0")/.."
work=$(mktemp -d)
server_pid=
cleanup() {
	if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$GO" build -o "$work/loadgen" ./payload/loadgen/cmd/loadgen
case "$SERVER" in
go)
	mkdir "$work/hello"
	cat >"$work/hello/main.go" <<'EOF'
package main

import (
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("Hello World!"))
	})
	panic(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}
EOF
	printf 'module hello\n\ngo 1.22\n' >"$work/hello/go.mod"
	(cd "$work/hello" && "$GO" build -o "$work/server" .)
	PORT=$PORT "$work/server" >"$work/server.log" 2>&1 &
	server_pid=$!
	;;
sumserver)
	"$GO" build -o "$work/sumserver" ./payload/sumserver/cmd/sumserver
	"$work/sumserver" --addr 127.0.0.1 --port "$PORT" --mode parallel >"$work/server.log" 2>&1 &
	server_pid=$!
	;;
express)
	command -v node >/dev/null || die "node not found: apt-get install nodejs npm"
	[ -n "$EXPRESS_DIR" ] && [ -d "$EXPRESS_DIR/node_modules/express" ] ||
		die "set EXPRESS_DIR to a directory where 'npm install express' was run"
	cat >"$work/app.js" <<'EOF'
const express = require('express');
const app = express();
app.get('/', (req, res) => res.send('Hello World!'));
app.get('/api/:n', (req, res) => {
	let n = parseInt(req.params.n), count = 0;
	if (n > 5000000000) n = 5000000000;
	for (let i = 0; i <= n; i++) count += i;
	res.send(`Final count is ${count}`);
});
app.listen(process.env.PORT, '127.0.0.1');
EOF
	NODE_PATH="$EXPRESS_DIR/node_modules" PORT=$PORT node "$work/app.js" >"$work/server.log" 2>&1 &
	server_pid=$!
	;;
*) die "SERVER must be go, sumserver or express, got $SERVER" ;;
esac

url="http://127.0.0.1:$PORT$URL_PATH"
for _ in $(seq 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
	kill -0 "$server_pid" 2>/dev/null || die "server exited: $(cat "$work/server.log")"
	sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || die "server not listening on port $PORT"

# run_wrk / run_loadgen print "requests rps cpu_seconds errors".
run_wrk() {
	/usr/bin/time -f '%U %S' -o "$work/time" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" "$url" >"$work/wrk.out"
	local reqs rps
	reqs=$(awk '/requests in/ {print $1}' "$work/wrk.out")
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$work/wrk.out")
	[ -n "$reqs" ] && [ -n "$rps" ] || die "cannot read wrk's output: $(cat "$work/wrk.out")"
	local errs
	errs=$(awk '/Socket errors:/ { gsub(",", ""); e += $4 + $6 + $8 + $10 } /Non-2xx or 3xx/ { e += $5 } END { print e + 0 }' "$work/wrk.out")
	echo "$reqs $rps $(awk '{print $1 + $2}' "$work/time") $errs"
}
run_loadgen() {
	local k=
	[ "$KEEPALIVE" = 1 ] && k=-k
	/usr/bin/time -f '%U %S' -o "$work/time" "$work/loadgen" -q $k --cores "$THREADS" -c "$CONNS" -d "${DURATION}s" --json "$url" >"$work/lg.json"
	local reqs rps
	reqs=$(sed -n 's/^  "completed": \([0-9]*\),$/\1/p' "$work/lg.json")
	rps=$(sed -n 's/^  "rps": \([0-9.]*\),$/\1/p' "$work/lg.json")
	[ -n "$reqs" ] && [ -n "$rps" ] || die "cannot read loadgen's output: $(cat "$work/lg.json")"
	local errs
	errs=$(sed -n 's/^    "total": \([0-9]*\),$/\1/p' "$work/lg.json")
	echo "$reqs $rps $(awk '{print $1 + $2}' "$work/time") ${errs:-?}"
}

echo "server: $SERVER ($url), $CONNS connections, ${DURATION}s per run, $ROUNDS rounds, loadgen keep-alive=$KEEPALIVE, $(nproc) CPUs"
wrk -t1 -c10 -d1s "$url" >/dev/null # warm-up
printf '%-6s %-8s %10s %8s %12s %10s %14s\n' round client requests errors "requests/s" "cpu s" "cpu us/req"
: >"$work/rows"
for round in $(seq "$ROUNDS"); do
	order="wrk loadgen"
	[ $((round % 2)) = 0 ] && order="loadgen wrk"
	for client in $order; do
		read -r reqs rps cpu errs < <("run_$client")
		us=$(awk -v c="$cpu" -v n="$reqs" 'BEGIN { printf "%.1f", (n > 0) ? c * 1e6 / n : 0 }')
		printf '%-6s %-8s %10s %8s %12.0f %10s %14s\n' "$round" "$client" "$reqs" "$errs" "$rps" "$cpu" "$us"
		echo "$client $rps $us" >>"$work/rows"
	done
done

median() { sort -n | awk '{a[NR] = $1} END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
wrk_rps=$(awk '$1 == "wrk" {print $2}' "$work/rows" | median)
lg_rps=$(awk '$1 == "loadgen" {print $2}' "$work/rows" | median)
wrk_us=$(awk '$1 == "wrk" {print $3}' "$work/rows" | median)
lg_us=$(awk '$1 == "loadgen" {print $3}' "$work/rows" | median)
echo
printf '%-8s %14s %14s\n' median "requests/s" "cpu us/req"
printf '%-8s %14.0f %14.1f\n' wrk "$wrk_rps" "$wrk_us"
printf '%-8s %14.0f %14.1f\n' loadgen "$lg_rps" "$lg_us"
awk -v l="$lg_rps" -v w="$wrk_rps" -v u="$lg_us" 'BEGIN {
	r = l / w
	printf "ratio loadgen/wrk requests/s: %.2f (goal >= 0.90: %s); loadgen cpu/req %.1f us (goal <= 45: %s)\n",
		r, (r >= 0.9) ? "met" : "NOT met", u, (u <= 45) ? "met" : "NOT met"
}'
