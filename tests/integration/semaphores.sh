#!/usr/bin/env bash
# Application semaphores with real concurrent sessions: many sessions hammering
# acquire/release never hold more than the capacity (shared memory's peak and an
# independent log of holding intervals); strict FIFO order of waiters, a large request
# not overtaken by small ones; cancel and statement_timeout during a wait; release on
# session end, pg_terminate_backend, FATAL, a vanished client (idle and while waiting);
# definitions persist across a restart; usher.max_semaphores; 55000 without preloading;
# the usher_semaphore_* figures of usher.metrics() with a holder and a waiter (promtool).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"

NAME=semaphores
scenario_start $NAME usher.max_semaphores=4
at_exit 'cluster_destroy $NAME-nopreload'
Q=(psql -X -At -v ON_ERROR_STOP=1)

"${Q[@]}" -c "CREATE EXTENSION pg_usher" >/dev/null
sem() {  # NAME COLUMNS
  "${Q[@]}" -c "SELECT $2 FROM usher.semaphores WHERE name = '$1'"
}
is() { [[ $("${Q[@]}" -c "$1") == "$2" ]]; }  # await helper: query gives value
# bg NAME SQL...: runs the statements in a background session (one psql, one backend),
# output to $WORK/NAME.out; its application_name is NAME.
bg() {
  local name=$1; shift
  local args=()
  for sql in "$@"; do args+=(-c "$sql"); done
  PGAPPNAME=$name psql -X -At "${args[@]}" >"$WORK/$name.out" 2>&1 &
  BG_PIDS+=($!)
  eval "PID_$name=$!"
}
backend_of() { "${Q[@]}" -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$1'"; }

# --- many sessions hammering: never more than the capacity
"${Q[@]}" -c "SELECT usher.set_semaphore('hammer', 3)" \
          -c "CREATE UNLOGGED TABLE hold_log (pid int, permits int, scope text, t_start timestamptz, t_end timestamptz)" >/dev/null
cat >"$WORK/xact.sql" <<'SQL'
\set p random(1, 2)
BEGIN;
SELECT usher.acquire('hammer', :p, '60s') AS ok \gset
SELECT clock_timestamp() AS t0, pg_sleep(random() * 0.004) \gset
INSERT INTO hold_log VALUES (pg_backend_pid(), :p, 'transaction', ':t0', clock_timestamp());
COMMIT;
SQL
cat >"$WORK/session.sql" <<'SQL'
\set p random(1, 3)
SELECT usher.acquire('hammer', :p, '60s', 'session') AS ok \gset
SELECT clock_timestamp() AS t0, pg_sleep(random() * 0.004) \gset
INSERT INTO hold_log VALUES (pg_backend_pid(), :p, 'session', ':t0', clock_timestamp());
SELECT usher.release('hammer', :p);
SQL
cat >"$WORK/abort.sql" <<'SQL'
BEGIN;
SELECT usher.acquire('hammer', 1, '60s') AS ok \gset
ROLLBACK;
SQL
pgbench -n -c 24 -j 4 -t 60 -f "$WORK/xact.sql@4" -f "$WORK/session.sql@4" -f "$WORK/abort.sql@1" \
  postgres >"$WORK/pgbench.log" 2>&1
transactions=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$WORK/pgbench.log")
logged=$("${Q[@]}" -c "SELECT count(*) FROM hold_log")
assert_eq "$transactions" "1440" "pgbench ran the hammer: 24 sessions × 60 runs, none failed"
overlap=$("${Q[@]}" -c "
  SELECT max(running) FROM (
    SELECT sum(delta) OVER (ORDER BY at, delta ROWS UNBOUNDED PRECEDING) AS running
      FROM (SELECT t_start AS at, permits AS delta FROM hold_log
            UNION ALL SELECT t_end, -permits FROM hold_log) events) r")
assert_match "$overlap" '^[123]$' "holding intervals logged by $logged runs never overlap beyond capacity 3 (max $overlap)"
assert_eq "$(sem hammer "peak_held <= 3")" "t" "shared memory's peak of permits held never exceeded the capacity"
assert_eq "$(sem hammer "peak_held")" "3" "and the capacity was reached (the hammer really contended)"
assert_eq "$(sem hammer "held || ' ' || waiters || ' ' || holders || ' ' || timeouts_total")" "0 0 0 0" \
  "afterwards nothing is held or queued, and no acquire timed out"
assert_eq "$(sem hammer "acquired_total")" "1440" "every run acquired once: acquired_total 1440 (rolled-back runs included)"

# --- strict FIFO: waiters are served in arrival order
"${Q[@]}" -c "SELECT usher.set_semaphore('fifo', 1)" -c "CREATE TABLE grants (who text, at timestamptz DEFAULT clock_timestamp())" >/dev/null
bg holder "SELECT usher.acquire('fifo', 1, '1s', 'session')" "SELECT pg_sleep(60)"
await 10 is "SELECT held FROM usher.semaphores WHERE name = 'fifo'" 1
for i in 1 2 3 4 5; do
  bg "fifo$i" "BEGIN" "SELECT usher.acquire('fifo', 1, '30s')" "INSERT INTO grants (who) VALUES ('w$i')" \
     "SELECT pg_sleep(0.05)" "COMMIT"
  await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'fifo'" "$i"
done
assert_eq "$("${Q[@]}" -c "SELECT wait_event_type || '/' || wait_event FROM pg_stat_activity WHERE application_name = 'fifo3'")" \
  "Extension/Extension" "a waiter shows wait event Extension in pg_stat_activity"
terminate() { "${Q[@]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$1'" >/dev/null; }
terminate holder
wait "$PID_holder" "$PID_fifo1" "$PID_fifo2" "$PID_fifo3" "$PID_fifo4" "$PID_fifo5"
assert_eq "$("${Q[@]}" -c "SELECT string_agg(who, ',' ORDER BY at) FROM grants")" "w1,w2,w3,w4,w5" \
  "5 queued sessions got the permit in the order they arrived"

# --- a large request is not overtaken by a stream of small ones
"${Q[@]}" -c "SELECT usher.set_semaphore('big', 3)" -c "TRUNCATE grants" >/dev/null
bg holder "SELECT usher.acquire('big', 2, '1s', 'session')" "SELECT pg_sleep(60)"
await 10 is "SELECT held FROM usher.semaphores WHERE name = 'big'" 2
bg large "BEGIN" "SELECT usher.acquire('big', 3, '30s')" "INSERT INTO grants (who) VALUES ('large')" "SELECT pg_sleep(0.2)" "COMMIT"
await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'big'" 1
for i in 1 2 3; do
  bg "small$i" "BEGIN" "SELECT usher.acquire('big', 1, '30s')" "INSERT INTO grants (who) VALUES ('small$i')" "COMMIT"
  await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'big'" $((i + 1))
done
assert_eq "$(sem big "available || ' ' || waiters")" "1 4" \
  "with 1 permit free, the small requests queue behind the large one instead of taking it"
terminate holder
wait "$PID_holder" "$PID_large" "$PID_small1" "$PID_small2" "$PID_small3"
assert_eq "$("${Q[@]}" -c "SELECT string_agg(who, ',' ORDER BY at) FROM grants" | cut -d, -f1)" "large" \
  "the large request is served first"
assert_eq "$(sem big "held || ' ' || waiters")" "0 0" "and then the small ones: nothing left held or queued"

# --- cancel and statement_timeout during a wait leave no waiter behind
"${Q[@]}" -c "SELECT usher.set_semaphore('gate', 1)" >/dev/null
bg holder "SELECT usher.acquire('gate', 1, '1s', 'session')" "SELECT pg_sleep(60)"
await 10 is "SELECT held FROM usher.semaphores WHERE name = 'gate'" 1
bg cancelled "SELECT usher.acquire('gate', 1, '60s')"
await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'gate'" 1
"${Q[@]}" -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'cancelled'" >/dev/null
wait "$PID_cancelled"
assert_match "$(cat "$WORK/cancelled.out")" "canceling statement due to user request" "a cancelled wait ends with the cancel error"
assert_eq "$(sem gate "held || ' ' || waiters")" "1 0" "after a cancel: no waiter left, the holder still holds"
PGOPTIONS='-c statement_timeout=300ms' bg timed "SELECT usher.acquire('gate', 1, '60s')"
wait "$PID_timed"
assert_match "$(cat "$WORK/timed.out")" "canceling statement due to statement timeout" "statement_timeout ends a wait"
assert_eq "$(sem gate "held || ' ' || waiters")" "1 0" "after statement_timeout: no waiter left"
assert_eq "$("${Q[@]}" -c "SELECT usher.acquire('gate', 1, '200ms')")" "f" "acquire's own timeout returns false"
assert_eq "$(sem gate "waiters || ' ' || timeouts_total")" "0 1" "and leaves no waiter either (one timeout counted)"

# --- a waiter terminated, or whose client vanished, leaves the queue
bg doomed "SELECT usher.acquire('gate', 1, '60s')"
await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'gate'" 1
# usher.metrics() meanwhile: gate has 1 permit held by 1 session, 1 waiter, 1 timeout.
metrics=$("${Q[@]}" -c "SELECT usher.metrics()")
assert_cmd "usher.metrics() with semaphore figures passes promtool check metrics" promtool check metrics <<<"$metrics"
assert_eq "$(grep '^usher_semaphore_[a-z_]*{semaphore="gate"} ' <<<"$metrics" | sed 's/{semaphore="gate"}//' | paste -sd ' ')" \
  "usher_semaphore_capacity 1 usher_semaphore_held 1 usher_semaphore_waiters 1 usher_semaphore_holders 1 usher_semaphore_acquired_total 1 usher_semaphore_timeouts_total 1" \
  "usher.metrics() shows gate's capacity, permit held, holder, waiter, acquire and timeout"
assert_eq "$(grep -c '^# TYPE usher_semaphore_[a-z_]* \(gauge\|counter\)$' <<<"$metrics")" "6" \
  "six usher_semaphore_* families, with TYPE lines"
assert_eq "$(grep -c '^usher_semaphore_held{' <<<"$metrics")" "4" "one sample per semaphore (big, fifo, gate, hammer)"
"${Q[@]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'doomed'" >/dev/null
await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'gate'" 0
assert_eq "$(sem gate "held || ' ' || waiters")" "1 0" "pg_terminate_backend of a waiter: it leaves the queue"
PGOPTIONS='-c client_connection_check_interval=100ms' bg vanishing "SELECT usher.acquire('gate', 1, '60s')"
await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'gate'" 1
kill -9 "$PID_vanishing"; wait "$PID_vanishing" 2>/dev/null
await 10 is "SELECT waiters FROM usher.semaphores WHERE name = 'gate'" 0
assert_eq "$(sem gate "held || ' ' || waiters")" "1 0" \
  "a waiting client that vanished (client_connection_check_interval): it leaves the queue"

# --- holders: terminated, FATAL, vanished idle client, normal logout
"${Q[@]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'holder'" >/dev/null
await 10 is "SELECT held FROM usher.semaphores WHERE name = 'gate'" 0
assert_eq "$(sem gate "held || ' ' || holders")" "0 0" "pg_terminate_backend of a session-scope holder releases its permits"

# psql reading a FIFO (session_open): the session stays open, idle, until we say otherwise.
session_open idler
session_send idler "BEGIN; SELECT usher.acquire('gate', 1, '1s'); SELECT usher.acquire('hammer', 1, '1s', 'session');"
await 10 is "SELECT held FROM usher.semaphores WHERE name = 'gate'" 1
kill -9 "${SESSION_PID[idler]}"; wait "${SESSION_PID[idler]}" 2>/dev/null  # the client vanishes; its idle backend reads EOF and exits
session_close idler
await 10 is "SELECT held FROM usher.semaphores WHERE name = 'gate'" 0
assert_eq "$(sem gate held),$(sem hammer held)" "0,0" "an idle holder whose client vanished releases both scopes' permits"

session_open fatal fatal '-c idle_in_transaction_session_timeout=1500ms'
session_send fatal "BEGIN; SELECT usher.acquire('gate', 1, '1s', 'session'); SELECT usher.acquire('hammer', 2, '1s');"
await 10 is "SELECT held FROM usher.semaphores WHERE name = 'hammer'" 2
await 10 is "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'fatal'" 0
session_send fatal "SELECT 1;"  # psql reads the FATAL when it next talks to the server
session_close fatal
wait "${SESSION_PID[fatal]}" 2>/dev/null
assert_match "$(cat "$WORK/fatal.out")" "idle-in-transaction timeout" "idle_in_transaction_session_timeout ends the session with FATAL"
assert_eq "$(sem gate held),$(sem hammer held)" "0,0" "after that FATAL both scopes' permits are released"

"${Q[@]}" -c "SELECT usher.acquire('gate', 1, '1s', 'session')" >/dev/null
assert_eq "$(sem gate "held || ' ' || holders")" "0 0" "a session-scope permit is released when the session logs out"

# --- definitions persist across a restart; usher.max_semaphores bounds them
cluster_restart $NAME
await 30 is "SELECT capacity FROM usher.semaphores WHERE name = 'hammer'" 3
assert_eq "$("${Q[@]}" -c "SELECT string_agg(name || '=' || capacity, ',' ORDER BY name) FROM usher.semaphores")" \
  "big=3,fifo=1,gate=1,hammer=3" "after a restart the definitions are published again from usher.semaphore"
assert_eq "$("${Q[@]}" -c "SHOW usher.max_semaphores")" "4" "usher.max_semaphores is read from postgresql.conf"
out=$("${Q[@]}" -v VERBOSITY=verbose -c "SELECT usher.set_semaphore('fifth', 1)" 2>&1)
assert_match "$out" 'ERROR:  54000: cannot add semaphore "fifth": 4 semaphores are defined, the limit of usher.max_semaphores' \
  "a fifth semaphore is refused with 54000"
assert_match "$out" "HINT:  Drop unused semaphores" "with a HINT"

# --- without shared_preload_libraries every semaphore function says so
USHER_PRELOAD='' cluster_start $NAME-nopreload || exit 1
(
  eval "$(cluster_env $NAME-nopreload)"
  psql -X -q -c "CREATE EXTENSION pg_usher"
  for call in "SELECT usher.acquire('x')" "SELECT usher.release('x')" "SELECT usher.set_semaphore('x', 1)" \
              "SELECT * FROM usher.semaphores"; do
    out=$(psql -X -At -v VERBOSITY=verbose -c "$call" 2>&1)
    assert_match "$out" "ERROR:  55000: usher\..* needs pg_usher in shared_preload_libraries" "$call: 55000 without preloading"
    assert_match "$out" "HINT:  Add pg_usher to shared_preload_libraries" "$call: with the HINT"
  done
  echo "$ASSERT_PASSED $ASSERT_FAILED" >"$WORK/nopreload.counts"
)
read -r p f <"$WORK/nopreload.counts"
ASSERT_PASSED=$p; ASSERT_FAILED=$f; ASSERT_NUMBER=$((p + f))

assert_done
