#!/usr/bin/env bash
# The statement gate between services (issue 4): a noisy neighbour. Two services share
# one server at once:
#  - `reports`, a batch service: 64 clients running a heavy read-only statement (a scan
#    of pgbench_accounts, tens of ms each), max_active = cores / 2 (at least 1);
#  - `orders`, a latency-sensitive OLTP service: `pgbench -S` with 8 clients, not gated.
# Each round runs both with usher.gate = off and = on (the order alternating from round
# to round), and orders alone as the reference. Per configuration: orders TPS and p99
# latency, reports TPS, and, polled while both run, the most reports statements seen
# running at once (pg_stat_activity), the gate's count of them (usher.service_status)
# and the most parallel workers.
#
#   bench/gate/neighbours.sh [--record] [--rounds N] [--seconds S]
set -euo pipefail
BENCH_NAME="neighbours bench" SECS=20
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

REPORTS_MAX=$((CORES / 2 > 1 ? CORES / 2 : 1))
REPORTS_CLIENTS=64 ORDERS_CLIENTS=8
REPORT_SQL='SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE aid % 100 = :r;'
CLUSTER=bench-gate-neighbours
bench_start $CLUSTER max_connections=300 shared_buffers=256MB log_min_messages=fatal usher.database=postgres
eval "$(cluster_env $CLUSTER)"
"$PGBENCH" -i -s 10 -q >/dev/null 2>&1
# The clients log in as an ordinary role: superusers pass the gate. queue_timeout is
# the longest allowed, so that no reports statement times out in the queue.
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE ROLE app LOGIN" \
     -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO app" -c "CREATE EXTENSION pg_usher" \
     -c "SELECT usher.set_service('reports', max_active => $REPORTS_MAX, queue_timeout => '1 day')" \
     -c "SELECT usher.set_service('orders')" >/dev/null
printf '\\set r random(0, 99)\n%s\n' "$REPORT_SQL" >"$WORK/report.sql"

orders() {  # tag -> "tps p99_ms"
  local out
  out=$(cd "$WORK" && PGUSER=app PGAPPNAME=orders/pgbench "$PGBENCH" -n -S -c $ORDERS_CLIENTS -j 2 \
          -T "$SECS" -l --sampling-rate=0.05 --log-prefix="$1" 2>&1)
  [[ -n $(pgbench_tps "$out") ]] || { echo "$out" >&2; return 1; }
  printf '%.0f %s\n' "$(pgbench_tps "$out")" "$(p99_ms "$WORK/$1".*)"
}
# The reports load runs 1 s longer on either side of the orders run, so that orders is
# measured under load from start to end.
reports_start() {  # tag
  PGUSER=app PGAPPNAME=reports/pgbench "$PGBENCH" -n -f "$WORK/report.sql" -c $REPORTS_CLIENTS -j 2 \
    -T $((SECS + 2)) >"$WORK/$1.reports" 2>&1 &
  BG_PIDS+=($!)
}
# A superuser session polls every 50 ms: "gate_active running parallel_workers" of
# reports, running meaning active and not queued at the gate (wait event Extension).
SAMPLE="SELECT (SELECT active FROM usher.service_status WHERE service = 'reports'),
  count(*) FILTER (WHERE application_name LIKE 'reports/%' AND backend_type = 'client backend'
                   AND state = 'active' AND wait_event_type IS DISTINCT FROM 'Extension'),
  count(*) FILTER (WHERE backend_type = 'parallel worker') FROM pg_stat_activity;"
sampler_start() { watch_start "$WORK/$1.active" "$SAMPLE" -F ' '; }  # tag
# Statements of a client that pgbench left behind when its time was up may still run
# (or wait at the gate): the next run starts when they are gone.
wait_quiet() {
  until [[ $(psql -X -At -c "SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'") == 0 ]]; do
    sleep 0.2
  done
}
both() {  # gate(on|off) tag -> "orders_tps orders_p99 reports_tps most_gate_active most_running most_workers"
  set_gate $CLUSTER "$1"
  reports_start "$2"; sampler_start "$2"
  sleep 1
  local o; o=$(orders "$2")
  wait "${BG_PIDS[0]}"
  kill "${BG_PIDS[1]}"; wait "${BG_PIDS[1]}" 2>/dev/null || true
  BG_PIDS=()
  local r; r=$(pgbench_tps "$(cat "$WORK/$2.reports")")
  [[ -n $r ]] || { cat "$WORK/$2.reports" >&2; return 1; }
  wait_quiet
  printf '%s %.1f %s\n' "$o" "$r" "$(awk '{for (i = 1; i <= 3; i++) if ($i > m[i]) m[i] = $i}
    END {print m[1] + 0, m[2] + 0, m[3] + 0}' "$WORK/$2.active")"
}
alone() {  # tag -> "orders_tps orders_p99"
  set_gate $CLUSTER off
  orders "$1"
}

