#!/usr/bin/env bash
# What pinning search_path on a C function costs (issue 9, item 1; docs/security.md):
# a function with `SET search_path` runs through fmgr_security_definer (a GUC nest level,
# set_config_option, AtEOXact_GUC) on every call. Measured side by side on one cluster,
# alternating which variant goes first in each round:
#  * in-server: `SELECT count(usher.checkout('x')) FROM generate_series(1, N)` (psql
#    \timing), the per-call cost without the round trip;
#  * round trip: `pgbench -n -c 1 -M prepared -T S` of `SELECT usher.checkout('x')`, the
#    pool's validation query, as a client sees it.
# "unpinned" is `ALTER FUNCTION usher.checkout(text) RESET ALL`; "pinned" is as installed.
#
#   bench/search_path/run.sh [--rounds N] [--seconds S] [--calls N]
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
source "$REPO_ROOT/tests/harness/cluster.sh"
ROUNDS=3 SECS=5 CALLS=200000
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --calls) CALLS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
NAME=bench-search-path
WORK=$(mktemp -d)
trap 'cluster_destroy $NAME; rm -rf "$WORK"' EXIT
cluster_destroy $NAME
cluster_start $NAME log_min_messages=fatal >/dev/null
eval "$(cluster_env $NAME)"
psql -Xq -c "CREATE EXTENSION pg_usher"
echo "SELECT usher.checkout('x');" >"$WORK/checkout.sql"

variant() {  # pinned | unpinned
  if [[ $1 == pinned ]]; then
    psql -Xq -c "ALTER FUNCTION usher.checkout(text) SET search_path = pg_catalog, pg_temp"
  else
    psql -Xq -c "ALTER FUNCTION usher.checkout(text) RESET ALL"
  fi
}
in_server_ms() {
  psql -X -c '\timing on' -c "SELECT count(usher.checkout('x')) FROM generate_series(1, $CALLS)" |
    sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
round_trip_ms() {
  "$PG_BIN/pgbench" -n -c 1 -j 1 -M prepared -T "$SECS" -f "$WORK/checkout.sql" 2>/dev/null |
    sed -n 's/^latency average = \([0-9.]*\) ms/\1/p'
}
declare -A server trip
for round in $(seq 1 "$ROUNDS"); do
  order=(unpinned pinned); ((round % 2 == 0)) && order=(pinned unpinned)
  for v in "${order[@]}"; do
    variant "$v"
    server[$v]+=" $(in_server_ms)"
    trip[$v]+=" $(round_trip_ms)"
  done
done
mean() { awk '{s=0; for (i=1;i<=NF;i++) s+=$i; printf "%.3f", s/NF}' <<<"$1"; }
su=$(mean "${server[unpinned]}") sp=$(mean "${server[pinned]}")
tu=$(mean "${trip[unpinned]}") tp=$(mean "${trip[pinned]}")
echo "| measure | unpinned | pinned | pinned / unpinned | per call |"
echo "|---|--:|--:|--:|--:|"
echo "| in-server, $CALLS calls (ms; rounds:${server[unpinned]} /${server[pinned]}) | $su | $sp | $(awk "BEGIN{printf \"%.2f\", $sp/$su}")× | +$(awk "BEGIN{printf \"%.2f\", ($sp-$su)*1000/$CALLS}") µs |"
echo "| round trip, pgbench -c 1 (ms; rounds:${trip[unpinned]} /${trip[pinned]}) | $tu | $tp | $(awk "BEGIN{printf \"%.2f\", $tp/$tu}")× | |"
