#!/usr/bin/env bash
# The usher command-line tool (client/cli) against a real server: status shows a
# service's limits; backends filters by service and state through parameters (a hostile
# value matches nothing); health's Nagios exit statuses 0/1/2/3 and --quiet; advice equals
# usher.pool_advice() for the same instances; JSON output parses and matches the views;
# services lists, sets and drops (as the owner and a delegated role; a pg_monitor role
# is refused with 77); leases shows a lease and, under a low threshold, a leak suspect;
# semaphores and activity match their views; usage errors, a database without pg_usher, a role without pg_monitor and a bad
# conninfo give their documented messages and exit statuses, and never print a password.
#
# The binary: $USHER_CLI if set, else built from the current sources
# (tests/harness/usher_cli.sh).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"
source "$HERE/../harness/usher_cli.sh"

usher_cli_build

# The sampler is slowed to one tick an hour so that pool_advice's history, and so the
# advice, cannot change between the tool's read and the test's own.
scenario_start cli usher.sample_interval=1h
Q=(psql -X -At -v ON_ERROR_STOP=1)

run() { usher_run "$@"; }
is() { [[ $("${Q[@]}" -c "$1") == "$2" ]]; }  # await helper: query gives value

"${Q[@]}" -c "CREATE EXTENSION pg_usher" \
          -c "SELECT usher.set_service('orders', 20, 2, 4, '5s', 0, true, 'cli test')" >/dev/null

# --- help, version, usage errors
run --help
assert_eq "$RC" "0" "--help exits 0"
assert_match "$OUT" "status .*backends .*health .*advice" "--help lists the four commands"
run --version
assert_match "$OUT" '^usher [0-9]+\.[0-9]+\.[0-9]+$' "--version prints the version"
run backends --help
assert_match "$RC $OUT" "^0 usher backends: .*--service SERVICE" "backends --help exits 0 and lists --service"
run stauts
assert_eq "$RC" "64" "an unknown command exits 64"
assert_match "$ERR" "^usher: unknown command 'stauts'; did you mean 'status'\?" "and says so on stderr with a hint"
assert_eq "$OUT" "" "and prints nothing on stdout"
run status --bogus
assert_match "$RC $ERR" "^64 usher: unknown option '--bogus'" "an unknown option exits 64, naming it"
run --service orders backends
assert_match "$RC $ERR" "^64 .*--service belongs after the subcommand" "a command's option before the command: 64, saying where it goes"
run status --format xml
assert_match "$RC $ERR" "^64 .*unknown format 'xml'" "an unknown --format exits 64"
run advice --instances orders=many
assert_match "$RC $ERR" "^64 .*--instances takes a count" "a malformed --instances exits 64"

# --- status
run status
assert_eq "$RC" "0" "status exits 0"
assert_match "$OUT" $'(^|\n)orders +0/20 +0/2 +0 +0 +4 +0 +0(\n|$)' \
  "status shows orders: 0 of 20 connections, 0 of 2 reserved, gate 0 active 0 queued of 4"
assert_match "$(head -n 1 <<<"$OUT")" "^service +conns +reserved +active +queued +max_active +rejected +queue_timeouts$" \
  "status has its header"
run status --format json
assert_eq "$(jq -r '.[] | select(.service == "orders") | [.max_connections, .reserved_connections, .max_active, .current] | @csv' <<<"$OUT")" \
  "20,2,4,0" "status --format json parses with jq and gives orders' limits"
assert_eq "$(jq -r '[.[].service] | join(",")' <<<"$OUT")" \
  "$("${Q[@]}" -c "SELECT string_agg(service, ',' ORDER BY service) FROM usher.service_status")" \
  "status --format json lists the services of usher.service_status"

# --- advice: the same as usher.pool_advice() for the same instances
advice_sql() {  # INSTANCES-JSON: pool_advice's rows as "service|instances|max|min|basis"
  "${Q[@]}" -F'|' -c "SELECT service, client_instances, max_pool_size, min_idle, basis
                        FROM usher.pool_advice('$1') ORDER BY service"
}
table_rows() { tail -n +2 | sed -E 's/ {2,}/|/g'; }  # table columns are 2+ blanks apart
run advice
assert_eq "$RC|$(table_rows <<<"$OUT")" "0|$(advice_sql '{}')" "advice equals pool_advice() with no instances"
run advice --instances 3
assert_eq "$(table_rows <<<"$OUT")" "$(advice_sql '{"default": 3, "orders": 3}')" \
  "advice --instances 3 equals pool_advice() with 3 for every service"
