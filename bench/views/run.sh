#!/usr/bin/env bash
# Views at 1,000 connections (issue 2).
#
#   bench/views/run.sh [--record] [--breakdown]
#
# Starts a throwaway cluster (max_connections raised), creates pg_usher, opens
# $CONNECTIONS client connections with bench/views/hold_connections (half of them with an
# application_name "SERVICE/worker-N", $IDLE_IN_XACT of them idle in a transaction, the
# rest idle), then times with pgbench, one client, one query per script:
#
#   SELECT * FROM pg_stat_activity     (the baseline)
#   SELECT * FROM usher.backends
#   SELECT * FROM usher.health()
#   SELECT usher.metrics()
#
# in $ROUNDS interleaved rounds (A B C D A B C D ...) of $SECONDS_PER_RUN seconds each,
# all against the same held connections. Prints a Markdown table: mean latency per query,
# ratio to pg_stat_activity, and whether each meets the targets (< 10 ms and <= 2x the
# baseline). Exit status is 0 when the run completed, whatever the verdict; set
# BENCH_STRICT=1 to exit 3 when a target is missed.
#
# --record also writes the result into the section "## Views at 1,000 connections
# (issue 2)" of bench/RESULTS.md (other sections are left as they are).
# --breakdown then times the pieces the usher queries are made of (the backend scan
# alone, pg_locks, pg_stat_replication, usher.capacity, the health() body planned each
# call vs prepared once), $BREAKDOWN_SECONDS s each, to show where the time goes.
#
# Knobs (environment): CONNECTIONS (1000), IDLE_IN_XACT (20), SECONDS_PER_RUN (8),
# ROUNDS (2), BREAKDOWN_SECONDS (3), MAX_CONNECTIONS (CONNECTIONS + 100), PG_CONFIG.
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
CONNECTIONS=${CONNECTIONS:-1000}
IDLE_IN_XACT=${IDLE_IN_XACT:-20}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-8}
ROUNDS=${ROUNDS:-2}
MAX_CONNECTIONS=${MAX_CONNECTIONS:-$((CONNECTIONS + 100))}
BREAKDOWN_SECONDS=${BREAKDOWN_SECONDS:-3}
RECORD=0
BREAKDOWN=0
ARGS=${*:+ $*}
for arg in "$@"; do
  case $arg in
    --record) RECORD=1 ;;
    --breakdown) BREAKDOWN=1 ;;
    -h|--help) sed -n '2,31p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "views bench: unknown argument $arg" >&2; exit 2 ;;
  esac
done

# shellcheck source=../../tests/harness/cluster.sh
source "$REPO_ROOT/tests/harness/cluster.sh"
PGBENCH="$PG_BIN/pgbench"
PSQL="$PG_BIN/psql"
CLUSTER=bench-views
WORK="$REPO_ROOT/build/bench-views"
mkdir -p "$WORK"
# The server runs as `postgres` when we are root; pgbench and psql run as us, which
# only needs the socket directory, not the work directory.

log() { printf '[views bench] %s\n' "$*" >&2; }

# --- the connection holder -------------------------------------------------------
HOLDER="$WORK/hold_connections"
if [[ ! -x $HOLDER || $BENCH_DIR/hold_connections.cpp -nt $HOLDER ]]; then
  log "building hold_connections"
  "${CXX:-g++}" -std=c++20 -O2 -Wall -Wextra -isystem "$("$PG_CONFIG" --includedir)" \
    "$BENCH_DIR/hold_connections.cpp" -o "$HOLDER" \
    -L"$("$PG_CONFIG" --libdir)" -lpq
fi

