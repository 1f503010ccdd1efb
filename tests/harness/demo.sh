#!/usr/bin/env bash
# `make demo`: the whole story of pg_usher in about a minute, on a throwaway cluster.
#   1. the 7 services start through PgBouncer, configured by `usher pgbouncer-config`;
#   2. a burst of one service hits its quota and is refused (53300);
#   3. a libusher pool leaks a connection: reported with its source location, seen in
#      usher.leases;
#   4. a reporting flood is queued at pg_usher's gate while orders keep their latency
#      (p50/p99 measured, with and without the gate), and `usher top --once` shows it all;
#   5. the pool advice sizes a pool, and the leaked lease is given back.
# Every figure is measured and printed, nothing asserted. The client half is
# tests/harness/usher_demo.cpp (built here); the tool is build/client/cli/usher (`make`).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster.sh"
source "$HERE/pgbouncer.sh"

NAME=demo BOUNCER=demo-pgb
started=$SECONDS
USHER=${USHER_CLI:-$REPO_ROOT/build/client/cli/usher}
LIB=$REPO_ROOT/build/client/libusher.a
for f in "$USHER" "$LIB"; do
  [[ -e $f ]] || { echo "demo: $f is missing: run make (or make demo) first" >&2; exit 1; }
done
# The demo's client program, built here so that no other target pays for it.
DEMO=$REPO_ROOT/build/demo/usher_demo
if [[ ! -x $DEMO || $HERE/usher_demo.cpp -nt $DEMO || $LIB -nt $DEMO ]]; then
  mkdir -p "$(dirname "$DEMO")"
  echo "building $DEMO ..."
  g++ -O2 -std=c++20 -Wall -Wextra -I"$REPO_ROOT/client/include" -I"$("${PG_CONFIG:-pg_config}" --includedir)" \
    -o "$DEMO" "$HERE/usher_demo.cpp" "$LIB" -L"$("${PG_CONFIG:-pg_config}" --libdir)" -lpq -lfmt -lcurl -pthread
fi
SERVICES=(auth orders payments inventory search notifications reporting)
pids=()
WORK=$(mktemp -d)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  bouncer_destroy "$BOUNCER" 2>/dev/null || true
  cluster_destroy "$NAME"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

section() {  # TITLE, WHAT TO SEE
  echo
  echo "=== $1"
  echo "    what to see: $2"
}
indent() { sed 's/^/    /'; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
# await SECONDS CMD...: polls CMD every 0.1 s until it succeeds or time runs out
await() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [[ $SECONDS -ge $deadline ]] && { echo "demo: timed out waiting for: $*" >&2; return 1; }
    sleep 0.1
  done
}

section "1. A server with pg_usher and the 7 services, through PgBouncer" \
  "one PgBouncer pool per service, sized from usher.pool_advice(); each pool's server sessions counted under its service"
cluster_destroy "$NAME"
cluster_start "$NAME" usher.database=postgres usher.lease_warning=1s usher.sample_interval=1h
eval "$(cluster_env "$NAME")"
DIRECT="host=$PGHOST port=$PGPORT dbname=postgres user=app"
export PGAPPNAME=dba/demo
sql >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN IN ROLE pg_monitor;   -- pg_monitor: to read usher.pool_advice()
GRANT USAGE ON SCHEMA usher TO app;
GRANT EXECUTE ON FUNCTION usher.checkout(text), usher.checkin() TO app;
CREATE TABLE public.demo_orders(id bigserial PRIMARY KEY, item int, amount numeric);
CREATE INDEX ON public.demo_orders(item);
GRANT SELECT, INSERT ON public.demo_orders TO app;
GRANT USAGE ON SEQUENCE public.demo_orders_id_seq TO app;
SELECT usher.set_service('auth', max_connections => 8, priority => 50);
SELECT usher.set_service('orders', max_connections => 10, priority => 100);
SELECT usher.set_service('payments', max_connections => 8, priority => 100);
SELECT usher.set_service('inventory', max_connections => 8);
SELECT usher.set_service('search', max_connections => 8);
SELECT usher.set_service('notifications', max_connections => 3);
SELECT usher.set_service('reporting', max_connections => 12, max_active => 1, queue_timeout => '30s');
SQL
echo "registry: ${SERVICES[*]} (reporting: at most 1 statement at a time, the rest queue up to 30 s)"
chmod 755 "$WORK"   # PgBouncer runs as postgres and reads the generated files from here
"$USHER" pgbouncer-config -o "$WORK/pgbouncer.ini"
"$USHER" pgbouncer-config --databases-only -o "$WORK/databases.ini"
echo "usher pgbouncer-config wrote [databases]:"
grep -E "^($(IFS='|'; echo "${SERVICES[*]}")) = " "$WORK/databases.ini" |
  sed -E "s/host='[^']*' port=[0-9]+ dbname='[^']*' //" | indent
