#!/usr/bin/env bash
# Two builds of bench_pool_hotpath side by side: acquire + release on the hot path, one
# thread, alternating which runs first in each round, on one throwaway cluster of its
# own (pg_usher not preloaded). Prints each run's median and the medians of the rounds.
#
#   bench/client/ab_hotpath.sh BASELINE_BINARY CANDIDATE_BINARY [ROUNDS]
# e.g. a baseline built from the parent commit:
#   git archive PARENT | tar -x -C /tmp/base && cmake -S /tmp/base/client -B /tmp/base/build \
#     -DCMAKE_BUILD_TYPE=Release -DUSHER_BUILD_BENCHMARKS=ON && cmake --build /tmp/base/build \
#     --target bench_pool_hotpath
set -euo pipefail
source "$(dirname "$0")/ab_common.sh"
ab_setup client-bench-ab 6 "$@"

run() {  # BINARY -> median ns of acquire+release, 1 thread
  "$1" --benchmark_filter='BM_AcquireRelease/real_time/threads:1$' --benchmark_min_time=2 \
    --benchmark_repetitions=5 --benchmark_report_aggregates_only=true --benchmark_format=json \
    2>/dev/null | jq -r '.benchmarks[] | select(.aggregate_name == "median") | .real_time'
}
base=() new=()
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then b=$(run "$BASE"); n=$(run "$NEW"); else n=$(run "$NEW"); b=$(run "$BASE"); fi
  base+=("$b") new+=("$n")
  printf 'round %d: baseline %.1f ns, candidate %.1f ns\n' "$r" "$b" "$n"
done
mb=$(median "${base[@]}") mn=$(median "${new[@]}")
awk -v b="$mb" -v n="$mn" 'BEGIN { printf "median of rounds: baseline %.1f ns, candidate %.1f ns, difference %+.1f ns (candidate / baseline %.3f)\n", b, n, n - b, n / b }'
