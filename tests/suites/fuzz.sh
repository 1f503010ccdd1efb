#!/usr/bin/env bash
# Fuzzing: every function of schema usher (read from pg_proc by tests/fuzz/generator.sql,
# so new functions and arguments are covered without editing this file) called with
# NULLs, extremes, empty and 10 kB strings, invalid intervals and JSON, in a plain
# statement, an aborted transaction, a rolled-back savepoint, a PL/pgSQL exception
# block, a cursor, a WITH HOLD cursor, a PREPAREd transaction and a DO block that
# commits -- as a role with no grants, an application role, a pg_monitor role, a
# delegated operator and the superuser. Then the registry and semaphore tables are
# changed by direct DML (as pg_restore does) and must be what is published. Then
# sqlsmith sends random queries for about a minute as plain roles whose sessions pass
# the gate. Passes when no backend crashed, no error was XX000 (internal) or worse,
# the gate is idle, no permit is held, and every service counts exactly its real
# backends. Seeds: USHER_FUZZ_SEED, USHER_SQLSMITH_SEED (docs/testing.md: reproducing).
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
source "$REPO_ROOT/tests/harness/cluster.sh"
source "$REPO_ROOT/tests/harness/assert.sh"
# tests/run.sh builds the tools once before this suite starts beside the others (whose
# client build rewrites build/client/libusher.a, which ha_writer links).
[[ ${USHER_TOOLS_BUILT:-} == 1 ]] || make --no-print-directory -s -C "$REPO_ROOT/tests/integration/tools" || exit 1
source "$REPO_ROOT/tests/harness/sessions.sh"

FUZZ_SEED=${USHER_FUZZ_SEED:-20261201}
FUZZ_RANDOM=${USHER_FUZZ_RANDOM_CALLS:-24}        # random argument combinations per function
SMITH_SEED=${USHER_SQLSMITH_SEED:-9001}
SMITH_QUERIES=${USHER_SQLSMITH_QUERIES:-3000}     # per sqlsmith process (two run)
SMITH_SECONDS=${USHER_SQLSMITH_SECONDS:-60}       # hard bound per process
echo "# fuzz seed $FUZZ_SEED ($FUZZ_RANDOM random calls per function); sqlsmith seeds $SMITH_SEED and $((SMITH_SEED + 1)), $SMITH_QUERIES queries each"

