#!/usr/bin/env bash
# The connection and health objects need no shared_preload_libraries: on a server that
# does not preload pg_usher they load the library on first use and work the same.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

NAME=no-preload
trap 'cluster_destroy $NAME' EXIT
cluster_destroy $NAME
USHER_PRELOAD='' cluster_start $NAME || exit 1
eval "$(cluster_env $NAME)"
Q=(psql -X -At -v ON_ERROR_STOP=1)

assert_eq "$("${Q[@]}" -c "SHOW shared_preload_libraries")" "" "the server preloads nothing"
assert_cmd "CREATE EXTENSION works" "${Q[@]}" -c "CREATE EXTENSION pg_usher"
assert_eq "$(PGAPPNAME=orders/w1 "${Q[@]}" -c "SELECT service FROM usher.backends WHERE pid = pg_backend_pid()")" "orders" \
  "usher.backends works"
assert_eq "$("${Q[@]}" -c "SELECT count(*) FROM usher.connections")" "1" "usher.connections works"
assert_eq "$("${Q[@]}" -c "SELECT count(*) FROM usher.capacity WHERE scope = 'server'")" "1" "usher.capacity works"
assert_eq "$("${Q[@]}" -c "SELECT count(*) FROM usher.health() WHERE status = 'ok'")" "10" "usher.health() works, every check ok"
assert_eq "$("${Q[@]}" -c "SELECT usher.ready()")" "t" "usher.ready() works"
assert_cmd "usher.metrics() passes promtool" bash -c "${Q[*]} -c 'SELECT usher.metrics()' | promtool check metrics"
# A threshold set before the library is loaded is a placeholder until the first call
# loads it; then it is validated and applies.
assert_eq "$("${Q[@]}" -c "SET usher.wraparound_warning = 1" -c "SELECT status FROM usher.health() WHERE \"check\" = 'wraparound'" | tail -1)" \
  "warning" "a threshold SET before the library loads applies"
assert_match "$("${Q[@]}" -c "SET usher.wraparound_warning = 'lots'" -c "SELECT 1 FROM usher.health()" 2>&1)" \
  'invalid value for parameter "usher.wraparound_warning": "lots"' "a bad value SET before the library loads is refused when it loads"
# Features that need shared memory say so, with SQLSTATE 55000 and a HINT.
for call in "SELECT * FROM usher.service_status" "SELECT * FROM usher.published_services" \
            "SELECT usher.checkout('x')" "SELECT usher.set_service('orders', max_connections => 5)"; do
  out=$("${Q[@]}" -v VERBOSITY=verbose -c "$call" 2>&1)
  assert_match "$out" "ERROR:  55000: .* needs pg_usher in shared_preload_libraries" "$call: 55000 without preloading"
  assert_match "$out" "HINT:  Add pg_usher to shared_preload_libraries in postgresql.conf and restart the server." \
    "$call: the HINT says how to preload"
done
assert_eq "$("${Q[@]}" -c "SELECT count(*) FROM usher.backends WHERE service_enforced IS NOT NULL OR lease_holder IS NOT NULL")" "0" \
  "usher.backends leaves the admission and lease columns NULL"
assert_done
