#!/usr/bin/env bash
# usher::Cluster benchmarks: builds bench/client in Release (build/client-bench), starts a
# primary (synchronous_commit on) and a streaming standby of its own (bench-primary,
# bench-standby; pg_usher not preloaded: this measures the client), then
#   1. cluster.read vs a plain pool on the standby, SELECT 1 from 8 threads, interleaved
#      (the median of each; the ratio is the routing cost, target >= 0.95);
#   2. read-your-writes: USHER_BENCH_RYW (default 10000) write+read pairs through a
#      Cluster::Session while 2 threads load the standby: stale reads (must be 0) and the
#      share of reads the standby served.
#
#   bench/client/run_cluster.sh
#   USHER_BENCH_QUICK=1 bench/client/run_cluster.sh   shorter runs, for trying things out
set -euo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HARNESS=$REPO_ROOT/tests/harness/cluster.sh
BUILD=$REPO_ROOT/build/client-bench
OUT=$BUILD/results
mkdir -p "$OUT"

cmake -S "$REPO_ROOT/client" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DUSHER_BUILD_BENCHMARKS=ON \
  -DUSHER_BUILD_EXAMPLES=OFF >"$OUT/build.log" 2>&1
cmake --build "$BUILD" -j "$(nproc)" --target bench_cluster >>"$OUT/build.log" 2>&1 || { tail -n 30 "$OUT/build.log"; exit 1; }

trap '"$HARNESS" destroy bench-standby >/dev/null 2>&1; "$HARNESS" destroy bench-primary >/dev/null 2>&1' EXIT
"$HARNESS" destroy bench-standby >/dev/null 2>&1 || true
"$HARNESS" destroy bench-primary >/dev/null 2>&1 || true
USHER_PRELOAD= "$HARNESS" start bench-primary synchronous_commit=on
USHER_PRELOAD= "$HARNESS" standby bench-standby bench-primary
eval "$("$HARNESS" env bench-standby)"; export USHER_BENCH_STANDBY_PORT=$PGPORT
eval "$("$HARNESS" env bench-primary)"; export USHER_BENCH_PRIMARY_PORT=$PGPORT

if [[ ${USHER_BENCH_QUICK:-0} == 1 ]]; then MIN_TIME=0.3 REPS=5; else MIN_TIME=1 REPS=15; fi
echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "== 1. SELECT 1 from 8 threads: cluster.read (to the standby) vs a plain pool on the standby (interleaved)"
"$BUILD/bench/bench_cluster" --benchmark_report_aggregates_only=true --benchmark_format=console \
  --benchmark_out_format=json --benchmark_min_time=$MIN_TIME --benchmark_repetitions=$REPS \
  --benchmark_enable_random_interleaving=true --benchmark_out="$OUT/cluster.json"
median() {  # NAME FIELD
  jq -r --arg n "$1" --arg f "$2" \
    '.benchmarks[] | select(.run_name == $n and .aggregate_name == "median") | .[$f]' "$OUT/cluster.json"
}
cl=$(median BM_ClusterRead/real_time/threads:8 items_per_second)
po=$(median BM_PoolOnStandby/real_time/threads:8 items_per_second)
awk -v c="$cl" -v p="$po" 'BEGIN { printf "cluster.read %.0f/s, pool on the standby %.0f/s: cluster / pool = %.1f%% (target >= 95%%)\n", c, p, 100*c/p }'
echo "== 2. read-your-writes"
"$BUILD/bench/bench_cluster" --read-your-writes "${USHER_BENCH_RYW:-10000}"