NAME=fuzz
OUT=$(mktemp -d)
# What a finding needs to be reproduced stays in $USHER_RESULTS/fuzz: the generated
# script, psql's and sqlsmith's output per role, the server logs (gzipped).
keep() {
  [[ -n ${USHER_RESULTS:-} ]] || return 0
  local dir=$USHER_RESULTS/fuzz
  mkdir -p "$dir" && cp "$OUT"/*.out "$OUT"/script.sql "$dir"/ 2>/dev/null
  [[ -d ${LOGDIR:-} ]] && for f in "$LOGDIR"/postgresql.*; do gzip -c "$f" >"$dir/server-$(basename "$f").gz"; done
  return 0
}
cleanup() { [[ -n ${watchdog_pid:-} ]] && kill "$watchdog_pid" 2>/dev/null; release_all; keep; cluster_destroy $NAME; cluster_destroy fuzz_pristine; rm -rf "$OUT"; }
trap cleanup EXIT
cluster_destroy $NAME
# Every message goes to a JSON log too (one object a line, SQLSTATE and statement as
# fields, the source file with log_error_verbosity = verbose): that is where errors
# are classified. %e in the text log's prefix is for people reading it.
cluster_start $NAME usher.database=fuzz max_connections=40 max_prepared_transactions=10 \
  logging_collector=on "log_destination=stderr,jsonlog" log_directory=log log_filename=postgresql.log \
  log_rotation_age=0 log_rotation_size=0 log_error_verbosity=verbose \
  "log_line_prefix=%m [%p] %e %q%a " log_min_messages=warning log_min_error_statement=error || exit 1
eval "$(cluster_env $NAME)"
LOGDIR=$(cluster_dir $NAME)/data/log
JSONLOG=$LOGDIR/postgresql.json
export PGDATABASE=fuzz
SU=(psql -X -At -v ON_ERROR_STOP=1 -U postgres)
"${SU[@]}" -d postgres -c "CREATE DATABASE fuzz" >/dev/null || exit 1

# sqlsmith's role and its own tables, so its queries have data of the types usher's
# functions take (also made on the server without pg_usher that XX errors are replayed on).
SMITH_SETUP=$(cat <<'SQL'
CREATE ROLE fuzz_smith LOGIN;
CREATE SCHEMA smith AUTHORIZATION fuzz_smith;
SET ROLE fuzz_smith;
CREATE TABLE smith.t (i integer, b bigint, s text, n name, d interval, j jsonb, f boolean, a text[]);
INSERT INTO smith.t VALUES
  (1, 1, 'fuzzsem', 'fuzz_smith', '100ms', '{"smith": 2}', true, '{a,NULL}'),
  (-1, -9223372036854775808, '', '', '-1s', '[]', false, '{}'),
  (2147483647, 9223372036854775807, repeat('x', 10000), repeat('n', 64), '1000 years', '{"default": 1}', NULL, NULL),
  (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
RESET ROLE;
SQL
)
"${SU[@]}" >/dev/null <<<"$SMITH_SETUP" || exit 1

# Roles. fuzz_plain: nothing granted. fuzz_app: what an application role is granted
# (semaphores, leases). fuzz_monitor: pg_monitor. fuzz_operator: the registry and
# semaphore writers, delegated as docs/admission.md describes. fuzz_smith: sqlsmith's
# plain role, mapped to the gated service smith. Grants by name, whatever the signatures.
"${SU[@]}" >/dev/null <<'SQL' || exit 1
CREATE EXTENSION pg_usher;
CREATE ROLE fuzz_plain LOGIN;
CREATE ROLE fuzz_app LOGIN;
CREATE ROLE fuzz_monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE fuzz_operator LOGIN;
CREATE ROLE watchdog LOGIN IN ROLE pg_signal_backend, pg_read_all_stats;
GRANT USAGE ON SCHEMA usher TO fuzz_app, fuzz_operator, fuzz_smith;
SELECT format('GRANT EXECUTE ON FUNCTION %s TO %s', p.oid::regprocedure, r)
  FROM pg_proc p, (VALUES ('fuzz_app'), ('fuzz_smith')) g(r)
 WHERE p.pronamespace = 'usher'::regnamespace AND p.proname IN ('acquire', 'release', 'checkout', 'checkin')
UNION ALL
SELECT format('GRANT EXECUTE ON FUNCTION %s TO fuzz_operator', p.oid::regprocedure)
  FROM pg_proc p
 WHERE p.pronamespace = 'usher'::regnamespace
   AND p.proname IN ('set_service', 'drop_service', 'set_role_service', 'set_semaphore', 'drop_semaphore')
\gexec
SQL
# The baseline registry: the fuzzed sessions' service fuzzgate, sqlsmith's smith (one
# slot, so its two clients queue for it), the semaphore fuzzsem.
baseline() {
  "${SU[@]}" >/dev/null <<'SQL'
SELECT usher.set_role_service(role_name, NULL) FROM usher.role_service;
SELECT usher.drop_service(name) FROM usher.service WHERE name <> 'default';
SELECT usher.drop_semaphore(name) FROM usher.semaphore;
SELECT usher.set_service('default', max_connections => 0, reserved_connections => 0, max_active => 0,
                         queue_timeout => '5s', priority => 0, enabled => true);
SELECT usher.set_service('fuzzgate', max_active => 2, queue_timeout => '1s');
SELECT usher.set_service('smith', max_active => 1, queue_timeout => '1s');
SELECT usher.set_role_service('fuzz_smith', 'smith');
SELECT usher.set_semaphore('fuzzsem', 2);
SQL
}
baseline || exit 1

# --- Invariants, checked after every phase
# What the server logged since the last look (both logs are read from the line after the
# last one seen): crashes, assertion failures (TRAP, written to stderr), PANICs, and
# errors of class XX (internal) that are pg_usher's -- those that do not happen the same
# way on a server without pg_usher (pristine_xx, below). Appended to $FINDINGS too.
FINDINGS=$OUT/findings
SEEN_TEXT=0 SEEN_JSON=0
new_lines() {  # FILE SEEN: the complete lines after the first SEEN
  head -n "$(wc -l <"$1")" "$1" | tail -n +$(($2 + 1))
}
log_findings() {
  local text json
  text=$(wc -l <"$LOGDIR/postgresql.log"); json=$(wc -l <"$JSONLOG")
  # Only lines that can be findings go to jq (the log holds tens of thousands of errors).
  new_lines "$JSONLOG" "$SEEN_JSON" |
    grep -E '"state_code":"XX|fuzz caught XX|"PANIC"|terminated by signal|terminated by exception|exited with exit code|all server processes terminated' >"$OUT/new.json"
  {
    new_lines "$LOGDIR/postgresql.log" "$SEEN_TEXT" | grep -E 'TRAP:|terminated by signal|was terminated by exception'
    # A background worker that exits with 1 ended on an ERROR or FATAL, logged with its
    # own SQLSTATE; other codes and signals are crashes.
    jq -r 'select(.error_severity == "PANIC"
                  or (.message | test("terminated by signal|was terminated by exception|exited with exit code ([02-9]|1[0-9])|all server processes terminated")))
           | "\(.error_severity): \(.message)"' "$OUT/new.json"
    internal_errors "$OUT/new.json" | while IFS= read -r e; do
      builtin_rejected "$e" || pristine_xx "$(jq -r .statement <<<"$e")" ||
        jq -r '"\(.state_code) \(.message) (\(.file_name // "?"):\(.file_line_num // "?")) in: \(.statement // "" | .[0:300])"' <<<"$e"
    done
  } | tee -a "$FINDINGS"
  SEEN_TEXT=$text SEEN_JSON=$json
}
# Errors of class XX, one JSON object a line, one per distinct message and statement;
# and the ones caught by a PL/pgSQL exception block ("fuzz caught XX...").
internal_errors() {
  jq -c 'select((.error_severity | IN("ERROR", "FATAL", "PANIC")) and (.state_code // "" | startswith("XX"))
                or (.message | startswith("fuzz caught XX")))' "$1" | jq -sc 'unique_by([.message, .statement]) | .[]'
}
# Whether the JSON log entry ERROR is a PostgreSQL built-in rejecting the argument the
# statement itself passed it: raised in the C function of an internal pg_catalog
# function the statement calls by name (intervaltypmodout(1) raises XX000 "invalid
# INTERVAL typmod" on any server). The replay below cannot show that when the same
# statement also calls one of pg_usher's functions, which sqlsmith's role may execute.
builtin_rejected() {
  local fn statement
  fn=$(jq -r '.func_name // ""' <<<"$1"); statement=$(jq -r '.statement // ""' <<<"$1")
  [[ $fn =~ ^[a-z0-9_]+$ ]] && grep -qiE "(^|[^a-z0-9_])$fn[[:space:]]*\\(" <<<"$statement" || return 1
  [[ $("${SU[@]}" -v fn="$fn" <<<"SELECT count(*) FROM pg_catalog.pg_proc
         WHERE pronamespace = 'pg_catalog'::regnamespace AND prolang = 12 AND prosrc = :'fn' AND proname = :'fn'") != 0 ]]
}
# Whether STATEMENT raises an XX error on a server without pg_usher too (as the role
# fuzz_smith, with sqlsmith's tables): then it is PostgreSQL's own, not pg_usher's.
PRISTINE=fuzz_pristine
pristine_xx() {
  [[ -n $1 && $1 != null ]] || return 1
  if [[ ! -f $(cluster_dir $PRISTINE)/port ]]; then
    USHER_PRELOAD= cluster_start $PRISTINE >/dev/null || return 1
    ( eval "$(cluster_env $PRISTINE)"; "${SU[@]}" -d postgres >/dev/null <<<"CREATE DATABASE fuzz;
\\c fuzz
$SMITH_SETUP" ) || return 1
  fi
  local out  # (not piped into grep -q: under pipefail psql's SIGPIPE would be the status)
  out=$(eval "$(cluster_env $PRISTINE)"
        PGOPTIONS="-c statement_timeout=5s" psql -X -v VERBOSITY=verbose -U fuzz_smith -d fuzz -c "$1" 2>&1)
  grep -qE '^(ERROR|FATAL|PANIC):  XX' <<<"$out"
}
# The state after a phase, in one query: four lines "gate|...", "counts|...",
# "permits|...", "prepared|...", each empty after the "|" when all is well.
# gate: services whose gate is not idle. counts: usher's count of each service against
# the backends PostgreSQL lists, each assigned to its service as docs/admission.md says
# (role mapping, else application_name up to the first "/" if an enabled service, else
# default). permits: semaphores with permits held, holders or waiters. prepared:
# prepared transactions left.
state() {
  "${SU[@]}" <<'SQL'
WITH real AS (
  SELECT coalesce(rs.service, sv.name, 'default') AS service, count(*) AS n
    FROM pg_stat_activity a
    LEFT JOIN usher.role_service rs ON rs.role_name = a.usename
    LEFT JOIN usher.service sv ON sv.enabled AND sv.name = split_part(a.application_name, '/', 1)
   WHERE a.backend_type = 'client backend'
   GROUP BY 1)
SELECT 'gate|' || coalesce((SELECT string_agg(service || ' active=' || active || ' queued=' || queued, ', ')
                              FROM usher.service_status WHERE active <> 0 OR queued <> 0), '')
UNION ALL
SELECT 'counts|' || coalesce((SELECT string_agg(coalesce(s.service, r.service) || ' current=' || coalesce(s.current, 0)
                                                || ' real=' || coalesce(r.n, 0), ', ')
                                FROM usher.service_status s FULL JOIN real r USING (service)
                               WHERE coalesce(s.current, 0) <> coalesce(r.n, 0)), '')
UNION ALL
SELECT 'permits|' || coalesce((SELECT string_agg(name || ' held=' || held || ' holders=' || holders || ' waiters=' || waiters, ', ')
                                 FROM usher.semaphores WHERE held <> 0 OR holders <> 0 OR waiters <> 0), '')
UNION ALL
SELECT 'prepared|' || coalesce((SELECT string_agg(gid || ' of ' || owner, ', ') FROM pg_prepared_xacts), '');
SQL
}
state_of() { sed -n "s/^$1|//p" <<<"$2"; }  # KIND STATE
count_drift() { state_of counts "$(state)"; }
# settled leaves the state it saw in SETTLED_STATE: the checks read that one snapshot.
settled() { SETTLED_STATE=$(state) && [[ $(grep -c '|$' <<<"$SETTLED_STATE") == 4 ]]; }
check_invariants() {  # PHASE
  await 20 settled
  local now=$SETTLED_STATE
  log_findings >"$OUT/phase_findings"
  echo "# $1: checked at $SECONDS s"
  assert_eq "$(head -20 "$OUT/phase_findings")" "" "$1: no crash, assertion failure, PANIC or pg_usher XX000 in the server log"
  assert_eq "$(state_of gate "$now")" "" "$1: afterwards every gate is idle (active 0, queued 0)"
  assert_eq "$(state_of counts "$now")" "" "$1: service_status.current equals the real backends of every service"
  assert_eq "$(state_of permits "$now")" "" "$1: no semaphore permit held or waited for"
  assert_eq "$(state_of prepared "$now")" "" "$1: no prepared transaction left"
}
sqlstates() {  # FILE: "count SQLSTATE" of the errors psql reported, caught ones included
  grep -oE '(ERROR|FATAL|PANIC):  [0-9A-Z]{5}|fuzz caught [0-9A-Z]{5}' "$1" | grep -oE '[0-9A-Z]{5}$' |
    sort | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "} END {print ""}'
}

# --- 0. The detector itself: an XX000 raised inside a pg_usher module (pg_usher_test's
# escaped C++ exception) is a finding; PostgreSQL's own XX000 (intervaltypmodout(80),
# the same on a server without pg_usher) is not.
"${SU[@]}" -c "CREATE EXTENSION pg_usher_test" >/dev/null || exit 1
"${SU[@]}" -c "SELECT usher_test.throw_cpp_exception('fuzz detector control')" >/dev/null 2>&1
PGUSER=fuzz_smith psql -X -c "SELECT pg_catalog.intervaltypmodout(80)" >/dev/null 2>&1
log_findings >"$OUT/phase_findings"
assert_match "$(cat "$OUT/phase_findings")" "^XX000 fuzz detector control " \
  "the detector reports an XX000 raised in pg_usher's code"
assert_eq "$(grep -c intervaltypmodout "$OUT/phase_findings")" "0" \
  "and not PostgreSQL's own XX000, which a server without pg_usher raises too"
"${SU[@]}" -c "DROP EXTENSION pg_usher_test" >/dev/null
: >"$FINDINGS"

# --- 1. The catalog-driven call fuzzer, as each role. Every call is bounded by
# statement_timeout and lock_timeout (acquire with a NULL timeout waits for ever).
"${SU[@]}" -q -c "SET client_min_messages = warning" -f "$REPO_ROOT/tests/fuzz/generator.sql" >/dev/null || exit 1
"${SU[@]}" -c "SELECT s FROM fuzz.script($FUZZ_RANDOM, $FUZZ_SEED / 2147483648.0) s" >"$OUT/script.sql" || exit 1
read -r functions calls < <("${SU[@]}" -F ' ' -c "SELECT count(DISTINCT fn), count(*) FROM fuzz.calls($FUZZ_RANDOM, $FUZZ_SEED / 2147483648.0)")
contexts=$("${SU[@]}" -c "SELECT count(*) FROM fuzz.contexts")
echo "# $functions functions of schema usher, $calls calls, each in $contexts contexts"
assert_match "$functions" '^[1-9][0-9]+$' "the generator found the functions of schema usher in pg_proc"

# statement_timeout bounds every wait but one: PostgreSQL switches it off before it
# commits, and a WITH HOLD cursor's query runs in the commit (the generator's "cursor
# with hold" context), so usher.acquire with a long timeout of its own can wait there
# for a day while another session holds the permits. A watchdog cancels a fuzz
# session's COMMIT that has waited longer than 2 s in pg_usher's own wait (wait event
# type Extension: a semaphore or the gate); cancel ends such a wait, so the outcome is
# a clean 57014 whenever it fires. A COMMIT stuck anywhere else is not cancelled and
# fails the run by psql's time limit. docs/semaphores.md says the same to users.
# The watchdog is one session that repeats its query (psql's \watch) rather than a
# connection every half second: a session logging in or out is counted by pg_usher
# before or after PostgreSQL lists it, so a watchdog connecting while check_invariants
# compares the counts with pg_stat_activity made that check fail now and then. Its own
# role (not postgres, which the fuzzed calls may map to a service) keeps the service
# it logged in to whatever the phases do to the registry.
"${SU[@]}" -U watchdog -o /dev/null >/dev/null 2>&1 <<'SQL' &
SELECT pg_catalog.pg_cancel_backend(pid) FROM pg_catalog.pg_stat_activity
 WHERE usename LIKE 'fuzz%' AND state = 'active' AND query ~* '^\s*commit'
   AND wait_event_type = 'Extension'
   AND pg_catalog.clock_timestamp() - query_start > interval '2s'
\watch 0.5
SQL
watchdog_pid=$!

# fuzz_run LABEL ROLE SCRIPT STATEMENT_TIMEOUT: runs SCRIPT as ROLE in service fuzzgate;
# psql's output goes to $OUT/LABEL.out, its exit status to $OUT/LABEL.rc.
# fuzz_check LABEL: checks what psql saw.
fuzz_run() {
  local label=$1 role=$2 script=$3 timeout=$4 started=$SECONDS
  PGUSER=$role PGAPPNAME=fuzzgate/$label PGOPTIONS="-c statement_timeout=$timeout -c lock_timeout=1s" \
    timeout 300 psql -X -v VERBOSITY=verbose -f "$script" >"$OUT/$label.out" 2>&1
  echo $? >"$OUT/$label.rc"
  echo "# $label ($((SECONDS - started)) s): $(sqlstates "$OUT/$label.out")"
}
fuzz_check() {
  local label=$1 rc; rc=$(cat "$OUT/$label.rc")
  assert_eq "$rc" "0" "fuzz as $label: psql ran the whole script without losing its connection (exit $rc)"
  assert_eq "$(grep -cE 'server closed the connection|connection to server was lost|terminated abnormally' "$OUT/$label.out")" "0" \
    "fuzz as $label: no connection lost"
  assert_eq "$(grep -cE '(ERROR|FATAL|PANIC):  XX|fuzz caught XX' "$OUT/$label.out")" "0" \
    "fuzz as $label: every error a clean ERROR, none XX000 $(grep -m1 -B3 -E '(ERROR|FATAL|PANIC):  XX|fuzz caught XX' "$OUT/$label.out" | tr '\n' ' ')"
}
# The superuser goes last: its registry changes (a disabled default, dropped services)
# would change who the other roles' sessions count against.
for role in fuzz_plain fuzz_monitor fuzz_app fuzz_operator postgres; do
  fuzz_run $role $role "$OUT/script.sql" 500ms
  fuzz_check $role
  check_invariants "fuzz as $role"
done

# Two application sessions at once, each with its own random combinations, through a
# one-slot gate and the two-permit semaphore fuzzsem: they queue for the slot and for
# permits the other holds (session-scope permits are kept until the session ends), and
# a short statement_timeout and queue_timeout end many of those waits.
baseline
"${SU[@]}" -c "SELECT usher.set_service('fuzzgate', max_active => 1, queue_timeout => '150ms')" >/dev/null
"${SU[@]}" -c "SELECT s FROM fuzz.script($FUZZ_RANDOM, ($FUZZ_SEED + 1) / 2147483648.0) s" >"$OUT/script2.sql" || exit 1
fuzz_run fuzz_app_a fuzz_app "$OUT/script.sql" 200ms &
app_a_pid=$!
fuzz_run fuzz_app_b fuzz_app "$OUT/script2.sql" 200ms
wait "$app_a_pid"
fuzz_check fuzz_app_a
fuzz_check fuzz_app_b
check_invariants "two application sessions at once"

# --- 2. Drift between the tables and what is published: every committed change to
# usher.service, usher.role_service and usher.semaphore is in shared memory, whether it
# came from set_service or from direct DML in its own transaction (pg_restore's COPY).
# Compares the columns the table and the published view have in common.
registry_drift() {
  "${SU[@]}" <<'SQL'
SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) AS cols
  FROM information_schema.columns c
 WHERE table_schema = 'usher' AND table_name = 'service' AND column_name <> 'comment'
   AND EXISTS (SELECT 1 FROM information_schema.columns p WHERE p.table_schema = 'usher'
                  AND p.table_name = 'published_services' AND p.column_name = c.column_name) \gset
SELECT (SELECT count(*) FROM (SELECT :cols FROM usher.service EXCEPT SELECT :cols FROM usher.published_services) a)
     + (SELECT count(*) FROM (SELECT :cols FROM usher.published_services EXCEPT SELECT :cols FROM usher.service) b)
     + (SELECT count(*) FROM (SELECT role_name::text, service FROM usher.role_service
                              EXCEPT SELECT unnest(roles)::text, name FROM usher.published_services) c)
     + (SELECT count(*) FROM (SELECT name, capacity FROM usher.semaphore
                              EXCEPT SELECT name, capacity FROM usher.semaphores WHERE defined) d)
     + (SELECT count(*) FROM (SELECT name, capacity FROM usher.semaphores WHERE defined
                              EXCEPT SELECT name, capacity FROM usher.semaphore) e) AS drift;
SQL
}
assert_eq "$(registry_drift)" "0" "after the fuzzed registry changes, the published registry and semaphores equal the tables"
# Each case: the baseline, a setup through the functions (published as documented),
# then one direct statement in a transaction of its own.
S="SELECT usher.set_service('fuzz_direct', max_active => 3)"
M="SELECT usher.set_semaphore('fuzz_direct', 3)"
dml=(
  "|INSERT INTO usher.service (name, max_active) VALUES ('fuzz_direct', 3)"
  "$S|UPDATE usher.service SET max_active = 4, priority = 1000 WHERE name = 'fuzz_direct'"
  "$S|DELETE FROM usher.service WHERE name = 'fuzz_direct'"
  "$S|INSERT INTO usher.role_service VALUES ('fuzz_app', 'fuzz_direct')"
  "$S; SELECT usher.set_role_service('fuzz_app', 'fuzz_direct')|DELETE FROM usher.role_service WHERE role_name = 'fuzz_app'"
  "|INSERT INTO usher.semaphore VALUES ('fuzz_direct', 2147483647)"
  "$M|UPDATE usher.semaphore SET capacity = 0 WHERE name = 'fuzz_direct'"
  "$M|DELETE FROM usher.semaphore WHERE name = 'fuzz_direct'"
)
for case in "${dml[@]}"; do
  baseline
  [[ -n ${case%%|*} ]] && "${SU[@]}" -c "${case%%|*}" >/dev/null
  "${SU[@]}" -c "${case#*|}" >/dev/null
  assert_eq "$(registry_drift)" "0" "direct DML published at its commit: ${case#*|}"
done
baseline
"${SU[@]}" -c "COPY usher.service (name, max_connections, max_active) FROM stdin" >/dev/null <<<$'fuzz_copy\t5\t1'
assert_eq "$(registry_drift)" "0" "COPY into usher.service (as pg_restore does) published at its commit"
baseline
check_invariants "direct DML"

# --- 3. sqlsmith: two processes as the plain role fuzz_smith, whose sessions belong to
# service smith (one slot: they queue for it). sqlsmith sets its own application_name
# and a 1 s statement_timeout for its queries; the role's settings bound lock waits,
# and bound sqlsmith's start-up generously: a start-up that fails ends sqlsmith (exit
# 1), and one start-up waits for the slot while the other reads the catalogs in its
# transaction, which took more than the baseline's 1 s queue_timeout on a loaded
# machine. Its queries wait at most their own 1 s.
"${SU[@]}" -c "ALTER ROLE fuzz_smith SET statement_timeout = '90s'" -c "ALTER ROLE fuzz_smith SET lock_timeout = '1s'" >/dev/null
# Gate mode transaction: a slot per transaction, so the limit holds whatever sqlsmith
# sends in one transaction (its start-up reads the catalogs in one transaction, whose
# later statements statement mode admits past a full gate by design).
"${SU[@]}" -c "SELECT usher.set_service('smith', gate_mode => 'transaction', queue_timeout => '60s')" >/dev/null
smith_pids=()
started=$SECONDS
for i in 0 1; do
  (cd "$OUT" && exec timeout -s INT -k 5 "$SMITH_SECONDS" sqlsmith \
      --target="host=$PGHOST port=$PGPORT dbname=fuzz user=fuzz_smith" \
      --seed=$((SMITH_SEED + i)) --max-queries="$SMITH_QUERIES" --verbose) >"$OUT/sqlsmith$i.out" 2>&1 &
  smith_pids+=($!)
done
for i in 0 1; do
  wait "${smith_pids[$i]}"; rc=$?
  # 124: the time bound ended it (a slower machine), which is not a finding.
  assert_match "$rc" '^(0|124)$' "sqlsmith seed $((SMITH_SEED + i)) ran to its end (exit $rc)"
  echo "# sqlsmith seed $((SMITH_SEED + i)): $(grep -oE '^queries: [0-9]+|error rate: [0-9.]+' "$OUT/sqlsmith$i.out" | tail -2 | tr '\n' ' ')"
  assert_eq "$(grep -ciE 'connection to server was lost|server closed the connection|terminating connection because of crash' "$OUT/sqlsmith$i.out")" "0" \
    "sqlsmith seed $((SMITH_SEED + i)): the server never closed its connection"
done
echo "# sqlsmith: $((SECONDS - started)) s"
"${SU[@]}" -c "SELECT '# smith: transactions admitted ' || statements_admitted_total || ', waited ' || statements_waited_total
                      || ', queue timeouts ' || queue_timeouts_total || ', peak_active ' || peak_active
                      || ', past the limit ' || statements_past_limit_total
                 FROM usher.service_status WHERE service = 'smith'"
assert_match "$("${SU[@]}" -c "SELECT statements_admitted_total FROM usher.service_status WHERE service = 'smith'")" '^[1-9][0-9]*$' \
  "sqlsmith's statements passed the gate of service smith"
# In gate mode transaction no transaction of the service runs past max_active.
assert_eq "$("${SU[@]}" -c "SELECT peak_active <= max_active FROM usher.service_status WHERE service = 'smith'")" "t" \
  "the gate held: never more than max_active transactions of service smith at once (peak_active)"
echo "# server log, errors by SQLSTATE: $(jq -r 'select(.error_severity | IN("ERROR", "FATAL", "PANIC")) | .state_code' "$JSONLOG" |
  sort | uniq -c | sort -rn | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "} END {print ""}')"
check_invariants "sqlsmith"

# --- 4. Counts with sessions open: held sessions of each kind, then gone again.
PGUSER=fuzz_app hold_all fuzzgate/held 3 "3 sessions held open in service fuzzgate"
PGUSER=fuzz_smith hold_all anything/held 2 "2 sessions held open in service smith (role mapping)"
PGUSER=fuzz_plain hold_all nosuchservice/held 2 "2 sessions held open in service default"
assert_eq "$(count_drift)" "" "with sessions open, service_status.current equals the real backends of every service"
release_all
check_invariants "the end"
assert_eq "$(sort -u "$FINDINGS" | head -20)" "" "in the whole run: no crash, assertion failure, PANIC or pg_usher XX000"
assert_done
