#!/usr/bin/env bash
# `usher pgbouncer-config` with a real PgBouncer 1.18: the file it writes for 7 services
# (auth, orders, payments, inventory, search, notifications, reporting) is read by
# PgBouncer (its [pgbouncer] settings, one alias per service with pool_advice's sizes,
# reporting in session mode, a mapped role's [users] limits, a database name with a
# quote); a client reaches the server through each service's pool and counts as that
# service; --check passes; a quota change makes --check print the drift and exit 1;
# RELOAD with the regenerated file makes it pass again while a connected client stays
# connected. Values that cannot be written safely are refused with exit 64. The committed
# example (deploy/pgbouncer/pgbouncer.example.ini) is the tool's output; the metrics
# script reports an exhausted pool; the logrotate postrotate command reopens the log.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/pgbouncer.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"
source "$HERE/../harness/usher_cli.sh"

usher_cli_build
BOUNCER=pgbouncer-config
at_exit "bouncer_destroy $BOUNCER"
# pool_advice depends on the cores and on the sampled history: fix the cores, and sample
# once an hour so that no service turns from "default share" to "observed" meanwhile.
scenario_start pgbouncer-config usher.cpu_cores=8 usher.sample_interval=1h
chmod 755 "$WORK"   # PgBouncer runs as postgres and reads the generated files from here
SERVICES="auth inventory notifications orders payments reporting search"
"${SU[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN IN ROLE pg_monitor;
CREATE ROLE reporter LOGIN IN ROLE pg_monitor;
CREATE ROLE "odd role" LOGIN;
CREATE DATABASE "it's db";
SELECT usher.set_service('auth', max_connections => 20, priority => 50);
SELECT usher.set_service('orders', max_connections => 40, priority => 100);
SELECT usher.set_service('payments', max_connections => 30, priority => 100);
SELECT usher.set_service('inventory', max_connections => 20);
SELECT usher.set_service('search', max_connections => 20);
SELECT usher.set_service('notifications', max_connections => 10);
SELECT usher.set_service('reporting', max_connections => 10, max_active => 2);
SELECT usher.set_role_service('reporter', 'reporting');
SELECT usher.set_role_service('odd role', 'search');
SQL

GEN=(--session-mode reporting --target-dbname "it's db")
check_args() { echo "host=$(bouncer_dir $BOUNCER) port=$(cat "$(bouncer_dir $BOUNCER)/port") user=postgres"; }

# --- the files
usher_run pgbouncer-config "${GEN[@]}" -o "$WORK/pgbouncer.ini"
assert_eq "$RC $OUT" "0 " "pgbouncer-config -o writes the file, nothing on stdout"
assert_match "$ERR" '^usher: warning: role "odd role" is mapped to a service but cannot be a PgBouncer \[users\] key' \
  "a mapped role PgBouncer cannot name is left out, with a warning naming it"
usher_run pgbouncer-config "${GEN[@]}" --databases-only -o "$WORK/databases.ini"
assert_eq "$(tail -n "$(wc -l <"$WORK/databases.ini")" "$WORK/pgbouncer.ini")" "$(cat "$WORK/databases.ini")" \
  "--databases-only is the whole file's [databases] and [users] parts"
aliases() { sed -n 's/^\([a-z]*\) = host=.* pool_size=\([0-9]*\) min_pool_size=\([0-9]*\) reserve_pool=0 max_db_connections=\([0-9]*\).*/\1 \2 \3 \4/p' "$1"; }
assert_eq "$(aliases "$WORK/databases.ini")" \
  "$("${SU[@]}" -F' ' -c "SELECT service, max_pool_size, min_idle, max_pool_size FROM usher.pool_advice() ORDER BY service")" \
  "one alias per enabled service: pool_size = max_db_connections = pool_advice's max_pool_size, min_pool_size its min_idle"
assert_match "$(grep '^reporting = ' "$WORK/databases.ini")" "dbname='it''s db' application_name=reporting/pgbouncer .* pool_mode=session$" \
  "reporting (--session-mode) is pooled in session mode; the database name's quote is doubled"
assert_eq "$(sed -n '/^\[users\]/,$p' "$WORK/databases.ini" | grep -v '^;')" \
  "[users]
reporter = max_user_connections=$("${SU[@]}" -c "SELECT max_pool_size FROM usher.pool_advice() WHERE service = 'reporting'") pool_mode=session" \
  "[users]: the role mapped to reporting is capped at its pool, in session mode"

