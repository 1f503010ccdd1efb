#!/usr/bin/env bash
# 1,200 concurrent users for 30 s through PgBouncer 1.18 in transaction mode, configured
# by `usher pgbouncer-config` from the registry of the 7 services (auth, orders,
# payments, inventory, search, notifications, reporting), pg_usher admission on
# (tests/integration/tools/usher_load.cpp drives them; docs/load.md). Checked: every
# user connects, zero errors, every service served, no service starved (each service's
# served fraction of its offered load is at least half the median fraction of the 7),
# and the quotas under load: PgBouncer's pools are larger than the quotas, so it asks
# for more server connections than pg_usher admits; one service (notifications) is
# driven to its quota deterministically (sessions through PgBouncer held on an advisory
# lock, more of them than the quota), the refusals (53300) stay inside PgBouncer (its
# clients wait, none sees an error), the sampled `current` of that service reaches its
# quota and no service's sampled `current` or `peak` exceeds its quota.
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
"${SU[@]}" -q -f "$HERE/tools/load_schema.sql" -f "$HERE/tools/load_services.sql" >/dev/null || exit 1

usher_run pgbouncer-config -o "$WORK/pgbouncer.ini"
usher_run pgbouncer-config --databases-only -o "$WORK/databases.ini"
assert_eq "$RC" "0" "pgbouncer-config writes the configuration"
# Pools larger than every quota (4-10): PgBouncer then opens server connections up to
# the quota and asks for more, which pg_usher refuses (FATAL 53300). Its clients keep
# waiting on the open ones (docs/load.md, "The quota under load").
POOL=12
sed -i -E "s/ pool_size=[0-9]+/ pool_size=$POOL/; s/ max_db_connections=[0-9]+/ max_db_connections=$POOL/" \
  "$WORK/databases.ini"
assert_eq "$(grep -c " pool_size=$POOL .*max_db_connections=$POOL" "$WORK/databases.ini")" "8" \
  "every alias's PgBouncer pool (the 7 services and default) is $POOL, above the quotas"
BOUNCER_BASE_CONFIG=$WORK/pgbouncer.ini BOUNCER_DATABASES_FILE=$WORK/databases.ini \
  BOUNCER_USERS="postgres app" BOUNCER_NOFILE=4096 bouncer_start $BOUNCER load-1200 || exit 1
assert_eq "$(bouncer_admin $BOUNCER "SHOW CONFIG" | awk -F'|' '$1 == "max_client_conn" { print $2 }')" "2000" \
  "PgBouncer takes 2,000 clients (the generated max_client_conn)"

bdir=$(bouncer_dir $BOUNCER) bport=$(cat "$(bouncer_dir $BOUNCER)/port")
# The constrained service: QUOTA+2 sessions through PgBouncer wait on an advisory lock
# this session holds, so PgBouncer needs more server connections than the quota.
QUOTA=4
session_open locker load/locker
session_send locker "SELECT pg_advisory_lock(14), 'locked';"
await 20 session_seen locker locked
started=$SECONDS
"$LOAD" --users "$USERS" --duration "$DURATION" \
  --conninfo "host=$bdir port=$bport user=app dbname=%s connect_timeout=10" \
  --sampler "host=$PGHOST port=$PGPORT user=postgres dbname=postgres" \
  >"$WORK/load.out" 2>"$WORK/load.err" &
load_pid=$!
for i in $(seq $((QUOTA + 2))); do
  PGHOST=$bdir PGPORT=$bport PGUSER=app PGDATABASE=notifications session_open "waiter$i" notifications/waiter
  session_send "waiter$i" "SELECT pg_advisory_xact_lock_shared(14), 'done';"
done
quota_state() {
  "${SU[@]}" -c "SELECT current || ' ' || (rejected_quota_total > 0) FROM usher.service_status
                 WHERE service = 'notifications'"
}
quota_reached() { [[ $(quota_state) == "$QUOTA true" ]]; }
await 20 quota_reached
assert_eq "$(quota_state)" "$QUOTA true" \
  "notifications: $((QUOTA + 2)) waiting clients hold its $QUOTA server connections, PgBouncer's next login is refused"
session_send locker "SELECT pg_advisory_unlock(14), 'unlocked';"
waiters_done() { for i in $(seq $((QUOTA + 2))); do session_seen "waiter$i" done || return 1; done; }
await 30 waiters_done
for i in $(seq $((QUOTA + 2))); do session_close "waiter$i"; done
assert_eq "$(cat "$WORK"/waiter*.out | grep -c '|done$')/$(cat "$WORK"/waiter*.out | grep -ci 'error\|fatal')" \
  "$((QUOTA + 2))/0" "every waiting client is served once the lock is released, none sees an error"
wait $load_pid
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
  max=$(field "$line" max_current) quota=$(field "$line" quota)
  if [[ $svc == notifications ]]; then
    assert_eq "$max/$quota" "$QUOTA/$QUOTA" "notifications: the sampled current reached its quota, never more"
  else
    assert_cmd "$svc: sampled current $max within its quota $quota" test "${max:--1}" -ge 0 -a "${max:-99}" -le "${quota:-0}"
  fi
done
# peak: the most sessions a service had at once since the server started (counted at
# every admission, so nothing between two samples escapes). Superusers pass quotas and
# count in their service, and a quota of 0 means none: 'default' (0, the sampler's
# superuser session) is not a quota overshoot (docs/load.md).
assert_eq "$("${SU[@]}" -c "SELECT string_agg(service || ' ' || peak || '>' || max_connections, ', ')
                            FROM usher.service_status WHERE max_connections > 0 AND peak > max_connections")" "" \
  "no service's peak exceeds its quota"
median=$(printf '%s\n' "${fractions[@]}" | awk '{ print $2 }' | sort -g | sed -n 4p)
for f in "${fractions[@]}"; do
  assert_cmd "${f%% *} is not starved: served fraction ${f#* } of its offered load >= half the median $median" \
    awk -v f="${f#* }" -v m="$median" 'BEGIN { exit !(f >= m / 2) }'
done
assert_done
