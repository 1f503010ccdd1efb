# What the gate benchmarks (run.sh, neighbours.sh, modes.sh) share: their options and
# set-up, their clusters, a scratch folder and background processes cleaned up at exit,
# and the arithmetic and lines of their reports. A benchmark starts with
#
#   set -euo pipefail
#   BENCH_NAME="gate bench" SECS=20      # the log lines' prefix, --seconds' default
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"
#
# which sources tests/harness/cluster.sh and bench/lib/pgbench.sh, reads --record,
# --rounds N (default 3) and --seconds S into RECORD, ROUNDS and SECS, and sets
# BENCH_DIR, REPO_ROOT, PGBENCH (the server's pgbench) and CORES (nproc). Then:
#
#   WORK                        a scratch folder, removed at exit
#   BG_PIDS                     processes in the background, killed at exit
#   bench_at_exit 'CMD'         one more command for the cleanup at exit, run first
#   bench_start NAME [setting=value ...]
#                               starts the cluster NAME afresh (what an earlier run left
#                               is destroyed first) and destroys it at exit
#   log MESSAGE...              to stderr, as "[BENCH_NAME] MESSAGE"
#   watch_start FILE SQL [PSQL_ARGS...]
#                               a psql session (of $PGUSER) running SQL every 50 ms
#                               (\watch 0.05), its rows in FILE; its pid added to BG_PIDS
#   col I ROW...                field I of each ROW, one a line
#   mean [D]                    the mean of the numbers on stdin, with D decimals (0)
#   most                        the largest number on stdin (0 if none)
#   ratio A B                   A / B with 2 decimals
#   machine_line [PART...]      "Machine: N cores, CPU; PostgreSQL X[; PART...]; commit C;
#                               DATE" (the caller ends the sentence)
#   record_sections HEADING TEXT [HEADING TEXT ...]
#                               with --record (RECORD=1): each TEXT as the section HEADING
#                               of bench/RESULTS.md

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
source "$REPO_ROOT/tests/harness/cluster.sh"
source "$REPO_ROOT/bench/lib/pgbench.sh"
RECORD=0 ROUNDS=3
bench_options "$@"
PGBENCH="$PG_BIN/pgbench"
CORES=$(nproc)

BG_PIDS=()
BENCH_CLUSTERS=()
BENCH_EXIT=()
WORK=$(mktemp -d)
_bench_work=$WORK

bench_at_exit() { BENCH_EXIT+=("$1"); }

_bench_cleanup() {
  local cmd p c
  for cmd in "${BENCH_EXIT[@]}"; do eval "$cmd" || true; done
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for c in "${BENCH_CLUSTERS[@]}"; do cluster_destroy "$c"; done
  rm -rf "$_bench_work"
}
trap _bench_cleanup EXIT
trap 'exit 130' INT TERM

bench_start() {
  local name=$1; shift
  BENCH_CLUSTERS+=("$name")
  cluster_destroy "$name"
  cluster_start "$name" "$@" || exit 1
}

log() { echo "[$BENCH_NAME] $*" >&2; }

watch_start() {
  local file=$1 sql=$2; shift 2
  printf '%s\n\\watch 0.05\n' "$sql" | psql -X -At "$@" >"$file" 2>/dev/null &
  BG_PIDS+=($!)
}

col() { local i=$1; shift; printf '%s\n' "$@" | awk -v i="$i" '{print $i}'; }
mean() { awk -v d="${1:-0}" '{s+=$1; n++} END {printf "%." d "f", s/n}'; }
most() { awk '$1 > m {m = $1} END {print m + 0}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

machine_line() {
  local line part
  line="Machine: $CORES cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
  for part in "$("$PG_BIN/postgres" --version | sed 's/postgres (PostgreSQL) //')" "$@" \
              "commit $(git -C "$REPO_ROOT" rev-parse --short HEAD)" "$(date -u +%F)"; do
    line+="; $part"
  done
  echo "$line"
}

record_sections() {
  [[ $RECORD -eq 1 ]] || return 0
  source "$REPO_ROOT/bench/lib/record.sh"
  while [[ $# -ge 2 ]]; do record_section "$1" "$2"; shift 2; done
  log "recorded in bench/RESULTS.md"
}
