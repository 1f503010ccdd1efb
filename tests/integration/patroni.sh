#!/usr/bin/env bash
# High availability on Patroni (docs/ha.md): a real etcd (one member on loopback) and
# three Patroni nodes on loopback, bootstrapped from $PG_CONFIG's binaries, pg_usher
# preloaded on every node. Under a steady write load from libusher (build/tools/ha_writer:
# usher::Cluster, which finds the nodes through Patroni's REST API (GET /cluster) in the
# failover and from the host:port list in the switchover; USHER_HA_WRITER_POOL=1: a
# multi-host Pool), the leader's postmaster
# is killed with SIGKILL; Patroni promotes the synchronous standby. Counted: writes
# acknowledged before, during and after; checked: every acknowledged write is on the new
# primary, and the new primary refuses a login beyond a quota set before the failover
# (53300). Then `patronictl switchover --force` with a writer that waits for the new
# primary: zero failed writes. Printed: the time from the kill (and from the switchover
# command) to the first acknowledged write on the new leader.
#
# Timing knobs reduced for the test (docs/ha.md, "Timing"): ttl 10 s, loop_wait 1 s,
# retry_timeout 3 s, primary_start_timeout 0 (a crashed leader is failed over at once
# rather than restarted in place), synchronous_mode on (no acknowledged write lost).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
TOOLS=$REPO_ROOT/build/tools
make --no-print-directory -s -C "$HERE/tools" || exit 1
# USHER_HA_WRITER: another build of the writer (e.g. one from another checkout, to compare).
HA_WRITER=${USHER_HA_WRITER:-$TOOLS/ha_writer}
source "$HERE/../harness/sessions.sh"

for bin in patroni patronictl etcd curl jq; do
  command -v $bin >/dev/null || { echo "patroni.sh: $bin not found (tests/harness/deps.sh installs it)"; exit 1; }
done

