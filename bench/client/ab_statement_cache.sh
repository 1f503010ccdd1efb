#!/usr/bin/env bash
# bench_statement_cache in ROUNDS runs on a throwaway cluster of its own (pg_usher not
# preloaded): each run interleaves cached and uncached in random order, 5 repetitions
# of each (--benchmark_enable_random_interleaving), so drift hits both alike. Prints
# each round's medians and cached / uncached, and the median of the rounds' ratios.
#
#   bench/client/ab_statement_cache.sh BINARY [ROUNDS]
set -euo pipefail
source "$(dirname "$0")/ab_common.sh"
BIN=${1:?bench_statement_cache binary}
ab_setup client-bench-stmt 4 "$BIN" "$BIN" "${2:-4}"  # one binary: both sides in each run

run() {  # -> "cached uncached" medians, statements per second
  "$BIN" --benchmark_filter='BM_Pk(Cached|Uncached)' --benchmark_min_time=1 \
    --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true \
    --benchmark_report_aggregates_only=true --benchmark_format=json 2>/dev/null |
    jq -r '[.benchmarks[] | select(.aggregate_name == "median")] |
           "\(.[] | select(.run_name | startswith("BM_PkCached/")) | .items_per_second) \(.[] | select(.run_name | startswith("BM_PkUncached/")) | .items_per_second)"'
}
ratios=()
for ((r = 1; r <= ROUNDS; r++)); do
  m=$(run)
  ratio=$(awk -v s="$m" 'BEGIN { split(s, a, " "); print a[1] / a[2] }')
  ratios+=("$ratio")
  awk -v s="$m" -v r="$r" 'BEGIN { split(s, a, " ");
    printf "round %d: cached %.0f/s uncached %.0f/s = %.3f\n", r, a[1], a[2], a[1] / a[2] }'
done
echo "median of rounds, cached / uncached: $(median "${ratios[@]}")"
