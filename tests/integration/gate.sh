#!/usr/bin/env bash
# The statement gate with real concurrent sessions: never more than max_active
# statements of a service run at once, the rest start in arrival order; queue_timeout,
# cancel and statement_timeout end a wait cleanly; and after every way a statement can
# end -- error, cancel, statement_timeout, pg_terminate_backend, a vanished client, a
# savepoint rollback -- no slot and no waiter is left behind.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"

scenario_start gate
"${SU[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN;
GRANT CREATE ON SCHEMA public TO app;
CREATE TABLE starts (session int, started timestamptz);
GRANT INSERT, SELECT ON starts TO app;
SELECT usher.set_service('orders', max_active => 2, queue_timeout => '30s');
SELECT usher.set_service('tight', max_active => 1, queue_timeout => '300ms');
SQL
export PGUSER=app
APP=(psql -X -At -v ON_ERROR_STOP=1)
idle_gate() { test "$(gate_of "$1")" = "0 0"; }
queued_is() { test "$("${SU[@]}" -c "SELECT queued FROM usher.service_status WHERE service = '$1'")" = "$2"; }
bg() {  # application_name, sql, output file: a session in the background
  PGAPPNAME=$1 "${APP[@]}" -c "$2" >"$3" 2>&1 &
  BG_PIDS+=($!)
}

# --- 10 sessions in a service with max_active 2: two hold the slots while eight queue
# up one after another (each seen queued before the next starts). The holders are
# cancelled; the first two waiters are admitted and then wait on an advisory lock the
# test holds, so the state "2 active, 6 queued" stays until the test lets go: no case
# depends on how fast the machine is. Then the eight run, two at a time.
queued_is_n() { test "$("${SU[@]}" -c "SELECT queued FROM usher.service_status WHERE service = 'orders'")" = "$1"; }
session_open locker locker
session_send locker "SELECT pg_advisory_lock(4242);"
session_send locker "SELECT 'locked';"
await 10 session_seen locker '^locked$'
for i in 1 2; do
  bg orders/w$i "SELECT pg_sleep(30)" "$WORK/w$i"
  await 10 gate_is orders "$i 0"
done
# started: stamped when the statement runs (after its admission), before the lock wait.
for i in $(seq 3 10); do
  bg orders/w$i "INSERT INTO starts SELECT $i, t FROM (SELECT clock_timestamp() AS t) s, LATERAL (SELECT pg_advisory_lock_shared(4242)) l" "$WORK/w$i"
  await 10 queued_is_n $((i - 2))
done
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name IN ('orders/w1', 'orders/w2')" >/dev/null
lock_waiters() {
  test "$("${SU[@]}" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242 AND NOT granted")" = "$1"
}
await 10 lock_waiters 2
assert_eq "$(gate_of orders) $("${SU[@]}" -c "SELECT count(*) FROM usher.backends WHERE service_enforced = 'orders' AND admission_state = 'active'")" \
  "2 6 2" "with the holders gone, two waiters run and six stay queued: at most 2 statements of the service active at once"
session_send locker "SELECT pg_advisory_unlock(4242);"
session_close locker
starts_done() { test "$("${SU[@]}" -c "SELECT count(*) FROM starts")" = 8; }
await 30 starts_done
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
assert_eq "$("${SU[@]}" -c "SELECT peak_active FROM usher.service_status WHERE service = 'orders'")" "2" \
  "peak_active is 2: never more than max_active"
# Two run at a time, so two admitted together may start in either order; FIFO means no
# statement starts before one that arrived two or more places ahead of it.
assert_eq "$("${SU[@]}" -c "SELECT count(*) FROM starts a JOIN starts b ON b.session >= a.session + 2 AND b.started < a.started")" "0" \
  "the waiting statements started in arrival order"
assert_eq "$(gate_of orders)" "0 0" "afterwards: no slot held, nobody queued"
assert_eq "$("${SU[@]}" -c "SELECT statements_waited_total = 8 AND wait_seconds_max > 0 FROM usher.service_status WHERE service = 'orders'")" "t" \
  "the 8 waits were counted and timed"

