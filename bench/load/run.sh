#!/usr/bin/env bash
# 2,000 simulated users of the 7 services (issue 14) on libusher
# (tests/integration/tools/usher_pool_load.cpp: one pool per service, users as tasks)
# in the three modes, each measured in the same rounds, the order alternating:
#   (a) PgBouncer 1.18 in transaction mode (pools written by `usher pgbouncer-config`)
#       in front of a server with pg_usher admission on;
#   (b) per-service libusher pools direct to that server;
#   (c) the same PgBouncer configuration in front of a server without pg_usher
#       (shared_preload_libraries empty: a second cluster);
# then the noisy neighbour: the same as (a) with reporting flooding (its think time
# divided by FLOOD_DIV, FLOOD_POOL connections), with the gate (reporting max_active =
# 1) and without (max_active = 0), alternating too.
# Per run: TPS and p50/p99/p99.9 per service (the generator's lines), errors, and the
# server's CPU per transaction: user+system ticks of the postmaster and every process
# whose parent it is (backends, workers) read from /proc/PID/stat before and after,
# plus what the postmaster reaped (cutime/cstime), over the run's transactions; and
# PgBouncer's own CPU the same way.
#
#   bench/load/run.sh [--record] [--rounds N] [--seconds S]
# Environment: USERS (2000), POOL (connections per service pool, libusher's and
# PgBouncer's; 4), FLOOD_DIV (50), FLOOD_POOL (reporting's quota and PgBouncer pool, and
# its libusher pool in the flood: 24).
set -euo pipefail
BENCH_NAME="load bench" SECS=30
source "$(dirname "${BASH_SOURCE[0]}")/../gate/lib.sh" "$@"
source "$REPO_ROOT/tests/harness/pgbouncer.sh"
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
USERS=${USERS:-2000} POOL=${POOL:-4} FLOOD_DIV=${FLOOD_DIV:-50} FLOOD_POOL=${FLOOD_POOL:-24}
LOAD=$REPO_ROOT/build/tools/usher_pool_load TOOLS=$REPO_ROOT/tests/integration/tools
make --no-print-directory -s -C "$REPO_ROOT/tests/integration/tools" "$LOAD" >/dev/null
source "$REPO_ROOT/tests/harness/usher_cli.sh"
usher_cli_build >/dev/null

GATED=bench-load PLAIN=bench-load-plain BA=bench-load-pgb-a BC=bench-load-pgb-c
bench_at_exit 'bouncer_destroy $BA; bouncer_destroy $BC'
ulimit -n 8192
common=(max_connections=200 shared_buffers=128MB log_min_messages=fatal)
bench_start $GATED "${common[@]}" usher.database=postgres
USHER_PRELOAD='' bench_start $PLAIN "${common[@]}"
chmod 755 "$WORK"
for c in $GATED $PLAIN; do
  (eval "$(cluster_env "$c")"
   psql -X -q -v ON_ERROR_STOP=1 -f "$TOOLS/load_schema.sql")
done
eval "$(cluster_env $GATED)"
psql -X -q -v ON_ERROR_STOP=1 -f "$TOOLS/load_services.sql" \
  -c "SELECT usher.set_service('reporting', max_connections => $FLOOD_POOL, queue_timeout => '60s')" >/dev/null
usher_run pgbouncer-config -o "$WORK/pgbouncer.ini"
usher_run pgbouncer-config --databases-only -o "$WORK/databases-a.ini"
# Every pool POOL (at most every quota): the same pools in (a) and (c).
sed -i -E "s/ pool_size=[0-9]+/ pool_size=$POOL/; s/ min_pool_size=[0-9]+/ min_pool_size=0/;
           s/ max_db_connections=[0-9]+/ max_db_connections=$POOL/" "$WORK/databases-a.ini"
# reporting: FLOOD_POOL, its quota, for the flood (its libusher pool is POOL otherwise).
sed -i -E "/^reporting = /{s/ pool_size=[0-9]+/ pool_size=$FLOOD_POOL/; s/ max_db_connections=[0-9]+/ max_db_connections=$FLOOD_POOL/}" \
  "$WORK/databases-a.ini"
gdir=$(cluster_dir $GATED) pdir=$(cluster_dir $PLAIN)
sed "s|$gdir/|$pdir/|g; s| port=$(cat "$gdir/port") | port=$(cat "$pdir/port") |" "$WORK/databases-a.ini" \
  >"$WORK/databases-c.ini"
grep -q "port=$(cat "$pdir/port")" "$WORK/databases-c.ini" || { log "cannot point the aliases at $PLAIN"; exit 1; }
for b in a c; do
  name=$BA cluster=$GATED
  [[ $b == c ]] && name=$BC cluster=$PLAIN
  BOUNCER_BASE_CONFIG=$WORK/pgbouncer.ini BOUNCER_DATABASES_FILE=$WORK/databases-$b.ini \
    BOUNCER_USERS="postgres app" BOUNCER_NOFILE=8192 bouncer_start "$name" "$cluster"
done

# ticks PID...: user+system clock ticks of each PID and of its children (live ones from
# /proc, exited ones from the parent's cutime/cstime).
ticks() {
  local pids=" $* "
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v pids="$pids" '{
      pid = $1
      sub(/^[0-9]+ \(.*\) /, "")   # drop pid and comm: $1 is now the state, $2 the parent
      if (index(pids, " " pid " ")) t += $12 + $13 + $14 + $15
      else if (index(pids, " " $2 " ")) t += $12 + $13
    } END { print t + 0 }'
}
postmaster_of() { head -1 "$(cluster_dir "$1")/data/postmaster.pid"; }
bouncer_pid() { cat "$(bouncer_dir "$1")/pgbouncer.pid"; }
HZ=$(getconf CLK_TCK)
field() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }

