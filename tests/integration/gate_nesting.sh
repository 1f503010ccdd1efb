#!/usr/bin/env bash
# The statement gate's slot belongs to the top-level statement from the moment it is
# first taken until that statement ends, whatever runs inside it. With max_active = 1,
# a statement whose planning or execution runs inner queries (a function the planner
# evaluates, a function in the target list, a procedure that commits inside CALL, a
# WITH HOLD cursor's query run at COMMIT, a fast-path function call) holds the one slot
# throughout: a second statement of the service queues until the first ends.
#
# Each case is made deterministic with an advisory lock: a superuser holds lock 7, the
# statement under test blocks on it inside its first inner query; a second session
# queues; the lock is released; the statement's last inner query reports what the gate
# saw then ("active/queued"): 1/1 when the slot was kept, 2/0 when an inner query gave
# it back (the waiter was let in, and the next inner query took a second slot).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
TOOLS=$HERE/../../build/tools
make --no-print-directory -s -C "$HERE/tools" || exit 1
source "$HERE/../harness/scenario.sh"

scenario_start gate-nesting
"${SU[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN IN ROLE pg_monitor;   -- pg_monitor: the probes read usher.service_status
GRANT CREATE ON SCHEMA public TO app;
SELECT usher.set_service('one', max_active => 1, queue_timeout => '30s');
SQL
export PGUSER=app
APP=(psql -X -At -v ON_ERROR_STOP=1)
"${APP[@]}" >/dev/null <<'SQL'
-- Three inner queries: the first blocks while lock 7 is held elsewhere, the last
-- reports the gate of service "one" as active/queued. The session's first report is
-- kept in probe.first (the planner and the executor may both call a probe).
CREATE FUNCTION probe_body() RETURNS text LANGUAGE plpgsql AS $$
DECLARE seen text;
BEGIN
  PERFORM pg_advisory_lock_shared(7);
  PERFORM pg_advisory_unlock_shared(7);
  SELECT active || '/' || queued INTO seen FROM usher.service_status WHERE service = 'one';
  IF coalesce(current_setting('probe.first', true), '') = '' THEN
    PERFORM set_config('probe.first', seen, false);
  END IF;
  RETURN seen;
END $$;
CREATE TABLE words AS SELECT 'x'::text AS w;
-- The planner evaluates an IMMUTABLE function with constant arguments while it
-- plans, and a STABLE one when it estimates a condition's selectivity.
CREATE FUNCTION probe_immutable() RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN probe_body(); END $$;
CREATE FUNCTION probe_stable() RETURNS text LANGUAGE plpgsql STABLE AS $$ BEGIN RETURN probe_body(); END $$;
CREATE FUNCTION probe_volatile() RETURNS text LANGUAGE plpgsql VOLATILE AS $$ BEGIN RETURN probe_body(); END $$;
CREATE TABLE seen (how text, gate text);
-- Blocks before its commit; reports the gate after it.
CREATE PROCEDURE commits_inside() LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_lock_shared(7);
  PERFORM pg_advisory_unlock_shared(7);
  COMMIT;
  INSERT INTO seen SELECT 'call', active || '/' || queued FROM usher.service_status WHERE service = 'one';
END $$;
SQL

blocked_on_lock() {
  test "$("${SU[@]}" -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'one/$1' AND wait_event_type = 'Lock'")" = 1
}
# The superuser session that holds lock 7, driven through a fifo.
PGUSER=postgres session_open holder
lock_count() { test "$("${SU[@]}" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 7 AND mode = 'ExclusiveLock' AND granted")" = "$1"; }