# --- queue_timeout (the holder runs until it is cancelled below: no case depends on
# how fast the machine is)
bg tight/holder "SELECT pg_sleep(300)" "$WORK/holder"
await 10 gate_is tight "1 0"
err=$(PGAPPNAME=tight/late "${APP[@]}" -v VERBOSITY=verbose -c "SELECT 1" 2>&1)
assert_match "$err" 'ERROR:  53000: statement queue timeout for service "tight": its 1 max_active slot\(s\) stayed busy for (0\.[3-9]|[1-9])[0-9]*\.?[0-9]* s' \
  "queue_timeout raises 53000 naming the service, max_active and the time waited"
assert_match "$err" "HINT:  Raise queue_timeout or max_active" "with a HINT"
assert_eq "$("${SU[@]}" -c "SELECT queue_timeouts_total || ' ' || queued FROM usher.service_status WHERE service = 'tight'")" "1 0" \
  "the timeout is counted and leaves no waiter"

# --- cancel during a wait
"${SU[@]}" -c "SELECT usher.set_service('tight', queue_timeout => '30s')" >/dev/null
bg tight/cancelled "SELECT 1" "$WORK/cancelled"
await 10 queued_is tight 1
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name = 'tight/cancelled'" >/dev/null
wait "${BG_PIDS[-1]}"
assert_match "$(cat "$WORK/cancelled")" "canceling statement due to user request" "cancel ends a wait with the usual error"
assert_eq "$("${SU[@]}" -c "SELECT queued FROM usher.service_status WHERE service = 'tight'")" "0" "and leaves no waiter"

# --- statement_timeout during a wait
err=$(PGAPPNAME=tight/impatient PGOPTIONS="-c statement_timeout=300" "${APP[@]}" -c "SELECT 1" 2>&1)
assert_match "$err" "canceling statement due to statement timeout" "statement_timeout ends a wait"
assert_eq "$("${SU[@]}" -c "SELECT queued FROM usher.service_status WHERE service = 'tight'")" "0" "and leaves no waiter"
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name = 'tight/holder'" >/dev/null
await 10 idle_gate tight
assert_eq "$(gate_of tight)" "0 0" "the holder's slot is back once it ends"

# --- raising max_active admits waiters at once
bg tight/holder "SELECT pg_sleep(300)" "$WORK/holder"
await 10 gate_is tight "1 0"
bg tight/waiter "SELECT 'admitted'" "$WORK/waiter"
await 10 queued_is tight 1
"${SU[@]}" -c "SELECT usher.set_service('tight', max_active => 2)" >/dev/null
await 3 grep -q admitted "$WORK/waiter"
assert_eq "$(cat "$WORK/waiter")" "admitted" "a raised max_active admits the waiting statement before the holder ends"
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name = 'tight/holder'" >/dev/null
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
"${SU[@]}" -c "SELECT usher.set_service('tight', max_active => 1)" >/dev/null

# --- every way a statement ends gives its slot back
ends=(
  "error inside the statement|SELECT 1/0"
  "statement_timeout while running|SET statement_timeout = 200; SELECT pg_sleep(2)"
  "error after a savepoint|BEGIN; SAVEPOINT s; SELECT 1/0; ROLLBACK TO s; SELECT 1; COMMIT"
  "error in a PL/pgSQL exception block, then success|DO \$\$ BEGIN PERFORM 1/0; EXCEPTION WHEN division_by_zero THEN PERFORM pg_sleep(0.1); END \$\$"
  "nested statements in a function and EXPLAIN ANALYZE take no slot|DO \$\$ BEGIN PERFORM count(*) FROM pg_class; END \$\$; EXPLAIN ANALYZE SELECT count(*) FROM pg_class"
)
for e in "${ends[@]}"; do
  PGAPPNAME=tight/ends "${APP[@]}" -c "${e#*|}" >/dev/null 2>&1
  await 10 idle_gate tight
  assert_eq "$(gate_of tight)" "0 0" "${e%%|*}: no slot or waiter left"