HOLDER_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $HOLDER_PID ]]; then
    exec 3>&- || true        # end of stdin: the holder closes everything
    for _ in $(seq 1 100); do kill -0 "$HOLDER_PID" 2>/dev/null || break; sleep 0.1; done
    kill "$HOLDER_PID" 2>/dev/null || true
    wait "$HOLDER_PID" 2>/dev/null || true
  fi
  cluster_destroy "$CLUSTER" || true
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- cluster -----------------------------------------------------------------------
cluster_destroy "$CLUSTER" 2>/dev/null || true   # leftovers of a killed run
log "starting cluster $CLUSTER (max_connections=$MAX_CONNECTIONS)"
cluster_start "$CLUSTER" "max_connections=$MAX_CONNECTIONS"
eval "$(cluster_env "$CLUSTER")"
"$PSQL" -X -q -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION pg_usher'

# --- hold the connections ----------------------------------------------------------
rm -f "$WORK/holder.in"
mkfifo "$WORK/holder.in"
log "opening $CONNECTIONS connections ($IDLE_IN_XACT idle in transaction)"
t0=$(date +%s.%N)
( ulimit -n $((CONNECTIONS + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  exec "$HOLDER" -n "$CONNECTIONS" -x "$IDLE_IN_XACT" ""
) <"$WORK/holder.in" >"$WORK/holder.out" 2>"$WORK/holder.err" &
HOLDER_PID=$!
exec 3>"$WORK/holder.in"      # the holder's stdin stays open as long as fd 3 does
rm -f "$WORK/holder.in"
for _ in $(seq 1 1200); do
  grep -q '^ready' "$WORK/holder.out" 2>/dev/null && break
  if ! kill -0 "$HOLDER_PID" 2>/dev/null; then
    log "hold_connections exited early:"; cat "$WORK/holder.err" >&2; exit 1
  fi
  sleep 0.1
done
grep -q '^ready' "$WORK/holder.out" || { log "connections not up after 120 s"; cat "$WORK/holder.err" >&2; exit 1; }
t1=$(date +%s.%N)
log "$(cat "$WORK/holder.out") after $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s"

psql_value() { "$PSQL" -X -A -t -q -v ON_ERROR_STOP=1 -c "$1"; }
# Wait until every backend has reported its state (the last ones may still be finishing
# their start-up when the holder sees the connection as ready).
for _ in $(seq 1 50); do
  held=$(psql_value "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND state IN ('idle', 'idle in transaction')")
  [[ $held -ge $CONNECTIONS ]] && break
  sleep 0.2
done
log "server sees: $(psql_value "SELECT string_agg(state || ' ' || n, ', ' ORDER BY state) FROM (SELECT state, count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY state) s")"
log "services:    $(psql_value "SELECT string_agg(service || ' ' || n, ', ' ORDER BY service) FROM (SELECT service, count(*) AS n FROM usher.backends GROUP BY service) s")"
[[ $held -ge $CONNECTIONS ]] || { log "only $held idle client backends, expected $CONNECTIONS"; exit 1; }

# --- the queries -------------------------------------------------------------------
NAMES=(pg_stat_activity backends health metrics)
declare -A SQL=(
  [pg_stat_activity]='SELECT * FROM pg_stat_activity;'
  [backends]='SELECT * FROM usher.backends;'
  [health]='SELECT * FROM usher.health();'
  [metrics]='SELECT usher.metrics();'
)
declare -A SIZE
for q in "${NAMES[@]}"; do
  printf '%s\n' "${SQL[$q]}" >"$WORK/$q.sql"
  case $q in
    metrics) SIZE[$q]="1 row, $(psql_value 'SELECT octet_length(usher.metrics())') bytes" ;;
    *) SIZE[$q]="$(psql_value "SELECT count(*) FROM (${SQL[$q]%;}) x") rows" ;;
  esac
done
log "health(): $(psql_value "SELECT string_agg(\"check\" || '=' || status, ' ' ORDER BY \"check\") FROM usher.health()")"

run_pgbench() {   # query, pgbench args... ; prints the mean latency in ms
  local q=$1; shift
  local out
  out=$("$PGBENCH" -n -c 1 -j 1 -f "$WORK/$q.sql" "$@" 2>&1) || { echo "$out" >&2; return 1; }
  sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p' <<<"$out"
}