# run LABEL MODE [generator options...]: one run; prints a summary line and keeps the
# generator's output in $WORK/LABEL.out.
run() {
  local label=$1 mode=$2; shift 2
  local conninfo server bouncer=
  case $mode in
    a) conninfo="host=$(bouncer_dir $BA) port=$(cat "$(bouncer_dir $BA)/port") user=app dbname=%s"
       server=$GATED bouncer=$BA; set -- "$@" --transaction-pooler ;;
    b) conninfo="host=$gdir/sock port=$(cat "$gdir/port") user=app dbname=postgres" server=$GATED ;;
    c) conninfo="host=$(bouncer_dir $BC) port=$(cat "$(bouncer_dir $BC)/port") user=app dbname=%s"
       server=$PLAIN bouncer=$BC; set -- "$@" --transaction-pooler ;;
  esac
  local pm s0 s1 b0=0 b1=0
  pm=$(postmaster_of $server)
  s0=$(ticks "$pm"); [[ -n $bouncer ]] && b0=$(ticks "$(bouncer_pid $bouncer)")
  "$LOAD" --users "$USERS" --duration "$SECS" --pool-size "$POOL" --conninfo "$conninfo" "$@" \
    >"$WORK/$label.out" 2>"$WORK/$label.err" || { cat "$WORK/$label.err" >&2; exit 1; }
  s1=$(ticks "$pm"); [[ -n $bouncer ]] && b1=$(ticks "$(bouncer_pid $bouncer)")
  local total tx errors tps
  total=$(grep '^total ' "$WORK/$label.out")
  tx=$(field tx <<<"$total") errors=$(field errors <<<"$total") tps=$(field tps <<<"$total")
  echo "$label tps $tps errors $errors server_cpu_ms_per_tx $(awk -v d=$((s1 - s0)) -v t="$tx" -v hz="$HZ" 'BEGIN {printf "%.3f", d * 1000 / hz / t}')" \
       "bouncer_cpu_ms_per_tx $(awk -v d=$((b1 - b0)) -v t="$tx" -v hz="$HZ" 'BEGIN {printf "%.3f", d * 1000 / hz / t}')" \
       | tee -a "$WORK/summary"
  sed "s/^/  $label: /" "$WORK/$label.out" | tee -a "$WORK/detail" >&2
  [[ ! -s $WORK/$label.err ]] || sed "s/^/  $label stderr: /" "$WORK/$label.err" | head -5 >&2
}

set_gate() {
  psql -X -q -At -v ON_ERROR_STOP=1 -c "SELECT usher.set_service('reporting', max_active => $1)" >/dev/null
}

for round in $(seq "$ROUNDS"); do
  if (( round % 2 )); then order="a b c"; else order="c b a"; fi
  for m in $order; do
    # (b) needs the server connections PgBouncer (a) holds under the same quotas: PAUSE
    # closes them once their transactions are done; RESUME after.
    if [[ $m == b ]]; then bouncer_admin $BA PAUSE >/dev/null; fi
    run "$m-$round" "$m"
    if [[ $m == b ]]; then bouncer_admin $BA RESUME >/dev/null; fi
  done
  if (( round % 2 )); then order="gate nogate"; else order="nogate gate"; fi
  for g in $order; do
    if [[ $g == gate ]]; then set_gate 1; else set_gate 0; fi
    run "flood-$g-$round" a --scale-service "reporting=$(awk -v d="$FLOOD_DIV" 'BEGIN {print 1 / d}')" \
      --pool-size-of "reporting=$FLOOD_POOL"
  done
  set_gate 2
done

# The report: every run; (a)/(c) per round; orders' p99 in the flood per round.
report() {
  echo "| run | TPS | errors | server CPU ms/tx | PgBouncer CPU ms/tx |"
  echo "|---|--:|--:|--:|--:|"
  awk '{ printf "| %s | %s | %s | %s | %s |\n", $1, $3, $5, $7, $9 }' "$WORK/summary"
  echo
  echo "Per service (p50 / p99 / p99.9 ms, tx):"
  echo
  echo "| run | auth | orders | payments | inventory | search | notifications | reporting |"
  echo "|---|---|---|---|---|---|---|---|"
  local l
  for l in $(awk '{print $1}' "$WORK/summary"); do
    printf '| %s |' "$l"
    grep "^  $l: service " "$WORK/detail" | awk '{ printf " %s / %s / %s (%s) |", $13, $15, $17, $7 }'
    echo
  done
  echo
  local a c
  for round in $(seq "$ROUNDS"); do
    a=$(grep "^a-$round " "$WORK/summary" | field tps) c=$(grep "^c-$round " "$WORK/summary" | field tps)
    echo "Round $round: (a)/(c) throughput $(ratio "$a" "$c");" \
         "orders p99 in the flood, with the gate / without: $(ratio \
           "$(grep "^  flood-gate-$round: service orders " "$WORK/detail" | field p99_ms)" \
           "$(grep "^  flood-nogate-$round: service orders " "$WORK/detail" | field p99_ms)")"
  done
}
report | tee "$WORK/report"
cp "$WORK/report" "$WORK/summary" "$WORK/detail" "${BENCH_OUT:-/tmp}/" 2>/dev/null || true
record_sections "Load: 2,000 users in modes (a), (b), (c) and the reporting flood (issue 14)" \
  "Command: \`bench/load/run.sh --rounds $ROUNDS --seconds $SECS\` (USERS=$USERS POOL=$POOL FLOOD_DIV=$FLOOD_DIV). $(machine_line "PgBouncer $(pgbouncer --version 2>/dev/null | head -1 | awk '{print $2}')").

$(cat "$WORK/report")"
