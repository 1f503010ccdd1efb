#!/usr/bin/env bash
# Login cost of pg_usher's admission control (issue 3): `pgbench -C -S` (a new
# connection for every transaction) against a cluster that preloads pg_usher with seven
# services registered, and against an identical cluster without pg_usher, side by side
# in one run (A B A B ...), the clients counted under a service with a quota.
#
#   bench/admission/run.sh [--record] [--rounds N] [--seconds S] [--clients C]
#
# Target: connection throughput with pg_usher >= 95% of the baseline.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
source "$REPO_ROOT/tests/harness/cluster.sh"

RECORD=0 ROUNDS=5 SECONDS_PER_RUN=10 CLIENTS=4
while [[ $# -gt 0 ]]; do
  case $1 in
    --record) RECORD=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECONDS_PER_RUN=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    *) echo "usage: $0 [--record] [--rounds N] [--seconds S] [--clients C]" >&2; exit 2 ;;
  esac
  shift
done
PGBENCH="$PG_BIN/pgbench"
log() { echo "[admission bench] $*" >&2; }

WITH=bench-admission-usher WITHOUT=bench-admission-plain
trap 'cluster_destroy $WITH; cluster_destroy $WITHOUT' EXIT
trap 'exit 130' INT TERM
cluster_destroy $WITH; cluster_destroy $WITHOUT
common=(max_connections=200 log_connections=off log_disconnections=off)
cluster_start $WITH "${common[@]}" usher.database=postgres
USHER_PRELOAD='' cluster_start $WITHOUT "${common[@]}"

# Seven services, the bench's clients in one with a quota larger than they need.
(eval "$(cluster_env $WITH)"; psql -X -q -v ON_ERROR_STOP=1 <<'SQL'
CREATE EXTENSION pg_usher;
SELECT usher.set_service('orders',    max_connections => 60, reserved_connections => 10);
SELECT usher.set_service('payments',  max_connections => 20, reserved_connections => 10);
SELECT usher.set_service('catalog',   max_connections => 30, reserved_connections => 5);
SELECT usher.set_service('admin-ui',  max_connections => 10, reserved_connections => 2);
SELECT usher.set_service('jobs',      max_connections => 10);
SELECT usher.set_service('indexer',   max_connections => 20);
SELECT usher.set_service('reporting', max_connections => 30);
SQL
)
for c in $WITH $WITHOUT; do
  (eval "$(cluster_env $c)"; "$PGBENCH" -i -s 10 -q >/dev/null 2>&1)
done

run() {  # cluster -> tps
  (eval "$(cluster_env "$1")"
   PGAPPNAME=orders/pgbench "$PGBENCH" -n -C -S -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" 2>&1) |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

declare -a with_tps without_tps
log "warm-up"
run $WITH >/dev/null; run $WITHOUT >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  # Alternate which cluster goes first, so that drift over the run favours neither.
  if (( r % 2 )); then a=$(run $WITHOUT); b=$(run $WITH); else b=$(run $WITH); a=$(run $WITHOUT); fi
  without_tps+=("$a"); with_tps+=("$b")
  log "round $r  without pg_usher $a tps   with pg_usher $b tps"
done
admitted=$(eval "$(cluster_env $WITH)"; psql -X -At -c "SELECT admitted_total FROM usher.service_status WHERE service = 'orders'")

mean() { printf '%s\n' "$@" | awk '{s+=$1} END {printf "%.1f", s/NR}'; }
m_without=$(mean "${without_tps[@]}"); m_with=$(mean "${with_tps[@]}")
ratio=$(awk -v a="$m_with" -v b="$m_without" 'BEGIN {printf "%.3f", a/b}')
met=$(awk -v r="$ratio" 'BEGIN {print (r >= 0.95) ? "met" : "missed"}')

rows=""
for i in $(seq 0 $((ROUNDS - 1))); do
  rows+="| $((i + 1)) | ${without_tps[$i]} | ${with_tps[$i]} | $(awk -v a="${with_tps[$i]}" -v b="${without_tps[$i]}" 'BEGIN {printf "%.3f", a/b}') |
"
done
SECTION="## Login admission: pgbench -C -S (issue 3)

Command: \`bench/admission/run.sh --rounds $ROUNDS --seconds $SECONDS_PER_RUN --clients $CLIENTS\` (\`make bench\` runs it with --record). Two throwaway
clusters with the same settings (\`max_connections = 200\`, \`fsync = off\`, scale 10):
one preloads pg_usher with seven services registered (orders, payments, catalog,
admin-ui, jobs, indexer, reporting; quotas and reservations as in docs/admission.md's
example), one does not load pg_usher at all. Each round runs
\`PGAPPNAME=orders/pgbench pgbench -n -C -S -c $CLIENTS -j 2 -T $SECONDS_PER_RUN\` against the
plain cluster and against the pg_usher cluster, the order alternating from round to round: every transaction opens a new
connection, which pg_usher admits under service \`orders\` (quota 60). After the run,
\`usher.service_status\` counted $admitted logins admitted for \`orders\`.

Machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); $("$PG_BIN/postgres" --version | sed 's/postgres (PostgreSQL) //'); commit $(git -C "$REPO_ROOT" rev-parse --short HEAD); $(date -u +%F).

| round | without pg_usher (tps) | with pg_usher (tps) | ratio |
|--:|--:|--:|--:|
${rows}| mean | $m_without | $m_with | **$ratio** |

Target: with pg_usher ≥ 95% of the baseline: **$met**."
printf '\n%s\n' "$SECTION"
if [[ $RECORD -eq 1 ]]; then
  source "$REPO_ROOT/bench/lib/record.sh"
  record_section "## Login admission: pgbench -C -S (issue 3)" "$SECTION"
  log "recorded in bench/RESULTS.md"
fi