log "warm-up"
for q in "${NAMES[@]}"; do run_pgbench "$q" -t 20 >/dev/null; done

declare -A LAT
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$ROUNDS"); do
  for q in "${NAMES[@]}"; do
    LAT[$q,$r]=$(run_pgbench "$q" -T "$SECONDS_PER_RUN")
    log "round $r  $(printf '%-17s %8.3f ms' "$q" "${LAT[$q,$r]}")"
  done
done

# --- where the time goes (optional) -----------------------------------------------
BREAKDOWN_TABLE=""
if [[ $BREAKDOWN -eq 1 ]]; then
  log "breakdown"
  PIECES=(
    'SELECT 1;|round-trip floor'
    'SELECT count(*) FROM pg_stat_activity;|pg_stat_activity, no rows sent'
    'SELECT count(*) FROM usher.backends;|usher.backends, no rows sent'
    'SELECT * FROM usher.connections;|view read by metrics()'
    'SELECT * FROM usher.capacity;|view read by metrics() (health() reads only its settings)'
    'SELECT count(*) FROM pg_locks;|read by the lock_waits check'
    'SELECT count(*) FROM pg_stat_replication;|read twice by health(), once more by metrics()'
    'SELECT count(*) FROM pg_stat_get_wal_senders();|the WAL-sender part of pg_stat_replication alone'
  )
  BREAKDOWN_TABLE="| query | note | mean (ms) |"$'\n'"|---|---|--:|"$'\n'
  i=0
  for piece in "${PIECES[@]}"; do
    i=$((i + 1)); sql=${piece%%|*}; note=${piece#*|}
    printf '%s\n' "$sql" >"$WORK/piece$i.sql"
    run_pgbench "piece$i" -t 5 >/dev/null   # server-side caches, as for the main queries
    ms=$(run_pgbench "piece$i" -T "$BREAKDOWN_SECONDS")
    log "$(printf 'piece %-52s %8.3f ms' "$sql" "$ms")"
    BREAKDOWN_TABLE+="| \`${sql%;}\` | $note | $(printf '%.3f' "$ms") |"$'\n'
  done
  # A LANGUAGE sql function that cannot be inlined is parsed, rewritten and planned on
  # every call; the same body run as a prepared statement shows what that costs.
  if [[ $(psql_value "SELECT l.lanname FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = 'usher.health()'::regprocedure") == sql ]]; then
    psql_value "SELECT prosrc FROM pg_proc WHERE oid = 'usher.health()'::regprocedure" |
      sed -e '/^[[:space:]]*--/d' -e '/^[[:space:]]*$/d' >"$WORK/health_body.sql"
    grep -q ';[[:space:]]*$' "$WORK/health_body.sql" || echo ';' >>"$WORK/health_body.sql"
    for mode in simple prepared; do
      ms=$(run_pgbench health_body -M "$mode" -T "$BREAKDOWN_SECONDS")
      log "$(printf 'piece %-52s %8.3f ms' "health() body, -M $mode" "$ms")"
      case $mode in
        simple) note='parsed, rewritten and planned every time, as the SQL function does' ;;
        prepared) note='planned once (pgbench -M prepared): execution alone' ;;
      esac
      BREAKDOWN_TABLE+="| body of \`usher.health()\`, \`-M $mode\` | $note | $(printf '%.3f' "$ms") |"$'\n'
    done
  fi
fi

