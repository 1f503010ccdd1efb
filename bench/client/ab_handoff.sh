#!/usr/bin/env bash
# Two builds of the pool side by side where threads wait: acquire + release from 32
# threads on 8 connections (bench_pool_hotpath), under `perf stat` for context
# switches and futex calls per acquire; fairness at 64 threads on 4 connections
# (bench_fairness); SELECT 1 from 8 threads, pool / raw (bench_select1). Alternating
# which build runs first in each round, on one throwaway cluster of its own (pg_usher
# not preloaded). Each round also measures the machine's context-switch cost
# (`perf bench sched pipe -T`: two threads ping-ponging, two switches per op), the
# ceiling for a hand-off that needs one.
#
#   bench/client/ab_handoff.sh BASELINE_BENCH_DIR CANDIDATE_BENCH_DIR [ROUNDS]
# where each directory holds bench_pool_hotpath, bench_fairness and bench_select1, built
# as bench/client/ab_hotpath.sh says (--target bench_pool_hotpath bench_fairness
# bench_select1). Needs perf with the syscalls:sys_enter_futex tracepoint.
set -euo pipefail
source "$(dirname "$0")/ab_common.sh"
ab_setup client-bench-abho 3 "$@"
export USHER_FAIRNESS_SECONDS=${USHER_FAIRNESS_SECONDS:-5}
tmp=$(mktemp -d)
trap '"$HARNESS" destroy $AB_CLUSTER >/dev/null 2>&1; rm -rf "$tmp"' EXIT

waiters() {  # DIR -> "ops/s switches/acquire futex-calls/acquire"
  perf stat -x, -e context-switches,syscalls:sys_enter_futex -o "$tmp/stat" -- \
    "$1/bench_pool_hotpath" --benchmark_filter='BM_AcquireRelease/real_time/threads:32$' \
    --benchmark_min_time=0.5 --benchmark_format=json >"$tmp/json" 2>"$tmp/err"
  local ops acquired cs fx
  ops=$(jq -r '.benchmarks[0].items_per_second' "$tmp/json")
  acquired=$(sed -n 's/.*acquired \([0-9]*\),.*/\1/p' "$tmp/err")
  cs=$(awk -F, '$3 == "context-switches" { print $1 }' "$tmp/stat")
  fx=$(awk -F, '$3 == "syscalls:sys_enter_futex" { print $1 }' "$tmp/stat")
  awk -v o="$ops" -v a="$acquired" -v c="$cs" -v f="$fx" 'BEGIN { printf "%.0f %.3f %.3f", o, c / a, f / a }'
}
fairness() {  # DIR -> most/least served
  "$1/bench_fairness" --benchmark_format=json 2>/dev/null | jq -r '.benchmarks[0].max_min_ratio'
}
select1() {  # DIR -> pool (session_reset none) / raw, SELECT 1 from 8 threads
  "$1/bench_select1" --benchmark_filter='BM_(PoolNoReset|RawPersistent)/' --benchmark_min_time=0.5 \
    --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null |
    jq -r '[.benchmarks[] | select(.aggregate_name == "median")] |
      ((.[] | select(.run_name | startswith("BM_PoolNoReset/")) | .items_per_second) /
       (.[] | select(.run_name | startswith("BM_RawPersistent/")) | .items_per_second))'
}
switch_us() {  # the machine now: microseconds per context switch (half a ping-pong)
  perf bench sched pipe -T -l 50000 2>/dev/null | awk '/usecs\/op/ { printf "%.1f", $1 / 2 }'
}
one() {  # LABEL DIR
  local w f s
  w=$(waiters "$2") f=$(fairness "$2") s=$(select1 "$2")
  read -r ops cs fx <<<"$w"
  printf '  %-9s 32 on 8: %7.0f acquires/s, %.2f switches and %.2f futex calls per acquire; fairness 64 on 4: %.3f; SELECT 1 pool/raw: %.3f\n' \
    "$1" "$ops" "$cs" "$fx" "$f" "$s"
}
for ((r = 1; r <= ROUNDS; r++)); do
  echo "round $r: a context switch costs $(switch_us) us on this machine now"
  if ((r % 2)); then one baseline "$BASE"; one candidate "$NEW"; else one candidate "$NEW"; one baseline "$BASE"; fi
done