# deploy/pgbouncer/pgbouncer.example.ini is the tool's output for these 7 services
# (USHER_WRITE_EXAMPLE=1 rewrites it after a deliberate change).
EXAMPLE=$REPO_ROOT/deploy/pgbouncer/pgbouncer.example.ini
usher_run pgbouncer-config --session-mode reporting --target-host /var/run/postgresql --target-port 5432 --target-dbname shop
[[ -n ${USHER_WRITE_EXAMPLE:-} ]] && printf '%s\n' "$OUT" >"$EXAMPLE"
assert_eq "$OUT" "$(cat "$EXAMPLE")" "deploy/pgbouncer/pgbouncer.example.ini is what the tool writes for the 7 services"

# --- PgBouncer reads them: the generated [pgbouncer] settings (the harness's listen,
# files and trust authentication follow and win) and the generated sections, included.
BOUNCER_BASE_CONFIG=$WORK/pgbouncer.ini BOUNCER_DATABASES_FILE=$WORK/databases.ini \
  BOUNCER_USERS="postgres app reporter" bouncer_start $BOUNCER pgbouncer-config || exit 1
config_of() { bouncer_admin $BOUNCER "SHOW CONFIG" | awk -F'|' -v k="$1" '$1 == k { print $2 }'; }
assert_eq "$(config_of pool_mode) $(config_of max_client_conn) $(config_of query_wait_timeout)" "transaction 2000 30" \
  "PgBouncer runs with the generated settings"
assert_eq "$(bouncer_admin $BOUNCER "SHOW DATABASES" | awk -F'|' '$1 == "reporting" { print $4 "|" $9 }')" "it's db|session" \
  "PgBouncer read reporting's quoted database name and its session mode"
for svc in $SERVICES; do
  out=$( (eval "$(bouncer_env $BOUNCER)"; PGAPPNAME=$svc/client psql -X -At -U app -d "$svc" \
          -c "SELECT current_database(), application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()") 2>&1)
  assert_eq "$out" "it's db|$svc/client" "a client of alias $svc reaches database \"it's db\" through its pool"
done
assert_eq "$("${SU[@]}" -c "SELECT string_agg(DISTINCT service_enforced, ' ' ORDER BY service_enforced)
                              FROM usher.backends WHERE role = 'app'")" "$SERVICES" \
  "the server connections of the 7 pools count as the 7 services"

# --- --check: no drift
usher_run pgbouncer-config "${GEN[@]}" --check "$(check_args)"
assert_eq "$RC|$OUT|$ERR" "0|PgBouncer matches the registry: 8 database(s)|" "--check against the running PgBouncer: no drift, exit 0"

# A client connected through orders stays connected across the drift and the RELOAD.
PGHOST=$(bouncer_dir $BOUNCER) PGPORT=$(cat "$(bouncer_dir $BOUNCER)/port") PGUSER=app PGDATABASE=orders \
  session_open held orders/held
session_send held "SELECT 'before ' || current_database();"
await 10 session_seen held "before it's db"

# --- a quota changes: orders' gate admits 2, so its advised pool shrinks to 2
"${SU[@]}" -c "SELECT usher.set_service('orders', max_active => 2)" >/dev/null
usher_run pgbouncer-config "${GEN[@]}" --check "$(check_args)"
assert_eq "$RC" "1" "--check after the quota change: exit 1"
old=$(aliases "$WORK/databases.ini" | awk '$1 == "orders" { print $2 }')
assert_match "$OUT" $'(^|\n)orders +pool_size +'"$old"$' +2(\n|$)' "the drift names orders' pool_size: $old in PgBouncer, 2 generated"
assert_match "$OUT" $'(^|\n)orders +max_db_connections +'"$old"$' +2(\n|$)' "and its max_db_connections"
assert_eq "$(grep -vc '^where \|^orders ' <<<"$OUT")" "0" "and nothing else"
assert_eq "$ERR" "usher: PgBouncer differs from what pgbouncer-config would write: regenerate the file and RELOAD" \
  "one line on stderr says what to do"

usher_run pgbouncer-config "${GEN[@]}" --databases-only -o "$WORK/databases.ini"
bouncer_admin $BOUNCER RELOAD >/dev/null
usher_run pgbouncer-config "${GEN[@]}" --check "$(check_args)"
assert_eq "$RC|$ERR" "0|" "regenerated and RELOADed: --check passes again"
usher_run pgbouncer-config "${GEN[@]}" --max-client-conn 100 --check "$(check_args)"
assert_eq "$RC|$(tail -n +2 <<<"$OUT" | tr -s ' ')" "1|[pgbouncer] max_client_conn 2000 100" \
  "a [pgbouncer] setting that differs (SHOW CONFIG) is drift too"
usher_run pgbouncer-config "${GEN[@]}" --max-client-conn 100 --databases-only --check "$(check_args)"
assert_eq "$RC" "0" "but not with --databases-only, whose [pgbouncer] section is kept by hand"
session_send held "SELECT 'after ' || current_database();"
await 10 session_seen held "after it's db"
assert_eq "$(grep -c "FATAL\|closed\|ERROR" "$WORK/held.out")" "0" "the client connected before the RELOAD is served after it, never dropped"