# run_case NAME COMMAND...: COMMAND runs as one/NAME in the background while lock 7 is
# held; once it blocks, a second session one/second-NAME must queue behind it; then the
# lock is released and both finish.
run_case() {
  local name=$1; shift
  session_send holder "SELECT pg_advisory_lock(7);"
  await 10 lock_count 1
  PGAPPNAME=one/$name "$@" >"$WORK/$name" 2>&1 &
  local first=$!
  await 10 blocked_on_lock "$name"
  assert_eq "$(gate_of one)" "1 0" "$name: blocked inside its inner query, the statement holds the one slot"
  PGAPPNAME=one/second-$name "${APP[@]}" -c "SELECT 'second ran'" >"$WORK/second-$name" 2>&1 &
  local second=$!
  await 10 gate_is one "1 1"
  assert_eq "$(gate_of one)" "1 1" "$name: a second statement of the service queues behind it"
  session_send holder "SELECT pg_advisory_unlock(7);"
  wait $first; wait $second
  await 10 gate_is one "0 0"
  assert_eq "$(cat "$WORK/second-$name")" "second ran" "$name: the second statement runs once the first has ended"
  assert_eq "$(gate_of one)" "0 0" "$name: afterwards no slot is held and nobody waits"
}

run_case planner-immutable "${APP[@]}" -c "SELECT probe_immutable()"
assert_eq "$(cat "$WORK/planner-immutable")" "1/1" \
  "an IMMUTABLE function the planner evaluates: its inner queries keep the slot, the second statement still waits"
run_case planner-stable "${APP[@]}" -c "SELECT count(*) FROM words WHERE w < probe_stable()" -c "SELECT current_setting('probe.first')"
assert_eq "$(tail -1 "$WORK/planner-stable")" "1/1" \
  "a STABLE function the planner evaluates for a selectivity estimate: the slot is kept throughout"
run_case target-list "${APP[@]}" -c "SELECT probe_volatile()"
assert_eq "$(cat "$WORK/target-list")" "1/1" "a function in the target list: the slot is kept throughout"

# A procedure that commits inside CALL: the CALL is the top-level statement, and keeps
# its slot across its own commits; the session's later statements are still gated.
run_case call "${APP[@]}" -c "CALL commits_inside()" -c "SELECT 'after: ' || active FROM usher.service_status WHERE service = 'one'"
assert_eq "$("${APP[@]}" -c "SELECT gate FROM seen WHERE how = 'call'")" "1/1" \
  "a procedure that COMMITs inside CALL keeps the slot after its commit"
assert_match "$(cat "$WORK/call")" "after: 1" "the session's next statement still takes a slot (the CALL's commit did not upset the gate's count)"

# A WITH HOLD cursor's query runs to completion at COMMIT (here the implicit commit of
# the DECLARE): the slot the DECLARE took is kept until its transaction ends.
run_case hold-cursor "${APP[@]}" -c "DECLARE c CURSOR WITH HOLD FOR SELECT probe_volatile()" -c "FETCH ALL FROM c"
assert_eq "$(tail -1 "$WORK/hold-cursor")" "1/1" "a WITH HOLD cursor's query, run at COMMIT, is gated under the DECLARE's slot"
run_case hold-cursor-block "${APP[@]}" -c "BEGIN" -c "DECLARE c CURSOR WITH HOLD FOR SELECT probe_volatile()" -c "COMMIT" -c "FETCH ALL FROM c"
assert_eq "$(tail -1 "$WORK/hold-cursor-block")" "1/1" "in a transaction block too: the slot is kept from the DECLARE to the end of COMMIT"

# A fast-path function call (PQfn): the call is the top-level statement; its first
# inner query takes the slot and the call keeps it until it ends.
run_case fastpath "$TOOLS/fastpath_call" 'probe_volatile()'
assert_eq "$(cat "$WORK/fastpath")" "1/1" "a fast-path call (PQfn) keeps the slot from its first inner query to its end"

# A failed inner query inside the planner gives the slot back with the statement.
err=$(PGAPPNAME=one/fails "${APP[@]}" -v VERBOSITY=verbose -c "CREATE FUNCTION pg_temp.boom() RETURNS int LANGUAGE plpgsql IMMUTABLE AS \$\$ BEGIN PERFORM 1; RETURN 1/0; END \$\$" -c "SELECT pg_temp.boom()" 2>&1)
assert_match "$err" "ERROR:  22012: division by zero" "an error inside a function the planner evaluates arrives with its own SQLSTATE"
assert_eq "$(gate_of one)" "0 0" "and gives the slot back"
assert_eq "$("${SU[@]}" -c "SELECT peak_active FROM usher.service_status WHERE service = 'one'")" "1" \
  "over every case, never more than max_active = 1 statement of the service at once (peak_active)"
session_close holder
assert_done
