#!/usr/bin/env bash
# 1,200 concurrent users for 30 s through PgBouncer 1.18 in transaction mode, configured
# by `usher pgbouncer-config` from the registry of the 7 services (auth, orders,
# payments, inventory, search, notifications, reporting), pg_usher admission on
# (tests/integration/tools/usher_load.cpp drives them; docs/load.md). Checked: every
# user connects, zero errors, every service served, no service starved (each service's
# served fraction of its offered load is at least half the median fraction of the 7).
# The quota under load is not checked yet (docs/load.md, "Open").
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/pgbouncer.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"
source "$HERE/../harness/usher_cli.sh"

USERS=${USHER_LOAD_USERS:-1200} DURATION=${USHER_LOAD_DURATION:-30}
LOAD=$REPO_ROOT/build/tools/usher_load
[[ -x $LOAD ]] || make --no-print-directory -s -C "$HERE/tools" || exit 1
usher_cli_build
BOUNCER=load-1200-pgb
at_exit "bouncer_destroy $BOUNCER"
# 1,200 clients, the pools' server connections, the log: file descriptors for PgBouncer
# (started from this shell, so it inherits the limit) and for the generator.
ulimit -n 4096 || exit 1
scenario_start load-1200 usher.cpu_cores=2 usher.sample_interval=1h max_connections=200
chmod 755 "$WORK"   # PgBouncer runs as postgres and reads the generated files from here
"${SU[@]}" >/dev/null <<'SQL'
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN;
GRANT USAGE ON SCHEMA public TO app;
CREATE TABLE public.load_items(id int PRIMARY KEY, name text, stock int);
INSERT INTO public.load_items SELECT i, 'item ' || i, 1000000 FROM generate_series(1, 1000) i;
CREATE TABLE public.load_orders(id bigserial PRIMARY KEY, item int, amount numeric);
CREATE TABLE public.load_payments(id bigserial PRIMARY KEY, order_ref int, amount numeric);
CREATE TABLE public.load_notifications(id bigserial PRIMARY KEY, ref int);
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA public TO app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app;
SELECT usher.set_service('auth', max_connections => 8, priority => 50);
SELECT usher.set_service('orders', max_connections => 10, priority => 100);
SELECT usher.set_service('payments', max_connections => 8, priority => 100);
SELECT usher.set_service('inventory', max_connections => 8);
SELECT usher.set_service('search', max_connections => 8);
SELECT usher.set_service('notifications', max_connections => 4);
SELECT usher.set_service('reporting', max_connections => 4, max_active => 2);
SQL

usher_run pgbouncer-config -o "$WORK/pgbouncer.ini"
usher_run pgbouncer-config --databases-only -o "$WORK/databases.ini"
assert_eq "$RC" "0" "pgbouncer-config writes the configuration"
BOUNCER_BASE_CONFIG=$WORK/pgbouncer.ini BOUNCER_DATABASES_FILE=$WORK/databases.ini \
  BOUNCER_USERS="postgres app" BOUNCER_NOFILE=4096 bouncer_start $BOUNCER load-1200 || exit 1
assert_eq "$(bouncer_admin $BOUNCER "SHOW CONFIG" | awk -F'|' '$1 == "max_client_conn" { print $2 }')" "2000" \
  "PgBouncer takes 2,000 clients (the generated max_client_conn)"

bdir=$(bouncer_dir $BOUNCER)
started=$SECONDS
"$LOAD" --users "$USERS" --duration "$DURATION" \
  --conninfo "host=$bdir port=$(cat "$bdir/port") user=app dbname=%s connect_timeout=10" \
  --sampler "host=$PGHOST port=$PGPORT user=postgres dbname=postgres" \
  >"$WORK/load.out" 2>"$WORK/load.err"
rc=$?
cat "$WORK/load.out"; head -c 2000 "$WORK/load.err"
echo "load: $((SECONDS - started)) s of wall time"
assert_eq "$rc" "0" "all $USERS users connect through PgBouncer and run for ${DURATION} s"
total=$(grep '^total ' "$WORK/load.out")
assert_match "$total" "^total users $USERS tx [0-9]+ errors 0 " "zero errors among $USERS users"
field() { awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }' <<<"$1"; }
fractions=()
for svc in auth orders payments inventory search notifications reporting; do
  line=$(grep "^service $svc " "$WORK/load.out")
  tx=$(field "$line" tx) offered=$(field "$line" offered)
  assert_cmd "$svc is served (tx $tx)" test "${tx:-0}" -gt 0
  fractions+=("$svc $(awk -v t="${tx:-0}" -v o="${offered:-1}" 'BEGIN { printf "%.3f", t / o }')")
  # Not asserted yet: the sampled max_current against the quota. With the pools
  # pool_advice gives for 2 cores (size 1) it cannot reach a quota, so the check could
  # not fail (docs/load.md, "Open").
done
median=$(printf '%s\n' "${fractions[@]}" | awk '{ print $2 }' | sort -g | sed -n 4p)
for f in "${fractions[@]}"; do
  assert_cmd "${f%% *} is not starved: served fraction ${f#* } of its offered load >= half the median $median" \
    awk -v f="${f#* }" -v m="$median" 'BEGIN { exit !(f >= m / 2) }'
done
assert_done