T=$(mktemp -d /tmp/usher-ha.XXXXXX)
chmod 755 "$T"
[[ $(id -u) -eq 0 ]] && chown postgres: "$T"
PIDS=()
cleanup() {
  release_all 2>/dev/null
  [[ -n ${WRITER:-} ]] && kill "$WRITER" 2>/dev/null
  for n in 1 2 3; do [[ -f $T/n$n/patroni.pid ]] && kill "$(cat "$T/n$n/patroni.pid")" 2>/dev/null; done
  for n in 1 2 3; do
    for _ in $(seq 1 100); do [[ -f $T/n$n/data/postmaster.pid ]] || break; sleep 0.1; done
    [[ -f $T/n$n/data/postmaster.pid ]] && as_pg_user "$PG_BIN/pg_ctl" -D "$T/n$n/data" -m immediate stop >/dev/null 2>&1
  done
  [[ -f $T/etcd.pid ]] && kill "$(cat "$T/etcd.pid")" 2>/dev/null
  wait 2>/dev/null
  if [[ ${ASSERT_FAILED:-0} -ne 0 ]]; then
    for n in 1 2 3; do echo "--- patroni n$n log (tail)"; tail -n 15 "$T/n$n/patroni.log"; done
  fi
  # USHER_HA_KEEP=DIR keeps the writers' and nodes' logs there.
  if [[ -n ${USHER_HA_KEEP:-} ]]; then
    mkdir -p "$USHER_HA_KEEP"; cp "$T"/*.log "$USHER_HA_KEEP"/ 2>/dev/null
    for n in 1 2 3; do cp "$T/n$n/patroni.log" "$USHER_HA_KEEP/n$n.log" 2>/dev/null; done
  fi
  rm -rf "$T"
}
trap cleanup EXIT

# bg PIDFILE LOG CMD...: runs CMD as the server's OS user in the background.
bg() {
  local pidfile=$1 log=$2; shift 2
  as_pg_user bash -c 'echo $$ >"$0"; log=$1; shift; exec "$@" >>"$log" 2>&1' "$pidfile" "$log" "$@" &
}
now_ms() { date +%s%3N; }

EC=$(free_port) EP=$(free_port)
bg "$T/etcd.pid" "$T/etcd.log" etcd --name e1 --data-dir "$T/etcd" \
  --listen-client-urls "http://127.0.0.1:$EC" --advertise-client-urls "http://127.0.0.1:$EC" \
  --listen-peer-urls "http://127.0.0.1:$EP" --initial-advertise-peer-urls "http://127.0.0.1:$EP" \
  --initial-cluster "e1=http://127.0.0.1:$EP" --log-level error
await 30 curl -sf "http://127.0.0.1:$EC/health" || { echo "etcd did not start"; cat "$T/etcd.log"; exit 1; }

declare -A PORT REST
for n in 1 2 3; do
  PORT[$n]=$(free_port); REST[$n]=$(free_port)
  as_pg_user mkdir -p "$T/n$n"
  as_pg_user tee "$T/n$n/patroni.yml" >/dev/null <<YML
scope: usher-ha-test
name: n$n
log: {level: INFO}
restapi:
  listen: 127.0.0.1:${REST[$n]}
  connect_address: 127.0.0.1:${REST[$n]}
etcd3:
  hosts: 127.0.0.1:$EC
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 1
    retry_timeout: 3
    maximum_lag_on_failover: 1048576
    primary_start_timeout: 0
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
  initdb: [{encoding: UTF8}, {locale: C}]
postgresql:
  listen: 127.0.0.1:${PORT[$n]}
  connect_address: 127.0.0.1:${PORT[$n]}
  data_dir: $T/n$n/data
  bin_dir: $PG_BIN
  pgpass: $T/n$n/pgpass
  authentication:
    superuser: {username: postgres}
    replication: {username: postgres}
    rewind: {username: postgres}
  parameters:
    unix_socket_directories: '$T/n$n'
    shared_preload_libraries: pg_usher
    usher.database: postgres
    fsync: 'off'
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 trust
    - host replication all 127.0.0.1/32 trust
YML
done
cluster_json() { curl -sf "http://127.0.0.1:${REST[1]}/cluster" || curl -sf "http://127.0.0.1:${REST[2]}/cluster" ||
  curl -sf "http://127.0.0.1:${REST[3]}/cluster"; }
# leader: the node number whose REST /primary answers 200 (none: empty, status 1).
leader() { for n in 1 2 3; do curl -sf -o /dev/null "http://127.0.0.1:${REST[$n]}/primary" && { echo "$n"; return 0; }; done; return 1; }
has_sync_standby() { cluster_json | jq -e '[.members[] | select(.role == "sync_standby" and (.state == "streaming" or .state == "running"))] | length == 1'; }
is_leader_not() { local l; l=$(leader) && [[ $l != "$1" ]]; }
P() { local n=$1; shift; psql -X -At -v ON_ERROR_STOP=1 -U postgres -h 127.0.0.1 -p "${PORT[$n]}" -d postgres "$@"; }

started=$SECONDS
bg "$T/n1/patroni.pid" "$T/n1/patroni.log" patroni "$T/n1/patroni.yml"
await 60 leader; assert_eq "$(leader)" 1 "n1 bootstraps the cluster and leads"
for n in 2 3; do bg "$T/n$n/patroni.pid" "$T/n$n/patroni.log" patroni "$T/n$n/patroni.yml"; done
replicas_up() { [[ $(cluster_json | jq '[.members[] | select(.role != "leader" and (.state == "streaming" or .state == "running"))] | length') == 2 ]]; }
await 90 replicas_up && await 30 has_sync_standby
assert_cmd "n2 and n3 follow n1, one of them as the synchronous standby" has_sync_standby
echo "# cluster of three up in $((SECONDS - started)) s"

P 1 -c "CREATE EXTENSION pg_usher" -c "CREATE TABLE public.ha_writes (id bigint PRIMARY KEY, port int)" \
  -c "CREATE ROLE app LOGIN" -c "SELECT usher.set_service('orders', max_connections => 2)" >/dev/null
assert_eq "$(for n in 1 2 3; do P $n -c "SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries'"; done | sort -u)" \
  pg_usher "every node preloads pg_usher"

ENDPOINTS="127.0.0.1:${PORT[1]},127.0.0.1:${PORT[2]},127.0.0.1:${PORT[3]}"
REST_URLS="http://127.0.0.1:${REST[1]},http://127.0.0.1:${REST[2]},http://127.0.0.1:${REST[3]}"
# count_ok LOG [SINCE_MS [PORT]]: acknowledged writes in LOG (after SINCE_MS, on PORT).
count_ok() { awk -v s="${2:-0}" -v p="${3:-}" '$3 == "ok" && $1 >= s && (p == "" || $4 == p) {c++} END {print c+0}' "$1"; }
at_least() { [[ $(count_ok "$@" | tail -1) -ge $1 ]]; }
ok_at_least() { local n=$1; shift; [[ $(count_ok "$@") -ge $n ]]; }
first_ok_ms() { awk -v s="$2" -v p="$3" '$3 == "ok" && $1 >= s && $4 == p {print $1; exit}' "$1"; }
# by_state LOG: "3 fail 08006, 1 unknown 08006" (the writes not acknowledged).
by_state() { awk '$3 != "ok" {print $3, $4}' "$1" | sort | uniq -c | awk '{s = s (NR > 1 ? ", " : "") $1 " " $2 " " $3} END {print s}'; }
# missing_on NODE LOG: acknowledged ids of LOG missing on NODE (0 when none is lost).
missing_on() {
  awk '$3 == "ok" {print $2}' "$2" >"$T/acked.txt"; chmod 644 "$T/acked.txt"
  P "$1" -c "CREATE TEMP TABLE acked (id bigint)" -c "\\copy acked FROM '$T/acked.txt'" \
    -c "SELECT count(*) FROM acked WHERE NOT EXISTS (SELECT FROM public.ha_writes w WHERE w.id = acked.id)"
}

# --- failover: SIGKILL of the leader's postmaster -----------------------------------
# The writer's Cluster takes its nodes from Patroni's REST API (ClusterConfig::patroni_urls;
# the Pool writer, USHER_HA_WRITER_POOL=1, the multi-host string of ENDPOINTS).
LOG1=$T/writer1.log
WRITER1_NODES=$REST_URLS
[[ ${USHER_HA_WRITER_POOL:-0} == 1 ]] && WRITER1_NODES=$ENDPOINTS
"$HA_WRITER" "dbname=postgres user=postgres connect_timeout=2" "$WRITER1_NODES" "$LOG1" 0 >"$T/writer1.out" &
WRITER=$!
await 60 ok_at_least 50 "$LOG1"; assert_cmd "the writer is acknowledged on n1" ok_at_least 50 "$LOG1" 0 "${PORT[1]}"
if [[ ${USHER_HA_WRITER_POOL:-0} != 1 ]]; then
  assert_eq "$(grep '^# patroni' "$T/writer1.out")" "# patroni 3 members, leader 127.0.0.1:${PORT[1]}" \
    "the writer's Cluster found the three nodes and the leader through Patroni's REST API"
fi
old=1
KILL_MS=$(now_ms)
kill -9 "$(head -1 "$T/n$old/data/postmaster.pid")"
await 60 is_leader_not $old
new=$(leader); assert_match "$new" '^[23]$' "Patroni promotes a replica after the leader's postmaster is killed"
await 60 ok_at_least 1 "$LOG1" "$KILL_MS" "${PORT[$new]}"
FIRST_MS=$(first_ok_ms "$LOG1" "$KILL_MS" "${PORT[$new]}")
await 60 ok_at_least 50 "$LOG1" "$FIRST_MS"
kill "$WRITER"; wait "$WRITER"; WRITER=
before=$(awk -v k="$KILL_MS" '$3 == "ok" && $1 < k' "$LOG1" | wc -l)
during=$(awk -v k="$KILL_MS" -v f="$FIRST_MS" '$3 == "ok" && $1 >= k && $1 < f' "$LOG1" | wc -l)
after=$(awk -v f="$FIRST_MS" '$3 == "ok" && $1 >= f' "$LOG1" | wc -l)
failed=$(awk '$3 != "ok"' "$LOG1" | wc -l)
echo "# failover: acknowledged $before before the kill, $during during, $after after; $failed failed or unknown"
echo "# failover: not acknowledged, by SQLSTATE: $(by_state "$LOG1")"
echo "# failover: kill -9 of the leader's postmaster to the first write acknowledged by n$new: $((FIRST_MS - KILL_MS)) ms"
assert_cmd "writes are acknowledged on the new leader n$new" test -n "$FIRST_MS"
assert_eq "$(missing_on "$new" "$LOG1" | tail -1)" 0 "every acknowledged write is on the new primary n$new"

export PGHOST=127.0.0.1 PGPORT=${PORT[$new]} PGUSER=app PGDATABASE=postgres
hold orders 3
assert_match "$HELD/$HELD_ERROR" '^2/.*53300: too many connections for service "orders": 2 of 2 in use' \
  "the new primary enforces the quota set before the failover (2 admitted, the 3rd refused 53300)"
release_all
unset PGUSER

# --- switchover: the writer waits for the new primary ------------------------------
await 90 has_sync_standby
assert_cmd "a synchronous standby again after the failover" has_sync_standby
LOG2=$T/writer2.log
"$HA_WRITER" "dbname=postgres user=postgres connect_timeout=2" "$ENDPOINTS" "$LOG2" 30000 1000000 &
WRITER=$!
await 60 ok_at_least 30 "$LOG2" 0 "${PORT[$new]}"
old=$new
SWITCH_MS=$(now_ms)
as_pg_user patronictl -c "$T/n$old/patroni.yml" switchover --force >"$T/switchover.log" 2>&1
assert_cmd "patronictl switchover --force succeeds" grep -q 'Successfully switched over' "$T/switchover.log"
await 60 is_leader_not $old
new=$(leader)
await 60 ok_at_least 30 "$LOG2" "$SWITCH_MS" "${PORT[$new]}"
kill "$WRITER"; wait "$WRITER"; WRITER=
FIRST_MS=$(first_ok_ms "$LOG2" "$SWITCH_MS" "${PORT[$new]}")
echo "# switchover: $(count_ok "$LOG2") acknowledged, first on the new leader n$new $((FIRST_MS - SWITCH_MS)) ms after the command"
echo "# switchover: not acknowledged, by SQLSTATE: $(by_state "$LOG2")"
echo "# switchover: $(awk '$5 == "resolved"' "$LOG2" | wc -l) commit(s) of unknown outcome resolved by writing the id again"
awk '$3 != "ok"' "$LOG2" | head -3 | sed 's/^/#   /'
assert_eq "$(awk '$3 != "ok"' "$LOG2" | wc -l)" 0 "switchover: zero failed writes when the writer waits for the new primary"
assert_eq "$(missing_on "$new" "$LOG2" | tail -1)" 0 "switchover: every acknowledged write is on the new primary n$new"
echo "# patroni.sh: $((SECONDS - started)) s"
assert_done