BOUNCER_BASE_CONFIG=$WORK/pgbouncer.ini BOUNCER_DATABASES_FILE=$WORK/databases.ini BOUNCER_USERS="app" \
  bouncer_start "$BOUNCER" "$NAME"
bdir=$(bouncer_dir "$BOUNCER")
VIA_BOUNCER="host=$bdir port=$(cat "$bdir/port") user=app"
echo "PgBouncer $(pgbouncer --version | head -n 1 | awk '{ print $2 }') listens on port $(cat "$bdir/port"); each service connects through it:"
for svc in "${SERVICES[@]}"; do
  printf '%-14s -> %s\n' "$svc" "$(psql -X -At "$VIA_BOUNCER dbname=$svc" -c "
    SELECT 'server session ' || pid || ', counted under service ' || service_enforced
      FROM usher.backends WHERE pid = pg_backend_pid()")" | indent
done
"$USHER" status | indent

section "2. A burst of notifications hits its quota" \
  "notifications may hold 3 sessions (PgBouncer holds 1): the next ones are refused with SQLSTATE 53300"
"$DEMO" burst "$DIRECT" notifications/burst 4
"$USHER" status | grep -E "^(service|notifications) " | indent

section "3. A libusher pool leaks a connection" \
  "the pool's leak report names the source line of acquire(); usher leases shows the same holder, SUSPECT"
mkfifo "$WORK/leak.in"
"$DEMO" leak "$DIRECT" <"$WORK/leak.in" >"$WORK/leak.out" 2>&1 &
pids+=($!)
exec {leak_fd}>"$WORK/leak.in"
await 20 grep -q "LEAK REPORTED" "$WORK/leak.out" || { cat "$WORK/leak.out"; exit 1; }
grep -v "LEAK REPORTED" "$WORK/leak.out"
await 10 bash -c "[[ \$(psql -X -At -c 'SELECT count(*) FROM usher.leases WHERE suspect') == 1 ]]"
echo "usher leases:"
"$USHER" leases | indent

section "4. A reporting flood is queued at the gate; orders keep their latency" \
  "8 reporting clients: 1 running, 7 queued; orders' p50/p99 stay nearer their level alone with the gate than without it (measured, beside whatever else runs here)"
"$DEMO" latency "$VIA_BOUNCER dbname=orders" 4 | sed 's/^/alone:                 /'
queued() { [[ $(psql -X -At -c "SELECT queued FROM usher.service_status WHERE service = 'reporting'") -ge $1 ]]; }
"$DEMO" flood "$DIRECT" 8 8 >"$WORK/flood.out" 2>&1 &
flood=$!
pids+=($flood)
await 20 queued 5
echo "usher top --once, during the gated flood (the rates are over its 1 s between two samples):"
"$USHER" top --once --interval 1 | indent
"$DEMO" latency "$VIA_BOUNCER dbname=orders" 4 | sed 's/^/with the flood, gated: /'
wait "$flood" || true
cat "$WORK/flood.out" | indent
sql -c "SELECT usher.set_service('reporting', max_active => 0)" >/dev/null   # the gate off
"$DEMO" flood "$DIRECT" 8 6 >"$WORK/flood.out" 2>&1 &
flood=$!
pids+=($flood)
await 20 bash -c "[[ \$(psql -X -At -c \"SELECT count(*) FROM usher.backends WHERE service = 'reporting' AND state = 'active'\") -ge 8 ]]"
"$DEMO" latency "$VIA_BOUNCER dbname=orders" 4 | sed 's/^/with the flood, no gate: /'
wait "$flood" || true
cat "$WORK/flood.out" | indent
sql -c "SELECT usher.set_service('reporting', max_active => 1)" >/dev/null

section "5. The pool advice closes it" \
  "usher advice sizes each service's pools; a libusher pool applies it (size_from_advice); the leaked lease goes back"
"$USHER" advice --instances payments=2 | indent
"$DEMO" advice "$DIRECT" payments 2
exec {leak_fd}>&-   # the leaking program ends: its lease is returned
await 10 bash -c "[[ \$(psql -X -At -c 'SELECT count(*) FROM usher.leases') == 0 ]]"
echo "the leaking pool closed: usher leases now lists $(psql -X -At -c 'SELECT count(*) FROM usher.leases') lease(s)"

echo
echo "Demo finished in $((SECONDS - started)) s; stopping PgBouncer and the cluster."
