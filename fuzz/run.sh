#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each (default 600), one after another,
# starting from the seeds (fuzz/seed.py, from tests/data) and the corpus of earlier runs
# (fuzz/corpus/<target>, kept between runs, not committed). Needs the nightly toolchain and
# cargo-fuzz (`cargo install cargo-fuzz`); with only stable, RUSTC_BOOTSTRAP=1 stands in for
# nightly. Logs: fuzz/logs/<target>.log; a crash leaves its input in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh                      # all targets, 600 s each
#   SECONDS_EACH=60 fuzz/run.sh party pdp_answer
set -euo pipefail
cd "$(dirname "$0")"
secs="${SECONDS_EACH:-600}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(authorization_header signed_token key_documents pdp_answer party)
fi
toolchain="+nightly"
if ! cargo +nightly --version >/dev/null 2>&1; then
  toolchain=""
  export RUSTC_BOOTSTRAP=1
fi
python3 seed.py
mkdir -p logs
cargo $toolchain fuzz build -O
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${secs} s"
  # -malloc_limit_mb: any single allocation above 256 MiB is reported as a finding;
  # -timeout: an input taking more than 5 s is a hang.
  if ! cargo $toolchain fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -malloc_limit_mb=256 \
      -print_final_stats=1 >"logs/$t.log" 2>&1; then
    echo "   FINDING: see fuzz/logs/$t.log and fuzz/artifacts/$t/"
    status=1
  fi
  grep -E "DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "logs/$t.log" | sed 's/^/   /' || true
  echo "   corpus: $(ls "corpus/$t" | wc -l) inputs"
done
exit $status
