#!/usr/bin/env bash
# Login admission with real connections: per-service quotas, reserved slots against a
# flood from another service, a full server as its own reason, superusers always
# admitted, rolled-back changes never enforced, the registry enforced again after a
# restart and after a crash restart, and logins right after a start held until the
# registry's first publication (never admitted as 'default' meanwhile).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

NAME=admission
TMP=$(mktemp -d)
trap 'release_all; cluster_destroy $NAME; rm -rf "$TMP"' EXIT
cluster_destroy $NAME
# 30 slots, 3 for superusers: ordinary roles share 27.
cluster_start $NAME max_connections=30 usher.database=postgres || exit 1
eval "$(cluster_env $NAME)"
source "$HERE/../harness/sessions.sh"
SU=(psql -X -At -v ON_ERROR_STOP=1 -U postgres)
"${SU[@]}" -c "CREATE EXTENSION pg_usher" -c "CREATE ROLE app LOGIN" >/dev/null
export PGUSER=app

status_of() {  # service column
  "${SU[@]}" -c "SELECT $2 FROM usher.service_status WHERE service = '$1'"
}

# --- quota: orders may hold 5
"${SU[@]}" -c "SELECT usher.set_service('orders', max_connections => 5)" >/dev/null
hold orders/api 6
assert_eq "$HELD" "5" "a service with max_connections 5 admits exactly 5"
assert_match "$HELD_ERROR" 'FATAL:  53300: too many connections for service "orders": 5 of 5 in use' \
  "the 6th login is refused with 53300, naming the service and its numbers"
assert_match "$HELD_ERROR" "HINT:  .*usher.set_service\('orders', max_connections" "the refusal has a HINT"
assert_eq "$(PGAPPNAME=orders/dba psql -X -At -U postgres -c 'SELECT 1' 2>&1)" "1" \
  "a superuser of the full service still gets in"
# The superuser was counted too (peak 6), and has left again.
assert_eq "$(status_of orders "current || ' ' || peak || ' ' || rejected_quota_total")" "5 6 1" \
  "service_status: 5 current, peak 6 with the superuser, 1 refused by quota"
assert_eq "$("${SU[@]}" -c "SELECT count(*) FROM usher.backends WHERE service_enforced = 'orders'")" "5" \
  "usher.backends shows the 5 sessions under service_enforced orders"
release_all

# --- a rolled-back change is never enforced
"${SU[@]}" -c "BEGIN" -c "SELECT usher.set_service('orders', max_connections => 1)" -c "ROLLBACK" >/dev/null
hold orders/api 5
assert_eq "$HELD" "5" "a rolled-back lower quota is not enforced"
release_all

# --- reservations hold against a flood from another service (reporting: no limits)
"${SU[@]}" -c "SELECT usher.set_service('payments', reserved_connections => 4)" \
           -c "SELECT usher.set_service('reporting')" >/dev/null
hold orders/api 5
hold reporting/flood 30
assert_eq "$HELD" "18" "the flood gets 27 slots minus 5 of orders minus 4 reserved for payments"
assert_match "$HELD_ERROR" 'FATAL:  53300: no connection slot for service "reporting": the 4 free slot\(s\) are reserved for other services' \
  "the flood is refused because the rest is reserved"
assert_match "$HELD_ERROR" 'DETAIL:  23 of 27 connections are in use and other services hold 4 reserved connection' \
  "the refusal's detail gives the numbers"
assert_eq "$(status_of reporting rejected_reservation_total)" "1" "service_status counts the reservation refusal"
hold payments/api 4
assert_eq "$HELD" "4" "payments still gets its 4 reserved connections"
assert_eq "$(PGAPPNAME=reporting/dba psql -X -At -U postgres -c 'SELECT 1' 2>&1)" "1" \
  "a superuser gets in on a full server"
assert_eq "$(status_of payments "current || ' ' || reserved_in_use")" "4 4" "service_status: payments uses its reservation"
# Now every slot is in use (5 + 18 + 4 = 27): that is a full server, not a reservation.
hold reporting/late 1
assert_match "$HELD_ERROR" 'FATAL:  53300: no connection slot for service "reporting": the server is full, 27 of 27 connections for ordinary roles are in use' \
  "on a full server the refusal says the server is full, with the numbers"
assert_match "$HELD_ERROR" 'DETAIL:  max_connections is 30, of which 3 are reserved for superusers' "its detail gives the arithmetic"
assert_match "$HELD_ERROR" 'HINT:  .*raise max_connections' "and it has a HINT"
assert_eq "$(status_of reporting "rejected_reservation_total || ' ' || rejected_full_total || ' ' || rejected_total")" "1 1 2" \
  "service_status counts it as rejected_full_total, not as a reservation refusal"
release_all

