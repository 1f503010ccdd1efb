#!/usr/bin/env bash
# Replication lag, measured on a real streaming standby: health() on the primary reports
# one row per standby, the standby reports its own replay delay; pausing replay while
# the primary writes turns both to warning, resuming brings them back to ok. The
# metrics of both servers pass promtool.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

PRIMARY=repl-primary STANDBY=repl-standby
trap 'cluster_destroy $STANDBY; cluster_destroy $PRIMARY' EXIT
cluster_destroy $STANDBY; cluster_destroy $PRIMARY
cluster_start $PRIMARY || exit 1
eval "$(cluster_env $PRIMARY)"; P=(psql -X -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT")
"${P[@]}" -c "CREATE EXTENSION pg_usher" -c "CREATE TABLE ticks (t timestamptz)" >/dev/null
cluster_standby $STANDBY $PRIMARY || exit 1
eval "$(cluster_env $STANDBY)"; S=(psql -X -At -v ON_ERROR_STOP=1 -h "$PGHOST" -p "$PGPORT")

await 30 "${P[@]}" -c "SELECT 1/(count(*) FILTER (WHERE state = 'streaming'))::int FROM pg_stat_replication"
assert_eq "$("${P[@]}" -c "SELECT status FROM usher.health() WHERE \"check\" = 'replication_lag'")" "ok" \
  "primary: one replication_lag row for the one standby, ok"
assert_match "$("${P[@]}" -c "SELECT detail FROM usher.health() WHERE \"check\" = 'replication_lag'")" \
  "^standby .* streaming" "primary: the row names the streaming standby"
await 30 "${S[@]}" -c "SELECT 1/(pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn())::int"
assert_eq "$("${S[@]}" -c "SELECT status || ' ' || value FROM usher.health() WHERE \"check\" = 'replication_lag'")" "ok 0" \
  "standby: caught up, lag 0"
assert_eq "$("${S[@]}" -c "SELECT usher.ready()")" "t" "standby: ready"

# A commit replayed, then replay paused while the primary keeps writing: the standby
# falls behind for real, and its delay counts from that last replayed commit.
"${P[@]}" -c "INSERT INTO ticks VALUES (now())" >/dev/null
await 30 "${S[@]}" -c "SELECT 1/(count(*))::int FROM ticks"
"${S[@]}" -c "SELECT pg_wal_replay_pause()" >/dev/null
for i in $(seq 1 20); do "${P[@]}" -c "INSERT INTO ticks VALUES (now())" >/dev/null; sleep 0.05; done
sleep 1
lowered="SET usher.replication_lag_warning = '200ms'; SET usher.replication_lag_critical = '1h';"
assert_eq "$("${S[@]}" -c "$lowered" -c "SELECT status FROM usher.health() WHERE \"check\" = 'replication_lag'" | tail -1)" "warning" \
  "standby: replay paused behind the primary is a warning"
assert_match "$("${S[@]}" -c "SELECT detail FROM usher.health() WHERE \"check\" = 'replication_lag'")" \
  "bytes received but not yet replayed; replay is paused" "standby: detail says replay is paused"
assert_eq "$("${P[@]}" -c "$lowered" -c "SELECT status FROM usher.health() WHERE \"check\" = 'replication_lag'" | tail -1)" "warning" \
  "primary: the lagging standby is a warning"
assert_match "$("${P[@]}" -c "SELECT value FROM usher.health() WHERE \"check\" = 'replication_lag'")" \
  "^[0-9.]+$" "primary: the lag value is a number of seconds"
assert_match "$("${P[@]}" -c "SELECT usher.metrics()" | grep '^usher_replication_replay_lag_bytes')" \
  '^usher_replication_replay_lag_bytes\{standby=".*",client_addr=".*"\} [1-9][0-9]*$' \
  "primary metrics: bytes the standby has yet to replay"

"${S[@]}" -c "SELECT pg_wal_replay_resume()" >/dev/null
"${P[@]}" -c "INSERT INTO ticks VALUES (now())" >/dev/null
await 30 "${S[@]}" -c "SELECT 1/(pg_last_wal_replay_lsn() >= pg_last_wal_receive_lsn())::int"
assert_eq "$("${S[@]}" -c "$lowered" -c "SELECT status FROM usher.health() WHERE \"check\" = 'replication_lag'" | tail -1)" "ok" \
  "standby: ok again once replay catches up"

for side in primary standby; do
  if [[ $side == primary ]]; then Q=("${P[@]}"); else Q=("${S[@]}"); fi
  metrics=$("${Q[@]}" -c "SELECT usher.metrics()")
  assert_cmd "$side: metrics pass promtool check metrics" promtool check metrics <<<"$metrics"
done
assert_done