declare -a off on ref
log "warm-up"
both off warm >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  # The order reverses from round to round, so that drift over the run favours no side.
  if (( r % 2 )); then ref+=("$(alone ref$r)"); off+=("$(both off off$r)"); on+=("$(both on on$r)")
  else on+=("$(both on on$r)"); off+=("$(both off off$r)"); ref+=("$(alone ref$r)"); fi
  log "round $r: orders alone ${ref[-1]} | gate off ${off[-1]} | gate on ${on[-1]} (orders tps, p99 ms; reports tps, gate active, running, parallel workers)"
done

row() {  # label array-name
  local label=$1; local -n runs=$2
  local cells="" i more="– | – | – | –"
  for i in $(seq 0 $((ROUNDS - 1))); do cells+=" $(col 1 "${runs[$i]}") |"; done
  if [[ $2 != ref ]]; then
    more="$(col 3 "${runs[@]}" | mean 1) | $(col 5 "${runs[@]}" | most) | $(col 4 "${runs[@]}" | most) | $(col 6 "${runs[@]}" | most)"
    [[ $2 == off ]] && more="$(col 3 "${runs[@]}" | mean 1) | $(col 5 "${runs[@]}" | most) | – (not gated) | $(col 6 "${runs[@]}" | most)"
  fi
  echo "| $label |$cells **$(col 1 "${runs[@]}" | mean)** | $(col 2 "${runs[@]}" | mean 2) | $more |"
}
t_ref=$(col 1 "${ref[@]}" | mean) t_off=$(col 1 "${off[@]}" | mean) t_on=$(col 1 "${on[@]}" | mean)
p_ref=$(col 2 "${ref[@]}" | mean 2) p_off=$(col 2 "${off[@]}" | mean 2) p_on=$(col 2 "${on[@]}" | mean 2)
r_off=$(col 3 "${off[@]}" | mean 1) r_on=$(col 3 "${on[@]}" | mean 1)
round_heads="" round_rule=""
for i in $(seq 1 "$ROUNDS"); do round_heads+=" orders tps, round $i |"; round_rule+="--:|"; done
machine="$(machine_line)."
HEADING="## Statement gate between services: a noisy neighbour (issue 4)"
S="$HEADING

Command: \`bench/gate/neighbours.sh --rounds $ROUNDS --seconds $SECS\` (\`make bench\` runs it with --record).
One throwaway cluster preloading pg_usher (\`max_connections = 300\`, \`shared_buffers = 256MB\`,
scale 10, otherwise PostgreSQL's defaults), clients logged in as an ordinary role. Two
services at once:

- \`reports\` (\`PGAPPNAME=reports/pgbench\`): $REPORTS_CLIENTS clients of \`pgbench -n -j 2 -f\` a script
  running \`$REPORT_SQL\`
  (\`:r\` random in 0–99; a scan of the 1,000,000 rows, tens of ms alone); \`max_active = $CORES cores / 2 = $REPORTS_MAX\`,
  \`queue_timeout = 1 day\` (never fires). It runs $((SECS + 2)) s, starting 1 s before orders.
- \`orders\` (\`PGAPPNAME=orders/pgbench\`): \`pgbench -n -S -c $ORDERS_CLIENTS -j 2 -T $SECS\`, no \`max_active\`.

Each round runs both with \`usher.gate = off\` and \`on\`, and orders alone (no reports
load, gate off), the order reversed in even rounds; each run starts once the previous
run's statements are gone. orders p99 from pgbench's per-transaction log
(\`-l --sampling-rate=0.05\`), in ms, and reports tps: means of the rounds. Polled every
50 ms by a superuser while both ran, the most seen at once: reports statements running
(\`pg_stat_activity\`: active, not queued at the gate), the gate's count of them
(\`usher.service_status.active\`), and parallel workers (of reports: orders' index lookups
start none). A statement that has given its slot back shows as active in
\`pg_stat_activity\` until its result has reached the client, so \`reports running\` can
exceed the gate's count by one or two.

$machine

| configuration |$round_heads orders tps (mean) | orders p99 ms | reports tps | reports running | reports gate active | parallel workers |
|--|$round_rule--:|--:|--:|--:|--:|--:|
$(row "orders alone" ref)
$(row "orders + reports, gate off" off)
$(row "orders + reports, gate on (reports max_active $REPORTS_MAX)" on)

- orders throughput, gate on ÷ gate off: **$(ratio "$t_on" "$t_off")**; ÷ alone: gate on **$(ratio "$t_on" "$t_ref")**, gate off **$(ratio "$t_off" "$t_ref")**
- orders p99, gate on ÷ gate off: **$(ratio "$p_on" "$p_off")**; ÷ alone: gate on **$(ratio "$p_on" "$p_ref")**, gate off **$(ratio "$p_off" "$p_ref")**
- reports throughput, gate on ÷ gate off: **$(ratio "$r_on" "$r_off")**

What this shows and why: [docs/admission.md](../docs/admission.md), \"What the gate buys, and what it cannot\"."
printf '\n%s\n' "$S"
record_sections "$HEADING" "$S"