# --- a full server with no reservations at all: its own reason, message and metric
"${SU[@]}" -c "SELECT usher.set_service('payments', reserved_connections => 0)" >/dev/null
hold reporting/flood 30
assert_eq "$HELD" "27" "without reservations the flood gets all 27 slots for ordinary roles"
assert_match "$HELD_ERROR" 'FATAL:  53300: no connection slot for service "reporting": the server is full, 27 of 27' \
  "the 28th login is refused because the server is full, not for reservations that do not exist"
metrics=$("${SU[@]}" -c "SELECT usher.metrics()")
assert_eq "$(grep '^usher_service_rejected_total{service="reporting",' <<<"$metrics" | paste -sd ' ')" \
  'usher_service_rejected_total{service="reporting",reason="quota"} 0 usher_service_rejected_total{service="reporting",reason="reservation"} 1 usher_service_rejected_total{service="reporting",reason="full"} 2' \
  "usher.metrics() reports the refusals of a full server under reason=\"full\""
assert_cmd "usher.metrics() passes promtool check metrics" promtool check metrics <<<"$metrics"
release_all
"${SU[@]}" -c "SELECT usher.set_service('payments', reserved_connections => 4)" >/dev/null

# --- role mapping beats application_name
"${SU[@]}" -c "CREATE ROLE batch LOGIN" -c "SELECT usher.set_role_service('batch', 'orders')" >/dev/null
PGUSER=batch hold reporting/nightly 6
assert_eq "$HELD" "5" "a role mapped to orders counts as orders whatever its application_name"
release_all

# --- restart: the registry is published again and enforced
cluster_restart $NAME
await 30 "${SU[@]}" -c "SELECT 1/(published_at IS NOT NULL)::int FROM usher.published_services WHERE name = 'orders'"
hold orders/api 6
assert_eq "$HELD" "5" "after a restart the quota is enforced again"
release_all

# --- crash restart: shared memory is reset and republished
before=$("${SU[@]}" -c "SELECT published_at FROM usher.published_services WHERE name = 'orders'")
hold orders/api 1
victim=$("${SU[@]}" -c "SELECT pid FROM usher.backends WHERE service_enforced = 'orders' LIMIT 1")
kill -9 "$victim"
release_all
await 60 "${SU[@]}" -c "SELECT 1/(published_at > '$before')::int FROM usher.published_services WHERE name = 'orders'"
assert_eq "$("${SU[@]}" -c "SELECT (published_at > '$before')::text FROM usher.published_services WHERE name = 'orders'")" "true" \
  "after a crash restart the registry is published again"
hold orders/api 6
assert_eq "$HELD" "5" "after a crash restart the quota is enforced again"
assert_eq "$(status_of orders current)" "5" "and counted from zero: exactly the 5 live sessions"
release_all

# --- logins right after a start wait for the registry's first publication. A prepared
# transaction holding ACCESS EXCLUSIVE on usher.service survives the restart and blocks
# the publisher's read: the window between "ready to accept connections" and the first
# publication stays open until COMMIT PREPARED.
LOG=$(cluster_dir $NAME)/server.log
"${SU[@]}" -c "ALTER SYSTEM SET usher.registry_wait = '60s'" >/dev/null
"${SU[@]}" -c "BEGIN" -c "LOCK TABLE usher.service IN ACCESS EXCLUSIVE MODE" -c "PREPARE TRANSACTION 'block_registry'" >/dev/null
log_lines=$(wc -l <"$LOG")
cluster_restart $NAME
# A superuser gets in at once (it must be able to fix what blocks the publisher).
mkfifo "$TMP/dba.fifo"
PGAPPNAME=orders/dba psql -X -At -U postgres <"$TMP/dba.fifo" >"$TMP/dba.out" 2>&1 &
dba_pid=$!
exec {dba_fd}>"$TMP/dba.fifo"
echo "SELECT 'dba in';" >&$dba_fd
await 30 grep -q "dba in" "$TMP/dba.out"
assert_eq "$(cat "$TMP/dba.out")" "dba in" "while the publisher is blocked a superuser logs in at once"
# Six logins of orders (quota 5) while nothing is published.
mkfifo "$TMP/early.fifo"
"$TOOLS/hold_sessions" orders/api 6 <"$TMP/early.fifo" >"$TMP/early.out" &
early_pid=$!
exec {early_fd}>"$TMP/early.fifo"
waiting_logged() { tail -n +"$((log_lines + 1))" "$LOG" | grep -q "logins of ordinary roles wait until the service registry"; }
await 30 bash -c "test -s '$TMP/early.out' || { tail -n +$((log_lines + 1)) '$LOG' | grep -q 'logins of ordinary roles wait until the service registry'; }"
assert_eq "$(cat "$TMP/early.out")" "" "an ordinary login made before the first publication is not admitted as 'default': it waits"
assert_cmd "the server log says that logins wait for the registry" waiting_logged
assert_eq "$("${SU[@]}" -c "SELECT count(*) FILTER (WHERE published_at IS NULL) FROM usher.published_services")" "1" \
  "and the registry is still unpublished (the prepared transaction blocks the publisher)"
