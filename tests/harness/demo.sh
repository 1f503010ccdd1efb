#!/usr/bin/env bash
# `make demo`: a throwaway cluster with pg_usher, a handful of real client sessions in
# different states, and what pg_usher says about them.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster.sh"

NAME=demo
pids=()
fifos=$(mktemp -d)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  cluster_destroy "$NAME"
  rm -rf "$fifos"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_destroy "$NAME"
cluster_start "$NAME"
eval "$(cluster_env "$NAME")"
export PGAPPNAME=dba/demo
sql() { psql -X -q -v ON_ERROR_STOP=1 -P pager=off "$@"; }

sql -c "CREATE EXTENSION pg_usher" -c "CREATE TABLE orders (id int)"
# Thresholds lowered so that a few seconds of demo show warnings and criticals.
sql -c "ALTER SYSTEM SET usher.idle_in_transaction_warning = '2s'" \
    -c "ALTER SYSTEM SET usher.idle_in_transaction_critical = '30s'" \
    -c "ALTER SYSTEM SET usher.lock_waits_warning = '1s'" \
    -c "ALTER SYSTEM SET usher.lock_waits_critical = '3s'" \
    -c "ALTER SYSTEM SET usher.long_transactions_warning = '3s'" \
    -c "SELECT pg_reload_conf()" >/dev/null

# A session per state, each a real psql process reading its commands from a FIFO
# this script keeps open, so the session stays connected after its SQL has run.
session() {  # application_name, SQL to run
  local fifo; fifo=$fifos/${#pids[@]}
  mkfifo "$fifo"
  PGAPPNAME=$1 psql -X -q <"$fifo" >/dev/null 2>&1 &
  pids+=($!)
  local fd; exec {fd}>"$fifo"
  echo "$2" >&$fd
  sleep 0.3  # let it start before the next one, so the lock order is the one described
}
echo "Starting sessions:"
session "orders/api-1" "SELECT 1;"                                     && echo "  orders/api-1       idle"
session "orders/api-2" "SELECT 1;"                                     && echo "  orders/api-2       idle"
session "orders/api-3" "SELECT pg_sleep(60);"                          && echo "  orders/api-3       active (a long query)"
session "billing/worker-1" "BEGIN; SELECT now();"                     && echo "  billing/worker-1   idle in transaction"
session "billing/worker-2" "BEGIN; LOCK TABLE orders;"                 && echo "  billing/worker-2   holds an exclusive lock on orders"
sleep 0.5
session "reporting/nightly" "SELECT count(*) FROM orders;"             && echo "  reporting/nightly  waits for that lock"
session "" "SELECT 1;"                                                 && echo "  (no application_name)  idle, service 'default'"
echo "Waiting 4 seconds for the ages to grow..."
sleep 4

echo
echo "=== SELECT * FROM usher.connections"
sql -c "SELECT service, database, role, state, count, date_trunc('second', oldest_state_age) AS oldest_state_age,
               date_trunc('second', oldest_xact_age) AS oldest_xact_age
          FROM usher.connections ORDER BY service, state"
echo "=== SELECT pid, service, state, wait_event_type, blocking_pids FROM usher.backends"
sql -c "SELECT pid, service, application_name, state, date_trunc('second', state_age) AS state_age,
               wait_event_type, wait_event, blocking_pids
          FROM usher.backends WHERE pid <> pg_backend_pid() ORDER BY service, pid"
echo "=== SELECT * FROM usher.capacity"
sql -c "SELECT * FROM usher.capacity"
echo "=== SELECT * FROM usher.health()"
sql -c "SELECT \"check\", status, round(value::numeric, 1) AS value, threshold, detail FROM usher.health()"
echo "=== SELECT usher.ready()"
sql -c "SELECT usher.ready()"
echo "=== usher.metrics() (health part; the whole text passes promtool check metrics)"
metrics=$(psql -X -At -c "SELECT usher.metrics()")
grep -E '^usher_(health_status|ready)' <<<"$metrics"
if command -v promtool >/dev/null && promtool check metrics <<<"$metrics" >/dev/null 2>&1; then
  echo "promtool check metrics: OK"
fi

echo
echo "=== Admission control: service reporting may hold 2 connections, orders runs 1 statement at a time"
sql -c "CREATE ROLE app LOGIN" \
    -c "SELECT name, max_connections, max_active FROM usher.set_service('reporting', max_connections => 2)" \
    -c "SELECT name, max_connections, max_active FROM usher.set_service('orders', max_active => 1, queue_timeout => '1s')"
PGUSER=app session "reporting/dash-1" "SELECT 1;"
PGUSER=app session "reporting/dash-2" "SELECT 1;"
echo "A third reporting connection (as role app):"
PGUSER=app PGAPPNAME=reporting/dash-3 psql -X -c "SELECT 1" 2>&1 | sed 's/^/  /' || true
PGUSER=app session "orders/api-9" "SELECT pg_sleep(5);"
echo "A second orders statement while the first runs:"
PGUSER=app PGAPPNAME=orders/api-10 psql -X -c "SELECT 1" 2>&1 | sed 's/^/  /' || true
echo "=== SELECT * FROM usher.service_status"
sql -c "SELECT service, current, max_connections, rejected_quota_total, active, max_active, queue_timeouts_total
          FROM usher.service_status ORDER BY service"

echo
echo "Demo finished; stopping the sessions and the cluster."