done
for how in cancel terminate; do
  bg tight/victim "SELECT pg_sleep(300)" "$WORK/victim"
  await 10 gate_is tight "1 0"
  "${SU[@]}" -c "SELECT pg_${how}_backend(pid) FROM usher.backends WHERE application_name = 'tight/victim'" >/dev/null
  wait "${BG_PIDS[-1]}"
  await 10 idle_gate tight
  assert_eq "$(gate_of tight)" "0 0" "pg_${how}_backend while running: no slot left"
done
bg tight/victim "SELECT pg_sleep(300)" "$WORK/victim"
await 10 gate_is tight "1 0"
bg tight/queued "SELECT 1" "$WORK/queued"
await 10 queued_is tight 1
"${SU[@]}" -c "SELECT pg_terminate_backend(pid) FROM usher.backends WHERE application_name = 'tight/queued'" >/dev/null
await 10 queued_is tight 0
assert_eq "$("${SU[@]}" -c "SELECT queued FROM usher.service_status WHERE service = 'tight'")" "0" "pg_terminate_backend of a waiter: it leaves the queue"
kill -9 "${BG_PIDS[-2]}" 2>/dev/null   # the client of the running statement vanishes
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name = 'tight/victim'" >/dev/null
await 10 idle_gate tight
assert_eq "$(gate_of tight)" "0 0" "a client that vanished mid-statement: the slot comes back"

# --- idle in transaction holds no slot; superusers and utility control are not gated
session_open idle tight/idle
session_send idle "BEGIN; SELECT 1;"
idle_in_xact() { test "$("${SU[@]}" -c "SELECT count(*) FROM usher.backends WHERE application_name = 'tight/idle' AND state = 'idle in transaction'")" = 1; }
await 10 idle_in_xact
assert_eq "$(gate_of tight)" "0 0" "a session idle in a transaction holds no slot"
before=$("${SU[@]}" -c "SELECT statements_admitted_total FROM usher.service_status WHERE service = 'tight'")
PGAPPNAME=tight/dba "${SU[@]}" -c "SELECT 1" >/dev/null
session_send idle "ROLLBACK; SET application_name = 'tight/idle-done'; SHOW application_name;"
await 10 session_seen idle "tight/idle-done"
assert_eq "$("${SU[@]}" -c "SELECT statements_admitted_total FROM usher.service_status WHERE service = 'tight'")" "$before" \
  "superusers, ROLLBACK, SET and SHOW pass without taking a slot"
session_close idle
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()

# --- no deadlock: a transaction's later statements never wait behind statements that
# wait for its locks. A writes a row and stays in its transaction; B takes tight's only
# slot and waits for A's row lock; A's next statement must still run.
"${SU[@]}" -c "CREATE TABLE accounts (id int PRIMARY KEY, balance int)" -c "INSERT INTO accounts VALUES (1, 0), (2, 0)" \
           -c "GRANT SELECT, UPDATE ON accounts TO app" -c "SELECT usher.set_service('tight', queue_timeout => '30s')" >/dev/null
session_open writer tight/writer
session_send writer "BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = 1; SELECT 'updated';"
await 10 session_seen writer updated
bg tight/blocked "UPDATE accounts SET balance = balance + 1 WHERE id = 1" "$WORK/blocked"
lock_waiting() { test "$("${SU[@]}" -c "SELECT count(*) FROM usher.backends WHERE application_name = 'tight/blocked' AND wait_event_type = 'Lock' AND admission_state = 'active'")" = 1; }
await 10 lock_waiting
session_send writer "UPDATE accounts SET balance = balance + 1 WHERE id = 2; SELECT 'second'; COMMIT;"
await 20 session_seen writer second
assert_match "$(cat "$WORK/writer.out")" "second" "the writer's next statement runs although the blocked statement holds the only slot"
session_close writer
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
assert_eq "$("${SU[@]}" -c "SELECT balance FROM accounts WHERE id = 1")" "2" "and the blocked statement completes after the writer commits"
await 10 idle_gate tight
assert_eq "$(gate_of tight)" "0 0" "no slot or waiter left"