# --- report ------------------------------------------------------------------------
mean() { local q=$1 s=0 r; for r in $(seq 1 "$ROUNDS"); do s=$(echo "$s + ${LAT[$q,$r]}" | bc -l); done; echo "$s / $ROUNDS" | bc -l; }
base=$(mean pg_stat_activity)
missed=0
TABLE="| query | result | $(for r in $(seq 1 "$ROUNDS"); do printf 'round %s (ms) | ' "$r"; done)mean (ms) | vs pg_stat_activity | < 10 ms | ≤ 2× |"$'\n'
TABLE+="|---|---|$(for _ in $(seq 1 "$ROUNDS"); do printf -- '--:|'; done)--:|--:|:-:|:-:|"$'\n'
for q in "${NAMES[@]}"; do
  m=$(mean "$q"); ratio=$(echo "$m / $base" | bc -l)
  rounds=""; for r in $(seq 1 "${ROUNDS}"); do rounds+="$(printf '%.3f' "${LAT[$q,$r]}") | "; done
  if [[ $q == pg_stat_activity ]]; then
    fast="—"; close="—"; label='`SELECT * FROM pg_stat_activity` (baseline)'
  else
    fast=yes; close=yes
    (( $(echo "$m < 10" | bc -l) )) || { fast=NO; missed=1; }
    (( $(echo "$ratio <= 2" | bc -l) )) || { close=NO; missed=1; }
    label="\`${SQL[$q]%;}\`"
  fi
  TABLE+="| $label | ${SIZE[$q]} | ${rounds}$(printf '%.3f' "$m") | $(printf '%.2f×' "$ratio") | $fast | $close |"$'\n'
done

CPU=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
PGV=$(psql_value 'SHOW server_version')
COMMIT=$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=$(git -C "$REPO_ROOT" status --porcelain -- extension 2>/dev/null | grep -q . && echo " (extension/ modified)" || true)
SECTION="## Views at 1,000 connections (issue 2)

Command: $([[ $ARGS == ' --record --breakdown' ]] && echo "\`make bench\`, which runs \`bench/views/run.sh$ARGS\`" || echo "\`bench/views/run.sh$ARGS\`"); it times
\`pgbench -n -c 1 -j 1 -f Q.sql -T $SECONDS_PER_RUN\` for each query in turn (pg_stat_activity,
backends, health, metrics), $ROUNDS round(s) of that, after a 20-transaction warm-up of each,
all against the same $CONNECTIONS held connections. Latency is pgbench's
\`latency average\` (one client, simple protocol, rows fetched by the client over the Unix
socket).

Set-up: throwaway cluster (\`tests/harness/cluster.sh\`, \`max_connections = $MAX_CONNECTIONS\`,
\`shared_preload_libraries = 'pg_usher'\`), \`CREATE EXTENSION pg_usher\`, then
\`bench/views/hold_connections -n $CONNECTIONS -x $IDLE_IN_XACT\` holds $CONNECTIONS client
connections: half with \`application_name\` \`SERVICE/worker-N\` over six services
(orders, billing, search, auth, reports, inventory), half with none (service \`default\`);
$IDLE_IN_XACT of them \`idle in transaction\` (BEGIN; SELECT 1), the rest \`idle\`.

Machine: $(nproc) cores, ${CPU:-unknown CPU}; PostgreSQL $PGV; commit $COMMIT$DIRTY; $(date -u +%Y-%m-%d);
load average at the start of the timed runs $LOAD (other work on the machine shows up
in the absolute figures more than in the ratios).

$TABLE
Targets: each usher query under 10 ms and within 2× of \`pg_stat_activity\`: $([[ $missed -eq 0 ]] && echo "**met**" || echo "**missed** (see the NO cells)")."
if [[ -n $BREAKDOWN_TABLE ]]; then
  SECTION+="

Where the time goes (\`--breakdown\`: the pieces, one pgbench run of $BREAKDOWN_SECONDS s each, same
connections held):

$BREAKDOWN_TABLE"
fi
if [[ $missed -ne 0 && -f $BENCH_DIR/PROFILE.md ]]; then
  SECTION+="
Profile and suggested changes: [views/PROFILE.md](views/PROFILE.md)."
fi

printf '\n%s\n' "$SECTION"

if [[ $RECORD -eq 1 ]]; then
  source "$REPO_ROOT/bench/lib/record.sh"
  record_section "## Views at 1,000 connections (issue 2)" "$SECTION"
  log "recorded in bench/RESULTS.md"
fi

if [[ $missed -ne 0 && ${BENCH_STRICT:-0} == 1 ]]; then exit 3; fi
exit 0
