#!/usr/bin/env bash
# Two builds of bench_transaction side by side: pool.transaction (BEGIN, SELECT 1, a
# savepoint around SELECT 1, COMMIT; 8 threads) against the same statements on raw
# libpq, each run interleaving the two, alternating which build runs first in each
# round, on one throwaway cluster of its own (pg_usher not preloaded). Prints each run's
# medians and pool / raw, and the median of the rounds' ratios per build.
#
#   bench/client/ab_transaction.sh BASELINE_BINARY CANDIDATE_BINARY [ROUNDS]
# Build a baseline as bench/client/ab_hotpath.sh says, with --target bench_transaction.
set -euo pipefail
source "$(dirname "$0")/ab_common.sh"
ab_setup client-bench-abtx 4 "$@"

run() {  # BINARY -> "pool raw" medians, transactions per second
  "$1" --benchmark_filter='BM_(Pool|Raw)Transaction/' --benchmark_min_time=1 \
    --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null |
    jq -r '[.benchmarks[] | select(.aggregate_name == "median")] |
           "\(.[] | select(.run_name | startswith("BM_PoolTransaction/")) | .items_per_second) \(.[] | select(.run_name | startswith("BM_RawTransaction/")) | .items_per_second)"'
}
base=() new=()
for ((r = 1; r <= ROUNDS; r++)); do
  if ((r % 2)); then b=$(run "$BASE"); n=$(run "$NEW"); else n=$(run "$NEW"); b=$(run "$BASE"); fi
  rb=$(awk -v s="$b" 'BEGIN { split(s, a, " "); print a[1] / a[2] }')
  rn=$(awk -v s="$n" 'BEGIN { split(s, a, " "); print a[1] / a[2] }')
  base+=("$rb") new+=("$rn")
  awk -v b="$b" -v n="$n" -v r="$r" 'BEGIN { split(b, x, " "); split(n, y, " ");
    printf "round %d: baseline pool %.0f/s raw %.0f/s = %.3f; candidate pool %.0f/s raw %.0f/s = %.3f\n",
      r, x[1], x[2], x[1] / x[2], y[1], y[2], y[1] / y[2] }'
done
mb=$(median "${base[@]}") mn=$(median "${new[@]}")
awk -v b="$mb" -v n="$mn" 'BEGIN { printf "median of rounds, pool.transaction / raw: baseline %.3f, candidate %.3f\n", b, n }'