# --- a server-wide limit: waiters go by their service's priority, then arrival
"${SU[@]}" >/dev/null <<'SQL'
SELECT usher.set_service('low', priority => 0, queue_timeout => '30s');
SELECT usher.set_service('high', priority => 10, queue_timeout => '30s');
ALTER SYSTEM SET usher.max_active_total = 1;
SELECT pg_reload_conf();
TRUNCATE starts;
SQL
sleep 0.5
server_queued() { test "$("${SU[@]}" -c "SELECT count(*) FROM usher.backends WHERE admission_state = 'queued'")" = "$1"; }
bg low/holder "SELECT pg_sleep(30)" "$WORK/holder"
await 10 gate_is low "1 0"
n=0
for who in low/first low/second high/late; do
  n=$((n + 1))
  bg $who "INSERT INTO starts SELECT $n, clock_timestamp()" "$WORK/prio$n"
  await 10 server_queued $n
done
# All three wait behind the holder; ending it lets them in one at a time.
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name = 'low/holder'" >/dev/null
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
assert_eq "$("${SU[@]}" -c "SELECT string_agg(session::text, ',' ORDER BY started) FROM starts")" "3,1,2" \
  "at usher.max_active_total, the higher-priority service's statement goes first, then arrival order"
bg low/holder "SELECT pg_sleep(300)" "$WORK/holder"
await 10 gate_is low "1 0"
"${SU[@]}" -c "SELECT usher.set_service('low', queue_timeout => '200ms')" >/dev/null
err=$(PGAPPNAME=low/late "${APP[@]}" -v VERBOSITY=verbose -c "SELECT 1" 2>&1)
assert_match "$err" "ERROR:  53000: statement queue timeout for service \"low\": the server's 1 usher.max_active_total slot\(s\) stayed busy" \
  "a wait at the server's gate times out with its own message"
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name = 'low/holder'" >/dev/null
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
await 10 idle_gate low
assert_eq "$(gate_of low) $(gate_of high)" "0 0 0 0" "no slot or waiter left at either gate"
# Raising the server's limit admits a waiter at the reload, not at the holder's end.
"${SU[@]}" -c "SELECT usher.set_service('low', queue_timeout => '30s')" >/dev/null
bg low/holder "SELECT pg_sleep(30)" "$WORK/holder"
await 10 gate_is low "1 0"
bg high/waiter "SELECT 'admitted'" "$WORK/waiter"
await 10 server_queued 1
"${SU[@]}" -c "ALTER SYSTEM SET usher.max_active_total = 2" -c "SELECT pg_reload_conf()" >/dev/null
await 5 grep -q admitted "$WORK/waiter"
assert_eq "$(cat "$WORK/waiter")" "admitted" "a raised usher.max_active_total admits the waiting statement before the holder ends"
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM usher.backends WHERE application_name = 'low/holder'" >/dev/null
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
await 10 idle_gate low
"${SU[@]}" -c "ALTER SYSTEM RESET usher.max_active_total" -c "SELECT pg_reload_conf()" >/dev/null

# --- the gate in usher.metrics(): gauges, counters and a wait-time histogram
metrics=$("${SU[@]}" -c "SELECT usher.metrics()")
assert_cmd "usher.metrics() with gate figures passes promtool check metrics" promtool check metrics <<<"$metrics"
assert_match "$(grep '^usher_gate_wait_seconds_count{service="orders"}' <<<"$metrics")" ' 10$' \
  "the histogram counts the 10 statements of orders (2 holders, 8 that waited)"
assert_match "$(grep '^usher_gate_wait_seconds_bucket{service="orders",le="+Inf"}' <<<"$metrics")" ' 10$' \
  "its +Inf bucket holds them all"
assert_match "$(grep '^usher_service_queue_timeouts_total{service="tight"}' <<<"$metrics")" ' [1-9][0-9]*$' \
  "queue timeouts are exported"
assert_done