run advice --instances orders=7
assert_eq "$(table_rows <<<"$OUT")" "$(advice_sql '{"orders": 7}')" "advice --instances orders=7 equals pool_advice('{\"orders\": 7}')"
run advice --instances orders=7,default=2 --format json
assert_eq "$(jq -cS . <<<"$OUT")" \
  "$("${Q[@]}" -c "SELECT json_agg(q) FROM (SELECT service, client_instances, max_pool_size, min_idle, basis
                     FROM usher.pool_advice('{\"orders\": 7, \"default\": 2}') ORDER BY service) q" | jq -cS .)" \
  "advice --format json equals pool_advice()'s rows as JSON"
run advice --instances orders=7 --why
assert_eq "$(grep '^orders: ' <<<"$OUT")" \
  "orders: $("${Q[@]}" -c "SELECT rationale FROM usher.pool_advice('{\"orders\": 7}') WHERE service = 'orders'")" \
  "advice --why prints pool_advice()'s rationale whole"
run advice --instances "x' OR '1'='1=2"
assert_match "$RC $ERR" "^65 usher: instances names service \"x' OR '1'='1\", which is not an enabled service" \
  "a hostile service name in --instances reaches the server as a value: unknown service, exit 65"
run advice --instances 0
assert_match "$RC $ERR" "^65 .*must be a whole number between 1 and 100000" "a count out of range: the server's message, exit 65"