# A login that waits longer than usher.registry_wait is refused with a clear FATAL.
"${SU[@]}" -c "ALTER SYSTEM SET usher.registry_wait = '300ms'" -c "SELECT pg_reload_conf()" >/dev/null
await 30 test "$("${SU[@]}" -c "SHOW usher.registry_wait")" = "300ms"
out=$("$TOOLS/hold_sessions" orders/late 1 </dev/null)
assert_match "$out" 'FATAL:  57P03: pg_usher has not published the service registry yet: login refused after waiting [0-9]+ ms' \
  "a login still waiting after usher.registry_wait is refused with FATAL 57P03"
assert_match "$out" 'DETAIL:  After a server start, logins of ordinary roles wait up to usher.registry_wait \(300 ms\) for the registry of database "postgres"' \
  "its detail names the setting and the database"
assert_match "$out" 'HINT:  Try again shortly.*superusers can still log in' "with a HINT"
"${SU[@]}" -c "COMMIT PREPARED 'block_registry'" >/dev/null
await 60 test -s "$TMP/early.out"
read -r early_line <"$TMP/early.out"
# The superuser counts among orders' 5 sessions, as any session of the service does.
assert_match "$early_line" '^held=4 error=.*FATAL:  53300: too many connections for service "orders": 5 of 5 in use' \
  "once the registry is published the waiting logins are admitted under orders: 4 beside the superuser, then refused by quota"
assert_eq "$("${SU[@]}" -c "SELECT service_enforced FROM usher.backends WHERE application_name = 'orders/dba'")" "orders" \
  "the superuser admitted before the publication now counts under its service, orders"
assert_eq "$(status_of orders "current || ' ' || current_superusers || ' ' || rejected_quota_total")" "5 1 1" \
  "service_status: orders has 5 sessions, 1 of them the superuser's, and 1 quota refusal since the start"
exec {early_fd}>&- {dba_fd}>&-
wait "$early_pid" "$dba_pid" 2>/dev/null

# --- a publisher run that fails after connecting is retried; logins wait meanwhile.
# (The registry table renamed away makes the read fail until it is renamed back.)
"${SU[@]}" -c "ALTER SYSTEM SET usher.registry_wait = '60s'" >/dev/null
"${SU[@]}" -c "ALTER TABLE usher.service RENAME TO service_away" >/dev/null
log_lines=$(wc -l <"$LOG")
cluster_restart $NAME
since_restart() { tail -n +"$((log_lines + 1))" "$LOG" | grep -q "$1"; }
await 60 since_restart "registry publisher ended without publishing; retrying in"
assert_cmd "a publisher run that fails is retried (server log)" since_restart "registry publisher ended without publishing; retrying in"
"$TOOLS/hold_sessions" orders/api 1 <"$TMP/early.fifo" >"$TMP/retry.out" &
retry_pid=$!
exec {early_fd}>"$TMP/early.fifo"
await 30 bash -c "test -s '$TMP/retry.out' || { tail -n +$((log_lines + 1)) '$LOG' | grep -q 'logins of ordinary roles wait until the service registry'; }"
assert_eq "$(cat "$TMP/retry.out")" "" "meanwhile an ordinary login waits"
"${SU[@]}" -c "ALTER TABLE usher.service_away RENAME TO service" >/dev/null
await 60 test -s "$TMP/retry.out"
assert_match "$(cat "$TMP/retry.out")" '^held=1 error=$' "a later run publishes the registry and the login is admitted"
assert_eq "$("${SU[@]}" -c "SELECT service_enforced FROM usher.backends WHERE application_name = 'orders/api'")" "orders" \
  "under its service"
exec {early_fd}>&-
wait "$retry_pid" 2>/dev/null

# --- no registry to wait for: usher.database without pg_usher, or missing, never
# locks ordinary roles out (they are 'default', which is all there is).
"${SU[@]}" -c "ALTER SYSTEM SET usher.registry_wait = '60s'" >/dev/null
"${SU[@]}" -c "ALTER SYSTEM SET usher.database = 'template1'" >/dev/null
cluster_restart $NAME
assert_eq "$(PGAPPNAME=orders/api psql -X -At -c "SELECT 'in'" 2>&1)" "in" \
  "usher.database without the extension: an ordinary login is admitted after a start"
"${SU[@]}" -c "ALTER SYSTEM SET usher.database = 'no_such_database'" >/dev/null
cluster_restart $NAME
assert_eq "$(PGAPPNAME=orders/api psql -X -At -c "SELECT 'in'" 2>&1)" "in" \
  "usher.database missing: an ordinary login is admitted after a start"
"${SU[@]}" -c "ALTER SYSTEM SET usher.database = 'postgres'" -c "ALTER SYSTEM RESET usher.registry_wait" >/dev/null

assert_done
