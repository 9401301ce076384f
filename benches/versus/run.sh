#!/usr/bin/env bash
# altinn-systemuser vs jwt-authorizer 0.15, measured from outside with wrk: one server process
# (src/main.rs) with both sides on their own listeners, the same trivial handler, the same
# tokens from the same fake Maskinporten. Three comparisons, each as a pair of runs, ROUNDS
# times, alternating (and which side goes first alternates too):
#
#   warm, both layers   ours /ours/both        vs /jwt-authorizer, one reused token
#   warm, token only    ours /ours/token       vs /jwt-authorizer, one reused token
#   cold, token only    ours /ours/token-cold  vs /jwt-authorizer, a new token on every request
#                       (rotate.lua over TOKENS distinct tokens)
#
# Prints each run (requests/s and the server's CPU time per request, from /proc/PID/stat) and
# one RATIO line per comparison: ours / jwt-authorizer, medians of requests/s.
#
#   bash benches/versus/run.sh    # THREADS=1 CONNECTIONS=16 DURATION=10s ROUNDS=3 WORKERS=2 TOKENS=20000
#
# BASELINE=1 adds a fourth pair: /open on both listeners, the same handler without any layer
# (axum 0.8 vs axum 0.7, the servers alone).
#
# WORKERS is the server's number of Tokio worker threads (both sides share them). Builds with
# cargo in release mode (CARGO_TARGET_DIR is respected; default benches/versus/target).
# Installs wrk (Debian's package) if it is missing and apt-get can. Everything runs on 127.0.0.1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
# shellcheck source=benches/wrk-lib.sh
source "$here/../wrk-lib.sh"
need_wrk benches/versus/run.sh
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-16}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
WORKERS=${WORKERS:-2}
TOKENS=${TOKENS:-20000}
target=${CARGO_TARGET_DIR:-$here/target}
cargo build --release --quiet --bin versus-server

work=$(mktemp -d)
WORKERS=$WORKERS TOKENS=$TOKENS "$target/release/versus-server" "$work" >"$work/out" 2>"$work/err" &
server=$!
trap 'kill $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -rf "$work"' EXIT
# Signing TOKENS tokens takes a while (about a millisecond each, on every core).
for _ in $(seq 1 1200); do
  grep -q '^READY$' "$work/out" && break
  kill -0 "$server" 2>/dev/null || break
  sleep 0.25
done
if ! grep -q '^READY$' "$work/out"; then
  echo "the server did not start:" >&2
  cat "$work/out" "$work/err" >&2
  exit 1
fi
ours=$(sed -n 's/^ADDR_OURS=//p' "$work/out")
theirs=$(sed -n 's/^ADDR_JWT_AUTHORIZER=//p' "$work/out")
token=$(sed -n 's/^TOKEN=//p' "$work/token.env")
tokens_file="$work/tokens.txt"
grep '^CHECK ' "$work/out"

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION, warm token of ${#token} bytes, $(wc -l <"$tokens_file") cold tokens, server with $WORKERS worker thread(s), $ROUNDS rounds, alternating"

# One run: `run warm|cold URL` prints "<requests/s> <server CPU µs per request>".
run() {
  if [ "$1" = cold ]; then
    measure "$server" "$1 $2" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$here/rotate.lua" "$2" -- "$tokens_file" "$THREADS"
  else
    measure "$server" "$1 $2" -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -H "Authorization: Bearer $token" "$2"
  fi
}

# Warm-up: every route, both ways of sending tokens.
for url in "http://$ours/ours/both" "http://$ours/ours/token" "http://$theirs/jwt-authorizer" "http://$ours/open" "http://$theirs/open"; do
  wrk -t1 -c4 -d2s -H "Authorization: Bearer $token" "$url" >/dev/null
done
for url in "http://$ours/ours/token-cold" "http://$theirs/jwt-authorizer"; do
  wrk -t1 -c4 -d2s -s "$here/rotate.lua" "$url" -- "$tokens_file" 1 >/dev/null
done

names=(both token cold)
labels=("warm, both layers" "warm, token only" "cold, token only")
kinds=(warm warm cold)
paths=(/ours/both /ours/token /ours/token-cold)
their_paths=(/jwt-authorizer /jwt-authorizer /jwt-authorizer)
ratio_of=("ours / jwt-authorizer" "ours / jwt-authorizer" "ours / jwt-authorizer")
if [ "${BASELINE:-0}" = 1 ]; then
  # The servers alone: the same handler without any layer, axum 0.8 (ours) vs axum 0.7.
  names+=(open); labels+=("no layer (axum)"); kinds+=(warm); paths+=(/open); their_paths+=(/open)
  ratio_of+=("axum 0.8 / axum 0.7")
fi
declare -A ours_rps theirs_rps ours_cpu theirs_cpu
for i in $(seq 1 "$ROUNDS"); do
  for c in "${!names[@]}"; do
    kind=${kinds[$c]}
    if [ $((i % 2)) -eq 1 ]; then
      read -r o oc < <(run "$kind" "http://$ours${paths[$c]}")
      read -r t tc < <(run "$kind" "http://$theirs${their_paths[$c]}")
    else
      read -r t tc < <(run "$kind" "http://$theirs${their_paths[$c]}")
      read -r o oc < <(run "$kind" "http://$ours${paths[$c]}")
    fi
    [ -n "${o:-}" ] && [ -n "${t:-}" ] || exit 1
    printf 'round %s, %-17s %-16s %9s req/s (%6s µs CPU/request) | %-15s %9s req/s (%6s µs CPU/request)\n' \
      "$i" "${labels[$c]}:" "${paths[$c]}" "$o" "$oc" "${their_paths[$c]}" "$t" "$tc"
    n=${names[$c]}
    ours_rps[$n]+="$o "; theirs_rps[$n]+="$t "; ours_cpu[$n]+="$oc "; theirs_cpu[$n]+="$tc "
  done
done

for c in "${!names[@]}"; do
  n=${names[$c]}
  # shellcheck disable=SC2086 # the lists are space-separated numbers
  mo=$(median ${ours_rps[$n]}); mt=$(median ${theirs_rps[$n]})
  # shellcheck disable=SC2086
  moc=$(median ${ours_cpu[$n]}); mtc=$(median ${theirs_cpu[$n]})
  awk -v l="${labels[$c]}" -v r="${ratio_of[$c]}" -v o="$mo" -v t="$mt" -v oc="$moc" -v tc="$mtc" 'BEGIN {
    printf "RATIO %s: %s (median requests/s): %.0f / %.0f = %.3f; server CPU per request %.2f / %.2f µs = %.3f\n", l, r, o, t, o / t, oc, tc, oc / tc
  }'
done
