#!/usr/bin/env bash
# Time from the loss of the primary (kill -9 of its postmaster) to the first write
# acknowledged by the new primary, under the steady write load of build/tools/ha_writer
# (libusher; tests/integration/tools/ha_writer.cpp). Recorded in bench/RESULTS.md.
#
#   bench/ha/failover.sh by-hand [RUNS]   a primary and a streaming standby (the harness);
#                                         the standby is promoted with `pg_ctl promote` as
#                                         soon as the kill returns (an operator at once)
#   bench/ha/failover.sh patroni [RUNS]   tests/integration/patroni.sh RUNS times (Patroni decides)
#
# Prints each run's time and the median (RUNS: default 5). Not a test: nothing asserted.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../../tests/harness/cluster.sh"
mode=${1:?by-hand or patroni}
runs=${2:-5}
make --no-print-directory -s -C "$REPO_ROOT/tests/integration/tools" || exit 1
TOOLS=$REPO_ROOT/build/tools
times=()

by_hand_once() {
  local P=bench-ha-primary S=bench-ha-standby log kill_ms first port_p port_s pid
  cluster_destroy $S; cluster_destroy $P
  cluster_start $P synchronous_commit=on || return 1
  cluster_standby $S $P || return 1
  port_p=$(cat "$(cluster_dir $P)/port"); port_s=$(cat "$(cluster_dir $S)/port")
  psql -X -q -h 127.0.0.1 -p "$port_p" -U postgres -d postgres \
    -c "CREATE TABLE public.ha_writes (id bigint PRIMARY KEY, port int)"
  log=$(mktemp)
  "$TOOLS/ha_writer" "dbname=postgres user=postgres connect_timeout=2" \
    "127.0.0.1:$port_p,127.0.0.1:$port_s" "$log" 0 &
  pid=$!
  for _ in $(seq 1 600); do [[ $(grep -c ' ok ' "$log") -ge 50 ]] && break; sleep 0.05; done
  kill_ms=$(date +%s%3N)
  kill -9 "$(head -1 "$(cluster_dir $P)/data/postmaster.pid")"
  as_pg_user "$PG_BIN/pg_ctl" -D "$(cluster_dir $S)/data" promote >/dev/null
  for _ in $(seq 1 600); do
    first=$(awk -v k="$kill_ms" -v p="$port_s" '$3 == "ok" && $1 >= k && $4 == p {print $1; exit}' "$log")
    [[ -n $first ]] && break; sleep 0.05
  done
  kill "$pid"; wait "$pid"
  rm -f "$log"
  cluster_destroy $S; cluster_destroy $P
  [[ -n $first ]] && echo $((first - kill_ms))
}

patroni_once() {
  "$REPO_ROOT/tests/integration/patroni.sh" 2>&1 |
    sed -n "s/^# failover: kill -9 of the leader's postmaster to the first write acknowledged by n[0-9]: \([0-9]*\) ms$/\1/p"
}

for i in $(seq 1 "$runs"); do
  case $mode in
    by-hand) t=$(by_hand_once 2>/dev/null | tail -1) ;;
    patroni) t=$(patroni_once | tail -1) ;;
    *) echo "usage: $0 by-hand|patroni [RUNS]" >&2; exit 2 ;;
  esac
  echo "run $i: ${t:-failed} ms"
  [[ -n $t ]] && times+=("$t")
done
[[ ${#times[@]} -gt 0 ]] || exit 1
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
echo "$mode: median ${median} ms of ${#times[@]} runs (${times[*]})"
