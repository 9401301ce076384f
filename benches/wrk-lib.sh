# Shared by benches/wrk.sh and benches/versus/run.sh (sourced, not run): wrk installed if
# missing, one measured wrk run, the median of a list.

# need_wrk SCRIPT: installs wrk (Debian's package) if it is missing and apt-get can; otherwise
# says what SCRIPT needs and exits.
need_wrk() {
  command -v wrk >/dev/null 2>&1 && return
  if command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null ||
      { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
  fi
  command -v wrk >/dev/null 2>&1 || { echo "$1 needs wrk: apt-get install -y wrk" >&2; exit 1; }
}

# measure PID LABEL WRK-ARGS...: one wrk run against the server PID; prints "<requests/s>
# <server CPU µs per request>" (the server's user + system time from /proc/PID/stat). A run
# with non-2xx answers or socket errors stops the script (named by LABEL, never by its
# arguments, which hold a token): its numbers would not compare like with like.
measure() {
  local pid=$1 label=$2 before after res
  shift 2
  before=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  res=$(wrk "$@")
  after=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  if echo "$res" | grep -q -e 'Non-2xx' -e 'Socket errors'; then
    { echo "run $label was not clean:"; echo "$res"; } >&2
    exit 1
  fi
  echo "$res" | awk -v b="$before" -v a="$after" -v t="$(getconf CLK_TCK)" '
    /requests in/ {n=$1}
    /Requests\/sec/ {r=$2}
    END {printf "%s %.2f\n", r, (a - b) / t * 1e6 / n}'
}

# median N...: the median of the numbers.
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