# --- pool exhaustion as deploy/pgbouncer/pgbouncer-metrics.sh reports it: reporting
# (session mode, a pool of 2) with two clients holding its connections and a third waiting
for n in 1 2 3; do
  PGHOST=$(bouncer_dir $BOUNCER) PGPORT=$(cat "$(bouncer_dir $BOUNCER)/port") PGUSER=app PGDATABASE=reporting \
    session_open "rep$n" "reporting/rep$n"
  session_send "rep$n" "SELECT 'rep$n in';"
  [[ $n -lt 3 ]] && await 10 session_seen "rep$n" "rep$n in"
done
pools_value() { bouncer_admin $BOUNCER "SHOW POOLS" | awk -F'|' -v db="$1" -v user="$2" -v col="$3" '
  NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next } $1 == db && $2 == user { print $c }'; }
await 10 test "$(pools_value reporting app cl_waiting)" = 1
(eval "$(bouncer_env $BOUNCER)"; PGUSER=postgres "$REPO_ROOT/deploy/pgbouncer/pgbouncer-metrics.sh" "$WORK/pgbouncer.prom")
assert_cmd "pgbouncer-metrics.sh writes a file promtool accepts" bash -c "promtool check metrics <'$WORK/pgbouncer.prom'"
assert_eq "$(grep -E '^pgbouncer_(pools_client_waiting_connections|pools_server_active_connections)\{database="reporting",user="app"\}|^pgbouncer_databases_pool_size\{name="reporting"\}' "$WORK/pgbouncer.prom" | sort | tr '\n' ' ')" \
  'pgbouncer_databases_pool_size{name="reporting"} 2 pgbouncer_pools_client_waiting_connections{database="reporting",user="app"} 1 pgbouncer_pools_server_active_connections{database="reporting",user="app"} 2 ' \
  "it reports reporting's exhausted pool: 2 of 2 server connections active, 1 client waiting"
for n in 1 2 3; do session_close "rep$n"; done

# --- the log rotation of deploy/pgbouncer/pgbouncer.logrotate: its postrotate command
# (paths moved to this PgBouncer's) makes PgBouncer write to a new file.
log=$(bouncer_dir $BOUNCER)/pgbouncer.log
postrotate=$(sed -n '/postrotate/,/endscript/p' "$REPO_ROOT/deploy/pgbouncer/pgbouncer.logrotate" | sed '1d;$d' |
             sed "s#/var/run/postgresql/pgbouncer.pid#$(bouncer_dir $BOUNCER)/pgbouncer.pid#g")
as_pg_user mv "$log" "$log.1"
as_pg_user sh -c "$postrotate"
await 10 test -s "$log"
assert_match "$(cat "$log")" "SIGHUP" "after the postrotate command PgBouncer writes to a new log file"

# --- what cannot be written safely, or does not fit the version
usher_run pgbouncer-config --session-mode "reporting,x' y"
assert_eq "$RC|$ERR" "64|usher: --session-mode names \"x' y\", which is not an enabled service (services: auth, default, inventory, notifications, orders, payments, reporting, search)" \
  "--session-mode with a name that is no service: exit 64, naming it"
usher_run pgbouncer-config --admin-users $'pgbouncer_admin\nauth_type = any'
assert_match "$RC|$ERR" '^64\|usher: --admin-users: "pgbouncer_admin\\x0aauth_type = any" is not a user name' \
  "a value with a line break (an injected setting) is refused, shown escaped"
usher_run pgbouncer-config --target-dbname $'x\n[databases]'
assert_eq "$RC" "64" "a line break in a connection value is refused"
usher_run pgbouncer-config --max-user-clients 50
assert_match "$RC|$ERR" "^64\|usher: --max-user-clients needs PgBouncer 1.24 or later" "a 1.24 setting for 1.18: exit 64"
usher_run pgbouncer-config --pgbouncer-version 1.24 --max-user-clients 50
assert_eq "$RC|$(grep -c '^max_prepared_statements = 100$\|^max_user_client_connections = 50$' <<<"$OUT")" "0|2" \
  "for 1.24: max_prepared_statements (1.21+) and max_user_client_connections (1.24+)"
assert_eq "$(grep -c '^max_prepared_statements' "$WORK/pgbouncer.ini")" "0" "for 1.18: no max_prepared_statements"
usher_run pgbouncer-config --check "host=$(bouncer_dir $BOUNCER) port=1"
assert_match "$RC|$ERR" "^69\|usher: cannot connect to " "--check that cannot reach PgBouncer: exit 69"
assert_done
