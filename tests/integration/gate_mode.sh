#!/usr/bin/env bash
# Gate modes. In gate mode 'transaction' a transaction takes its slot at its first
# statement and keeps it until it ends: at most max_active transactions of the service
# are in flight, their later statements never wait (no deadlock behind statements
# waiting for their locks), a session idle in a transaction keeps its slot (and
# idle_in_transaction_session_timeout gives it back), an error gives it back at the
# abort. In gate mode 'statement' (the default) a later statement of a running
# transaction is admitted past a full gate, and usher.service_status and
# usher.metrics() count it.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"

scenario_start gate-mode
"${SU[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN;
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
INSERT INTO accounts VALUES (1, 0), (2, 0);
GRANT SELECT, UPDATE ON accounts TO app;
SELECT usher.set_service('txn', max_active => 1, queue_timeout => '30s', gate_mode => 'transaction');
SELECT usher.set_service('stmt', max_active => 1, queue_timeout => '30s');
SQL
export PGUSER=app
APP=(psql -X -At -v ON_ERROR_STOP=1)
status_of() { "${SU[@]}" -c "SELECT $2 FROM usher.service_status WHERE service = '$1'"; }
# Sessions driven statement by statement through a fifo: session_open, session_send,
# session_seen, session_close (tests/harness/scenario.sh).

"${SU[@]}" -c "SELECT name, gate_mode FROM usher.published_services WHERE name IN ('txn', 'stmt') ORDER BY 1" >"$WORK/published"
assert_eq "$(tr '\n' ' ' <"$WORK/published")" "stmt|statement txn|transaction " "the gate mode is published"

# --- transaction mode: the slot is the transaction's, idle time included
session_open a txn/a
session_send a "BEGIN; SELECT 'first';"
await 10 session_seen a first
assert_eq "$(gate_of txn)" "1 0" "the transaction's first statement took the slot, and keeps it while idle in the transaction"
assert_eq "$("${SU[@]}" -c "SELECT state || ' ' || admission_state FROM usher.backends WHERE application_name = 'txn/a'")" \
  "idle in transaction active" "usher.backends shows the idle session holding its slot"
PGAPPNAME=txn/b "${APP[@]}" -c "SELECT 'b ran'" >"$WORK/b" 2>&1 &
BG_PIDS+=($!)
await 10 gate_is txn "1 1"
assert_eq "$(gate_of txn)" "1 1" "another transaction of the service waits for it"
session_send a "SELECT 'second'; SELECT 'third';"
await 10 session_seen a third
assert_eq "$(gate_of txn)" "1 1" "the transaction's later statements run at once, on its slot"
session_send a "COMMIT;"
await 10 grep -q "b ran" "$WORK/b"
assert_eq "$(cat "$WORK/b")" "b ran" "the waiting transaction runs once the first commits"
await 10 gate_is txn "0 0"
assert_eq "$(status_of txn "peak_active || ' ' || statements_past_limit_total")" "1 0" \
  "never more than max_active transactions in flight, none admitted past the limit"

# --- no deadlock: a transaction that holds row locks and the slot goes on, while a
# transaction that needs its row waits at the gate (not for the lock)
session_send a "BEGIN; UPDATE accounts SET balance = balance + 1 WHERE id = 1; SELECT 'updated';"
await 10 session_seen a updated
PGAPPNAME=txn/blocked "${APP[@]}" -c "UPDATE accounts SET balance = balance + 1 WHERE id = 1" >"$WORK/blocked" 2>&1 &
BG_PIDS+=($!)
blocked_pid=$!
await 10 gate_is txn "1 1"
assert_eq "$("${SU[@]}" -c "SELECT wait_event_type || ' ' || admission_state FROM usher.backends WHERE application_name = 'txn/blocked'")" \
  "Extension queued" "the second writer waits at the gate, not for the row lock"
session_send a "UPDATE accounts SET balance = balance + 1 WHERE id = 2; SELECT 'second write'; COMMIT;"
await 10 session_seen a "second write"
wait $blocked_pid
assert_eq "$("${SU[@]}" -c "SELECT string_agg(balance::text, ',' ORDER BY id) FROM accounts")" "2,1" \
  "the first transaction finished without waiting, then the second ran"
await 10 gate_is txn "0 0"

# --- errors: an abort gives the slot back; a savepoint rollback does not end the transaction
session_send a "BEGIN; SELECT 'in'; SELECT 1/0;"
await 10 session_seen a "division by zero"
await 10 gate_is txn "0 0"
assert_eq "$(gate_of txn)" "0 0" "a failed transaction gives its slot back at the abort, before its ROLLBACK"
session_send a "ROLLBACK; BEGIN; SAVEPOINT s; SELECT 1/0; ROLLBACK TO s; SELECT 'after savepoint';"
await 10 session_seen a "after savepoint"
assert_eq "$(gate_of txn)" "1 0" "a rolled-back savepoint keeps the transaction, and its slot"
session_send a "COMMIT; SELECT 'autocommit 1'; SELECT 'autocommit 2';"
await 10 session_seen a "autocommit 2"
await 10 gate_is txn "0 0"
assert_eq "$(gate_of txn)" "0 0" "autocommit statements each take and give back the slot, as in statement mode"
session_close a

# --- idle_in_transaction_session_timeout ends a session that sits on its slot
session_open idle txn/idle "-c idle_in_transaction_session_timeout=300"
session_send idle "BEGIN; SELECT 'holding';"
await 10 session_seen idle holding
gone() { test "$("${SU[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'txn/idle'")" = 0; }
await 10 gone
assert_eq "$("${SU[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'txn/idle'")" "0" \
  "idle_in_transaction_session_timeout ends a session idle on its slot"
assert_eq "$(gate_of txn)" "0 0" "and the slot comes back"
session_close idle

# --- statement mode: a later statement of a running transaction is admitted past the
# full gate (it may hold locks the running statements wait for), and counted

session_open c stmt/c
session_send c "BEGIN; SELECT 'in';"
await 10 session_seen c in
assert_eq "$(gate_of stmt)" "0 0" "statement mode: a session idle in a transaction holds no slot"
# A superuser session holds advisory lock 7; stmt/b's statement blocks on it, holding
# the service's one slot.
PGUSER=postgres session_open su
session_send su "SELECT pg_advisory_lock(7); SELECT 'locked';"
await 10 session_seen su locked
PGAPPNAME=stmt/b "${APP[@]}" -c "SELECT pg_advisory_lock_shared(7)" >/dev/null 2>&1 &
BG_PIDS+=($!)
lock_waiting() { test "$("${SU[@]}" -c "SELECT count(*) FROM usher.backends WHERE application_name = 'stmt/b' AND wait_event_type = 'Lock'")" = 1; }
await 10 lock_waiting
assert_eq "$(gate_of stmt)" "1 0" "another statement of the service holds the only slot"
session_send c "SELECT 'past the limit'; COMMIT;"
await 10 session_seen c "past the limit"
assert_eq "$(status_of stmt statements_past_limit_total)" "1" \
  "the transaction's later statement ran past the full gate, and statements_past_limit_total counts it"
session_send su "SELECT pg_advisory_unlock(7);"
session_close su
session_close c
await 10 gate_is stmt "0 0"
metrics=$("${SU[@]}" -c "SELECT usher.metrics()")
assert_match "$(grep '^usher_service_statements_past_limit_total{service="stmt"}' <<<"$metrics")" ' 1$' \
  "usher.metrics() exports it as usher_service_statements_past_limit_total"
assert_cmd "usher.metrics() passes promtool check metrics" promtool check metrics <<<"$metrics"
wait "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
assert_done
