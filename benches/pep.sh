#!/usr/bin/env bash
# Loopback throughput of nginx with auth_request through altinn-pep, against nginx alone in front
# of the same API, measured with wrk in the same run (warm token, cached decision).
#
#   bash benches/pep.sh                      # DURATION=10s CONNECTIONS=32 THREADS=1 by default
#   DURATION=30s CONNECTIONS=64 bash benches/pep.sh
#
# Everything runs on 127.0.0.1: FakeMaskinporten, FakeAltinn and an echo API
# (examples/pep_fakes.rs), altinn-pep (release build) and one nginx (deploy/nginx.conf, one worker)
# with two servers: one protected by altinn-pep, one proxying to the API directly.
# Needs nginx and wrk (apt-get install -y nginx wrk).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-1}
PEP_LOG=${PEP_LOG:-info}
for tool in nginx wrk curl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "benches/pep.sh needs $tool: apt-get update && apt-get install -y nginx wrk curl" >&2
    exit 1
  }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

target=${CARGO_TARGET_DIR:-target}
cargo build --release --quiet --features pep,test-util,axum --bin altinn-pep --example pep_fakes
bin="$target/release"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until FILE has a line matching PATTERN (at most 60 s).
wait_for() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

"$bin/examples/pep_fakes" "$work/fakes" >"$work/fakes.out" 2>"$work/fakes.err" &
pids+=($!)
wait_for "$work/fakes.out" '^ALTINN_SUBSCRIPTION_KEY='
config=$(sed -n 's/^config=//p' "$work/fakes.out")
api=$(sed -n 's/^api=//p' "$work/fakes.out")
token=$(sed -n 's/^token=//p' "$work/fakes.out")
subscription_key=$(sed -n 's/^ALTINN_SUBSCRIPTION_KEY=//p' "$work/fakes.out")

ALTINN_SUBSCRIPTION_KEY=$subscription_key RUST_LOG=$PEP_LOG "$bin/altinn-pep" serve --config "$config" \
  >"$work/pep.out" 2>"$work/pep.log" &
pids+=($!)
wait_for "$work/pep.out" '^admin listening on'
pep=$(sed -n 's#^listening on http://##p' "$work/pep.out")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
protected=$(free_port)
plain=$(free_port)
mkdir -p "$work/nginx/tmp"
sed -e "s/server 127.0.0.1:8081;/server $pep;/" -e "s/server 127.0.0.1:8080;/server $api;/" \
  -e "s/listen 80;/listen 127.0.0.1:$protected;/" deploy/nginx.conf >"$work/nginx/altinn-pep.conf"
cat >"$work/nginx/nginx.conf" <<EOF
pid $work/nginx/nginx.pid;
error_log stderr warn;
worker_processes 1;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp/body;
    proxy_temp_path $work/nginx/tmp/proxy;
    fastcgi_temp_path $work/nginx/tmp/fastcgi;
    uwsgi_temp_path $work/nginx/tmp/uwsgi;
    scgi_temp_path $work/nginx/tmp/scgi;
    include $work/nginx/altinn-pep.conf;
    # The same API without altinn-pep: the baseline.
    server {
        listen 127.0.0.1:$plain;
        location / {
            proxy_set_header Host \$host;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://api;
        }
    }
}
EOF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e stderr -g 'daemon off;' 2>"$work/nginx.log" &
pids+=($!)
for _ in $(seq 600); do
  curl -s -o /dev/null "http://127.0.0.1:$plain/" && break
  sleep 0.1
done

path=/krav/923609016
# Warm: the token verified, the decision cached; both answer 200.
for port in "$protected" "$plain"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "http://127.0.0.1:$port$path")
  [ "$code" = 200 ] || { echo "warm-up on port $port answered $code" >&2; cat "$work/pep.log" >&2; exit 1; }
done
# And the protection is on: no token, no entry.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$protected$path")
[ "$code" = 401 ] || { echo "without a token the protected server answered $code" >&2; exit 1; }

run() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $token" "http://127.0.0.1:$1$path" >"$work/wrk-$2.txt"
  sed -n 's/^Requests\/sec: *//p' "$work/wrk-$2.txt"
}
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency -H 'Authorization: Bearer <token>' http://127.0.0.1:PORT$path"
alone=$(run "$plain" alone)
with=$(run "$protected" pep)
for name in alone pep; do
  echo "== $name"
  grep -E 'Latency|50%|99%|Requests/sec|Non-2xx|Socket errors' "$work/wrk-$name.txt" | sed 's/^/   /'
done
if grep -q 'Non-2xx' "$work/wrk-pep.txt" "$work/wrk-alone.txt"; then
  echo "some requests were not answered 200" >&2
  exit 1
fi
echo "nginx alone:                   $alone requests/s"
echo "nginx + auth_request + pep:    $with requests/s"
python3 -c "print(f'RATIO (with altinn-pep / alone): {float(\"$with\") / float(\"$alone\"):.2f}')"
