#!/usr/bin/env bash
# Gate modes under multi-statement transactions (issue 9, item 3): pgbench's TPC-B
# (BEGIN; three UPDATEs, a SELECT, an INSERT; END) with 16 clients of one service at
# max_active = 2, in each gate mode, and with the gate off as the reference. Each
# configuration has a service of its own, so that peak_active (kept since server start)
# is its own. Per configuration: TPS per round and their mean, p99 latency, the most
# statements of the service seen running at once (polled: pg_stat_activity, active and
# not queued at the gate), peak_active, and how many statements were admitted past the
# limit because their transaction was already running (statements_past_limit_total).
#
#   bench/gate/modes.sh [--record] [--rounds N] [--seconds S]
set -euo pipefail
BENCH_NAME="gate modes bench" SECS=15
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh" "$@"

CLIENTS=16 MAX_ACTIVE=2 SCALE=10
LOAD_BEFORE=$(cut -d" " -f1-3 /proc/loadavg)
CLUSTER=bench-gate-modes
bench_start $CLUSTER max_connections=100 shared_buffers=256MB log_min_messages=fatal usher.database=postgres
eval "$(cluster_env $CLUSTER)"
"$PGBENCH" -i -s $SCALE -q >/dev/null 2>&1
# The clients log in as an ordinary role: superusers pass the gate. queue_timeout is
# the longest allowed, so that no statement times out in the queue.
psql -X -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE ROLE app LOGIN;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO app;
CREATE EXTENSION pg_usher;
SELECT usher.set_service('tpcb-statement', max_active => $MAX_ACTIVE, queue_timeout => '1 day', gate_mode => 'statement');
SELECT usher.set_service('tpcb-transaction', max_active => $MAX_ACTIVE, queue_timeout => '1 day', gate_mode => 'transaction');
SELECT usher.set_service('tpcb-off');
SQL

# A superuser session polls every 50 ms how many statements of the service run:
# active and not waiting at the gate (wait event type Extension).
sampler_start() {  # service tag
  watch_start "$WORK/$2.active" "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '$1/%'
    AND state = 'active' AND wait_event_type IS DISTINCT FROM 'Extension';"
}
run() {  # mode(statement|transaction|off) tag -> "tps p99_ms most_running"
  local service=tpcb-$1 out
  sampler_start "$service" "$2"
  out=$(cd "$WORK" && PGUSER=app PGAPPNAME=$service/pgbench "$PGBENCH" -n -c $CLIENTS -j 2 -T "$SECS" \
          -l --sampling-rate=0.1 --log-prefix="$2" 2>&1)
  kill "${BG_PIDS[-1]}"; wait "${BG_PIDS[-1]}" 2>/dev/null || true
  unset 'BG_PIDS[-1]'
  [[ -n $(pgbench_tps "$out") ]] || { echo "$out" >&2; return 1; }
  printf '%.0f %s %s\n' "$(pgbench_tps "$out")" "$(p99_ms "$WORK/$2".*)" \
    "$(most <"$WORK/$2.active")"
}

declare -a stmt txn off
log "warm-up"
run off warm >/dev/null
for r in $(seq 1 "$ROUNDS"); do
  # The order reverses from round to round, so that drift over the run favours no side.
  if (( r % 2 )); then off+=("$(run off off$r)"); stmt+=("$(run statement stmt$r)"); txn+=("$(run transaction txn$r)")
  else txn+=("$(run transaction txn$r)"); stmt+=("$(run statement stmt$r)"); off+=("$(run off off$r)"); fi
  log "round $r: gate off ${off[-1]} | statement ${stmt[-1]} | transaction ${txn[-1]} (tps, p99 ms, most running)"
done
status() {  # service column
  psql -X -At -c "SELECT $2 FROM usher.service_status WHERE service = '$1'"
}

row() {  # label array-name service
  local label=$1; local -n runs=$2
  local cells="" i peak="– (not gated)" past="–" waited="–"
  for i in $(seq 0 $((ROUNDS - 1))); do cells+=" $(col 1 "${runs[$i]}") |"; done
  if [[ $3 != tpcb-off ]]; then
    peak=$(status "$3" peak_active); past=$(status "$3" statements_past_limit_total)
    waited=$(status "$3" statements_waited_total)
  fi
  echo "| $label |$cells **$(col 1 "${runs[@]}" | mean)** | $(col 2 "${runs[@]}" | mean 2) | $(col 3 "${runs[@]}" | most) | $peak | $past | $waited |"
}
t_off=$(col 1 "${off[@]}" | mean) t_stmt=$(col 1 "${stmt[@]}" | mean) t_txn=$(col 1 "${txn[@]}" | mean)
p_off=$(col 2 "${off[@]}" | mean 2) p_stmt=$(col 2 "${stmt[@]}" | mean 2) p_txn=$(col 2 "${txn[@]}" | mean 2)
round_heads="" round_rule=""
for i in $(seq 1 "$ROUNDS"); do round_heads+=" tps, round $i |"; round_rule+="--:|"; done
machine="$(machine_line); load average before the run: $LOAD_BEFORE."
HEADING="## Gate modes under multi-statement transactions: TPC-B, 16 clients, max_active 2 (issue 9)"
S="$HEADING

Command: \`bench/gate/modes.sh --rounds $ROUNDS --seconds $SECS\` (\`make bench\` runs it with --record).
One throwaway cluster preloading pg_usher (\`max_connections = 100\`, \`shared_buffers = 256MB\`,
scale $SCALE), clients logged in as an ordinary role. Each run is
\`PGAPPNAME=SERVICE/pgbench pgbench -n -c $CLIENTS -j 2 -T $SECS\` (TPC-B: BEGIN, three UPDATEs,
a SELECT, an INSERT, END), each configuration with a service of its own:
\`tpcb-statement\` (\`max_active = $MAX_ACTIVE\`, \`gate_mode = 'statement'\`), \`tpcb-transaction\`
(\`max_active = $MAX_ACTIVE\`, \`gate_mode = 'transaction'\`), \`tpcb-off\` (no \`max_active\`: not
gated), \`queue_timeout = 1 day\`. The order is reversed in even rounds. p99 from pgbench's
per-transaction log (\`-l --sampling-rate=0.1\`), in ms, mean of the rounds. \"Most running\":
polled every 50 ms by a superuser, the most backends of the service active and not queued
at the gate; it also counts backends parsing a statement before they reach the gate
(parse analysis comes before planning, where the slot is taken), and those whose slot
is back but whose result has not yet reached the client, so it exceeds the gate's own
count, \`peak_active\`. \`peak_active\`, \`statements_past_limit_total\` and
\`statements_waited_total\` from \`usher.service_status\` after all rounds (the warm-up ran
ungated).

$machine

| configuration |$round_heads mean tps | p99 ms | most running | peak_active | past the limit | waited |
|--|$round_rule--:|--:|--:|--:|--:|--:|
$(row "gate off (reference)" off tpcb-off)
$(row "gate_mode 'statement', max_active $MAX_ACTIVE" stmt tpcb-statement)
$(row "gate_mode 'transaction', max_active $MAX_ACTIVE" txn tpcb-transaction)

- throughput ÷ gate off: statement **$(ratio "$t_stmt" "$t_off")**, transaction **$(ratio "$t_txn" "$t_off")**
- p99 ÷ gate off: statement **$(ratio "$p_stmt" "$p_off")**, transaction **$(ratio "$p_txn" "$p_off")**

What the modes mean: [docs/admission.md](../docs/admission.md), \"Gate modes\"."
printf '\n%s\n' "$S"
record_sections "$HEADING" "$S"
