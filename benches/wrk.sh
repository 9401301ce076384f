#!/usr/bin/env bash
# The layers' cost measured from outside: wrk against one server (examples/wrk_target.rs) with
# the same trivial handler on /open (no layers) and /protected (both layers; token and decision
# cached), both sent the same system-user token. The runs alternate, ROUNDS times each; the
# script prints each run and the ratio of the medians (protected / open).
#
#   bash benches/wrk.sh                       # THREADS=1 CONNECTIONS=16 DURATION=10s ROUNDS=3
#
# Needs wrk (apt-get install -y wrk). Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null 2>&1 || { echo "benches/wrk.sh needs wrk: apt-get install -y wrk" >&2; exit 1; }
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --features test-util,axum --example wrk_target
out=$(mktemp)
"$target/release/examples/wrk_target" >"$out" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do grep -q '^TOKEN=' "$out" && break; sleep 0.1; done
addr=$(sed -n 's/^ADDR=//p' "$out")
token=$(sed -n 's/^TOKEN=//p' "$out")
[ -n "$addr" ] && [ -n "$token" ] || { echo "the server did not start" >&2; exit 1; }
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, token of ${#token} bytes, $ROUNDS rounds each, alternating"
rps() { wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $token" "http://$addr$1" | awk '/Requests\/sec/ {print $2}'; }
wrk -t1 -c4 -d2s -H "Authorization: Bearer $token" "http://$addr/open" >/dev/null
open=(); protected=()
for i in $(seq 1 "$ROUNDS"); do
  o=$(rps /open); p=$(rps /protected)
  echo "round $i: /open $o req/s, /protected $p req/s"
  open+=("$o"); protected+=("$p")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mo=$(median "${open[@]}"); mp=$(median "${protected[@]}")
awk -v o="$mo" -v p="$mp" 'BEGIN {printf "RATIO protected / open (median requests/s): %.0f / %.0f = %.3f\n", p, o, p/o}'