# --- backends
PGAPPNAME=orders/worker psql -X -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
BG_PIDS+=($!)
PGAPPNAME=billing/worker psql -X -c "BEGIN" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
BG_PIDS+=($!)
await 20 is "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE '%/worker' AND wait_event = 'PgSleep'" 2
orders_pid=$("${Q[@]}" -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'orders/worker'")
billing_pid=$("${Q[@]}" -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'billing/worker'")
run backends --service orders --format json
assert_eq "$RC $(jq -r '[.[].pid] | join(",")' <<<"$OUT")" "0 $orders_pid" "backends --service orders gives only the orders session"
assert_eq "$(jq -r '.[0] | [.service, .application_name, .state, .wait_event] | join(",")' <<<"$OUT")" \
  "orders,orders/worker,active,PgSleep" "and its service, application, state and wait event"
run backends --service orders
assert_eq "$(wc -l <<<"$OUT")" "2" "backends --service orders: a header and one row"
assert_match "$(tail -n 1 <<<"$OUT")" "^ *$orders_pid +orders +postgres +orders/worker +active .*Timeout:PgSleep.*SELECT pg_sleep\(600\)" \
  "the row shows pid, service, role, app, state, wait and query"
run backends --format json
assert_eq "$(jq -r '[.[].pid] | sort | join(",")' <<<"$OUT")" \
  "$("${Q[@]}" -c "SELECT string_agg(pid::text, ',' ORDER BY pid::text) FROM usher.backends WHERE application_name LIKE '%/worker'")" \
  "backends without filters lists every client session but its own"
run backends --service "x' OR '1'='1"
assert_eq "$RC|$(wc -l <<<"$OUT")" "0|1" "a hostile --service value matches nothing: exit 0, only the header"
run backends --service "x' OR '1'='1" --format json
assert_eq "$RC $OUT" "0 []" "and as JSON, an empty array"
run backends --state active --service orders --format json
assert_eq "$(jq -r 'length' <<<"$OUT")" "1" "--state active --service orders: the orders session"
run backends --state idle --service orders --format json
assert_eq "$(jq -r 'length' <<<"$OUT")" "0" "--state idle --service orders: none"
COLUMNS=60 run backends --service billing
assert_eq "$(tail -n 1 <<<"$OUT" | grep -c "^ *$billing_pid .*…$")" "1" "a query text wider than the terminal is cut, ending in …"

# --- health: exit statuses as a Nagios plugin
run health
assert_eq "$RC" "0" "health exits 0 when every check is ok"
assert_eq "$(tail -n +2 <<<"$OUT" | awk '{print $1 ":" $2}' | paste -sd,)" \
  "$("${Q[@]}" -c "SELECT string_agg(\"check\" || ':' || status, ',') FROM usher.health()")" \
  "health prints usher.health()'s checks and statuses"
run health --quiet
assert_eq "$RC|$OUT" "0|" "health --quiet prints nothing when every check is ok"
PGOPTIONS="-c usher.connection_saturation_warning=1" run health
assert_match "$RC $OUT" $'^1 .*\nconnection_saturation +warning ' "a warning check: exit 1"
PGOPTIONS="-c usher.connection_saturation_critical=1" run health
assert_match "$RC $OUT" $'^2 .*\nconnection_saturation +critical ' "a critical check: exit 2"
PGOPTIONS="-c usher.connection_saturation_critical=1" run health -q
assert_match "$RC|$OUT" $'^2\\|check +status +value +threshold +detail\nconnection_saturation +critical [^\n]*$' \
  "health --quiet on a critical check prints only that check"
PGOPTIONS="-c usher.connection_saturation_critical=1" run health --format json
assert_eq "$RC $(jq -r '[.[] | select(.status != "ok") | .check] | join(",")' <<<"$OUT") $(jq length <<<"$OUT")" \
  "2 connection_saturation 10" "health --format json: all 10 checks, the critical one marked, exit 2"
run health -d "host=127.0.0.1 port=1"
assert_match "$RC $ERR" "^3 usher: cannot connect to " "health that cannot connect exits 3 (unknown)"
run health -d dbname=template1
assert_match "$RC $ERR" "^3 .*CREATE EXTENSION pg_usher" "health in a database without pg_usher exits 3"

# --- services: list, set and drop through usher.set_service / drop_service, values bound
run services --format json
assert_eq "$RC $(jq -r '.[] | select(.service == "orders") | [.max_connections, .reserved_connections, .max_active, .queue_timeout_seconds, .published] | @csv' <<<"$OUT")" \
  "0 20,2,4,5,true" "services --format json: orders as set, and published"
assert_eq "$(jq -r '[.[].service] | join(",")' <<<"$OUT")" "$("${Q[@]}" -c "SELECT string_agg(name, ',' ORDER BY name) FROM usher.service")" \
  "services lists usher.service"
hostile="it's billing; DROP TABLE usher.service; --"
run services set billing --max-connections 5 --max-active 2 --queue-timeout 750ms --comment "$hostile"
assert_match "$RC $OUT" $'^0 service .*\nbilling +5 +0 +2 +0.8s +0 +yes +statement +yes +'"$hostile"'$' \
  "services set creates billing and prints its row, published"
assert_eq "$("${Q[@]}" -c "SELECT max_connections || ' ' || max_active || ' ' || queue_timeout || ' ' || comment FROM usher.service WHERE name = 'billing'")" \
  "5 2 00:00:00.75 $hostile" "the registry has the values as given, the comment as a value"
run services set billing --priority 5000
assert_match "$RC $ERR" "^65 usher: priority of service \"billing\" must be between 0 and 1000, not 5000" "a value set_service refuses: its message, exit 65"
run services set billing --max-connections lots
assert_match "$RC $ERR" '^65 usher: invalid input syntax for type integer: "lots"' "a value that is no number: exit 65, naming it"
run services set "x' OR '1'='1"
assert_match "$RC $ERR" "^65 usher: invalid service name \"x' OR '1'='1\"" "a hostile service name reaches the server as a value: exit 65"
run services list billing
assert_eq "$RC $(wc -l <<<"$OUT")" "0 2" "services list NAME: a header and that service"
run services drop billing
assert_eq "$RC $OUT $("${Q[@]}" -c "SELECT count(*) FROM usher.service WHERE name = 'billing'")" "0 dropped service billing 0" "services drop removes it"
run services drop billing
assert_match "$RC $ERR" '^65 usher: service "billing" does not exist' "dropping a service that does not exist: exit 65"
run services drop
assert_match "$RC $ERR" "^64 usher: usher services drop takes one service name" "drop without a name: exit 64"
run services --max-active 3
assert_match "$RC $ERR" "^64 usher: --max-active goes with \`usher services set NAME\`" "a set option without set: exit 64"
run status orders
assert_match "$RC $ERR" "^64 usher: unexpected argument 'orders'" "a command without operands refuses one: exit 64"
"${Q[@]}" >/dev/null <<'SQL'
CREATE ROLE cli_monitor LOGIN IN ROLE pg_monitor;
CREATE ROLE cli_operator LOGIN IN ROLE pg_monitor;
GRANT EXECUTE ON FUNCTION usher.set_service(text, integer, integer, integer, interval, integer, boolean, text, text),
                          usher.drop_service(text) TO cli_operator;
SQL
run services -d user=cli_monitor set billing
assert_match "$RC $ERR" "^77 usher: permission denied for function set_service: changing the registry needs the extension's owner or a role it granted EXECUTE on usher.set_service" \
  "a pg_monitor role may list but not set: exit 77, naming the grant"
run services -d user=cli_operator set ops --max-connections 3
assert_eq "$RC $("${Q[@]}" -c "SELECT max_connections FROM usher.service WHERE name = 'ops'")" "0 3" "a delegated role sets a service"
run services -d user=cli_operator drop ops
assert_eq "$RC" "0" "and drops it"

# --- leases and semaphores: a session holding a lease and two permits
"${Q[@]}" -c "SELECT usher.set_semaphore('cli-sem', 3)" >/dev/null
session_open leaser cli/leaser
session_send leaser "SELECT usher.checkout('cart.cpp:42'), usher.acquire('cli-sem', 2, '5s', 'session');"
await 10 is "SELECT count(*) FROM usher.leases WHERE holder = 'cart.cpp:42' AND state = 'idle'" 1
leaser_pid=$("${Q[@]}" -c "SELECT pid FROM usher.leases WHERE holder = 'cart.cpp:42'")
run leases --format json
assert_eq "$RC $(jq -r '.[] | [.pid, .holder, .service, .suspect] | @csv' <<<"$OUT")" "0 $leaser_pid,\"cart.cpp:42\",\"cli\",false" \
  "leases --format json: the lease, its holder and service, not suspect under the default threshold"
run leases --suspect
assert_eq "$RC $(wc -l <<<"$OUT")" "0 1" "leases --suspect: none yet (only the header)"
PGOPTIONS="-c usher.lease_warning=1" run leases --suspect
assert_match "$RC $(tail -n 1 <<<"$OUT")" "^0 +$leaser_pid +cli +postgres +idle +[0-9.]+s +[0-9.]+s +SUSPECT +cart.cpp:42$" \
  "with usher.lease_warning 1 ms the idle lease is a SUSPECT, with its holder"
run leases --service "x' OR '1'='1" --format json
assert_eq "$RC $OUT" "0 []" "a hostile --service matches nothing"
run semaphores
assert_match "$RC $(grep '^cli-sem ' <<<"$OUT")" "^0 cli-sem +2/3 +1 +0 +2 +1 +0 +1 \($leaser_pid\)$" \
  "semaphores: 2 of 3 held, 1 available, peak 2, 1 acquisition, held by the session's pid"
run semaphores --name cli-sem --format json
assert_eq "$(jq -cS . <<<"$OUT")" "$("${Q[@]}" -c "SELECT json_agg(s) FROM usher.semaphores s WHERE name = 'cli-sem'" | jq -cS .)" \
  "semaphores --format json equals usher.semaphores"
session_close leaser

# --- activity: usher.activity_summary
run activity --format json
assert_eq "$RC $(jq -r '[.[] | .service + ":" + (.samples | tostring)] | join(",")' <<<"$OUT")" \
  "0 $("${Q[@]}" -c "SELECT string_agg(service || ':' || samples, ',' ORDER BY service) FROM usher.activity_summary")" \
  "activity --format json: usher.activity_summary's services and sample counts"
run activity
assert_match "$RC $(head -n 1 <<<"$OUT")" "^0 service +samples +window +conns p95/peak +active p95/peak +queued peak +stmt/s +busy ms +mean active$" \
  "activity has its header"

# --- databases, roles and connection strings that cannot work
run status -d dbname=template1
assert_eq "$RC" "78" "a database without pg_usher: exit 78"
assert_eq "$ERR" "usher: pg_usher is not installed in database \"template1\": CREATE EXTENSION pg_usher is needed there (or connect to the database that has it with -d)" \
  "and the message names the database and CREATE EXTENSION pg_usher"
"${Q[@]}" -c "CREATE ROLE cli_nobody LOGIN" >/dev/null
run status -d "user=cli_nobody"
assert_match "$RC $ERR" "^77 usher: permission denied for schema usher: the role needs pg_monitor" \
  "a role without pg_monitor: exit 77, saying pg_monitor is needed"
"${Q[@]}" -c "GRANT pg_monitor TO cli_nobody" >/dev/null
run status -d "user=cli_nobody"
assert_eq "$RC" "0" "granted pg_monitor, the same role reads the status"
# A server's refusal at login is "cannot connect" too (libusher throws it typed by its
# SQLSTATE: PermissionDenied for a missing role, DatabaseError for a missing database).
run status -d "user=cli_no_such_role"
assert_match "$RC $ERR" "^69 usher: cannot connect to .*role \"cli_no_such_role\" does not exist" \
  "a role that does not exist: exit 69 (not 77, the pg_monitor hint)"
run status -d "dbname=cli_no_such_db"
assert_match "$RC $ERR" "^69 usher: cannot connect to .*database \"cli_no_such_db\" does not exist" \
  "a database that does not exist: exit 69"
secret=hunter2-cli-secret
for conninfo in "host=127.0.0.1 port=1 user=x password=$secret" \
                "postgresql://x:$secret@127.0.0.1:1/postgres" \
                "host=127.0.0.1 port=1 password='$secret" \
                "host=127.0.0.1 port=1 password=$secret nosuchkeyword=1"; do
  run status -d "$conninfo"
  assert_match "$RC $ERR" "^(69|64|70) usher: " "bad conninfo [${conninfo//$secret/***}]: one line naming the problem"
  assert_eq "$(grep -c -- "$secret" "$WORK/usher.out" "$WORK/usher.err" | awk -F: '{s+=$2} END {print s}')" "0" \
    "bad conninfo [${conninfo//$secret/***}]: the password is printed nowhere"
done
run status -d "host=127.0.0.1 port=1 password=$secret"
assert_match "$RC $ERR" "^69 usher: cannot connect to host=127.0.0.1 port=1 password=\*\*\* " \
  "cannot connect: exit 69, the conninfo shown with the password as ***"

assert_done
