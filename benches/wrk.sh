#!/usr/bin/env bash
# The layers' cost measured from outside: wrk against one server (examples/wrk_target.rs) with
# the same trivial handler on /open (no layers) and /protected (both layers; token and decision
# cached), both sent the same system-user token. The runs alternate, ROUNDS times each; the
# script prints each run (requests/s, and the server's CPU time per request from
# /proc/PID/stat) and the ratios of the medians (protected / open).
#
#   bash benches/wrk.sh          # THREADS=1 CONNECTIONS=16 DURATION=10s ROUNDS=5 WORKERS=2
#
# WORKERS is the server's number of Tokio worker threads. Installs wrk (Debian's package) if it
# is missing and apt-get can. Everything runs on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/wrk-lib.sh
source benches/wrk-lib.sh
need_wrk benches/wrk.sh
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
WORKERS=${WORKERS:-2}
target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --features test-util,axum --example wrk_target
out=$(mktemp)
WORKERS=$WORKERS "$target/release/examples/wrk_target" >"$out" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do grep -q '^TOKEN=' "$out" && break; sleep 0.1; done
addr=$(sed -n 's/^ADDR=//p' "$out")
token=$(sed -n 's/^TOKEN=//p' "$out")
[ -n "$addr" ] && [ -n "$token" ] || { echo "the server did not start" >&2; exit 1; }
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, token of ${#token} bytes, server with $WORKERS worker thread(s), $ROUNDS rounds each, alternating"
# One run: prints "<requests/s> <server CPU µs per request>".
run() { measure "$server" "$1" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $token" "http://$addr$1"; }
wrk -t1 -c4 -d2s -H "Authorization: Bearer $token" "http://$addr/open" >/dev/null
wrk -t1 -c4 -d2s -H "Authorization: Bearer $token" "http://$addr/protected" >/dev/null
open=(); protected=(); open_cpu=(); protected_cpu=()
for i in $(seq 1 "$ROUNDS"); do
  read -r o oc < <(run /open)
  read -r p pc < <(run /protected)
  [ -n "$o" ] && [ -n "$p" ] || exit 1
  echo "round $i: /open $o req/s ($oc µs CPU/request), /protected $p req/s ($pc µs CPU/request)"
  open+=("$o"); protected+=("$p"); open_cpu+=("$oc"); protected_cpu+=("$pc")
done
mo=$(median "${open[@]}"); mp=$(median "${protected[@]}")
moc=$(median "${open_cpu[@]}"); mpc=$(median "${protected_cpu[@]}")
awk -v o="$mo" -v p="$mp" 'BEGIN {printf "RATIO throughput protected / open (median requests/s): %.0f / %.0f = %.3f (target >= 0.95)\n", p, o, p/o}'
awk -v o="$moc" -v p="$mpc" 'BEGIN {printf "RATIO server CPU per request protected / open (median): %.2f / %.2f µs = %.3f (the layers: +%.2f µs)\n", p, o, p/o, p-o}'
