#!/usr/bin/env bash
# Login admission with real connections: per-service quotas, reserved slots against a
# flood from another service, superusers always admitted, rolled-back changes never
# enforced, and the registry enforced again after a restart and after a crash restart.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

NAME=admission
trap 'release_all; cluster_destroy $NAME' EXIT
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
release_all

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

assert_done
