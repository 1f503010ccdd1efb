#!/usr/bin/env bash
# Pipelines and COPY against their plain counterparts, in one build (bench_io), on a
# throwaway cluster of its own (pg_usher not preloaded): each round runs both modes of
# a pair, alternating which goes first, and prints their times; then the median of the
# rounds' ratios.
#   single / pipelined:  10,000 single-row INSERTs, one round trip each vs 100 a pipeline
#   batched / copy:      1,000,000 rows, multi-row INSERT (1,000 rows a statement) vs COPY
#
#   bench/client/ab_io.sh [BINARY] [ROUNDS] [PAIRS]
# Defaults: build/client-bench/bench/bench_io (bench/client/run.sh's build), 5 rounds,
# PAIRS "pipeline copy" (either alone: the COPY pair takes about a minute a round on a
# loaded 2-core machine).
set -euo pipefail
BIN=$(realpath "${1:-build/client-bench/bench/bench_io}")
source "$(dirname "$0")/ab_common.sh"
ab_setup client-bench-io 5 "$BIN" "$BIN" "${2:-}"

pair() {  # SLOW FAST: rounds of both, alternating order; the median of slow/fast
  local slow=$1 fast=$2 ratios=() a b
  for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then a=$("$BIN" "$slow"); b=$("$BIN" "$fast"); else b=$("$BIN" "$fast"); a=$("$BIN" "$slow"); fi
    ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { print a / b }')")
    echo "round $r: $slow ${a} s, $fast ${b} s, $slow / $fast = ${ratios[-1]}"
  done
  echo "median of rounds, $slow / $fast: $(median "${ratios[@]}")"
}
PAIRS=${3:-pipeline copy}
[[ $PAIRS == *pipeline* ]] && pair single pipelined
[[ $PAIRS == *copy* ]] && pair batched copy
exit 0
