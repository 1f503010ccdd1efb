#!/usr/bin/env bash
# A real primary and a real streaming standby (pg_basebackup -R on loopback):
# usher.replication_status() on both sides, health()'s replication checks caught up,
# replay paused and resumed (health() and metrics() follow it; both servers' metrics
# pass promtool), the service registry enforced on the standby as replayed --
# a quota changed on the primary is enforced there without a restart -- and after
# pg_promote() the new primary enforces the same quotas and takes registry changes.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"
source "$HERE/../harness/sessions.sh"

PRIMARY=replicas-primary STANDBY=replicas-standby
# A short sample interval: the launcher notes replay catching up, and the standby's
# registry follower polls, at this interval (the standby inherits the setting).
scenario_start $PRIMARY usher.sample_interval=100ms

P=(psql -X -At -v ON_ERROR_STOP=1 -U postgres -h "$PGHOST" -p "$PGPORT")
"${P[@]}" -c "CREATE EXTENSION pg_usher" -c "CREATE TABLE ticks (t timestamptz)" -c "CREATE ROLE app LOGIN" \
  -c "SELECT usher.set_service('orders', max_connections => 3)" >/dev/null
SCENARIO_CLUSTERS+=("$STANDBY")
cluster_destroy $STANDBY
cluster_standby $STANDBY $PRIMARY || exit 1
STANDBY_ENV=$(cluster_env $STANDBY)
eval "$STANDBY_ENV"
S=(psql -X -At -v ON_ERROR_STOP=1 -U postgres -h "$PGHOST" -p "$PGPORT")
# Sessions held with hold (sessions.sh) log in as the ordinary role app, to the standby.
on_standby() { eval "$STANDBY_ENV"; export PGUSER=app; }

# --- replication_status() on both sides
await 30 "${P[@]}" -c "SELECT 1/(count(*) FILTER (WHERE state = 'streaming'))::int FROM usher.replication_status()"
assert_eq "$("${P[@]}" -c "SELECT role, state, sync_state, standby_name <> '', replay_lsn IS NOT NULL, lag_bytes >= 0
                            FROM usher.replication_status()" | tr '\n' ' ')" "primary|streaming|async|t|t|t " \
  "primary: one row, for the streaming standby (name, sync state, replay LSN, lag in bytes)"
await 30 "${S[@]}" -c "SELECT 1/(state = 'streaming')::int FROM usher.replication_status()"
assert_eq "$("${S[@]}" -c "SELECT role, state, upstream_host IS NOT NULL, upstream_port = $(cat "$(cluster_dir $PRIMARY)/port"),
                                   received_lsn IS NOT NULL, replay_lsn IS NOT NULL, replay_paused
                            FROM usher.replication_status()")" "standby|streaming|t|t|t|t|f" \
  "standby: one row: streaming from the primary's port, received and replayed LSNs, replay running"
assert_eq "$("${P[@]}" -c "SELECT string_agg(status, ' ') FROM usher.health() WHERE \"check\" LIKE 'replication%'")" \
  "ok ok ok" "primary health(): the replication checks are ok, one row each for the one standby"
assert_match "$("${P[@]}" -c "SELECT detail FROM usher.health() WHERE \"check\" = 'replication_lag'")" \
  "^standby .* \(.*, streaming\): replay lag .*, [0-9]+ bytes behind$" "primary health(): the row names the streaming standby"
await 30 "${S[@]}" -c "SELECT 1/(lag_bytes = 0)::int FROM usher.replication_status()"
assert_eq "$("${S[@]}" -c "SELECT string_agg(status || ' ' || value, ', ') FROM usher.health()
                            WHERE \"check\" LIKE 'replication%'")" "ok 0, ok 0, ok 0" \
  "standby health(): caught up, lag 0 seconds and 0 bytes, streaming"
assert_eq "$("${S[@]}" -c "SELECT usher.ready()")" "t" "standby: ready"
before=$("${S[@]}" -c "SELECT replay_lsn FROM usher.replication_status()")
"${P[@]}" -c "INSERT INTO ticks VALUES (now())" >/dev/null
assert_cmd "standby: the replayed LSN advances after a write on the primary" \
  await 30 "${S[@]}" -c "SELECT 1/(replay_lsn > '$before')::int FROM usher.replication_status()"
assert_cmd "primary: the standby's replay LSN catches up with the primary's" \
  await 30 "${P[@]}" -c "SELECT 1/(replay_lsn >= pg_current_wal_lsn())::int FROM usher.replication_status()"

# --- the registry on the standby: what it replayed at start, then every change
on_standby
hold orders/api 4
assert_match "$HELD/$HELD_ERROR" '^3/.*FATAL:  53300: too many connections for service "orders": 3 of 3 in use' \
  "standby: the quota replayed before its start is enforced on read-only sessions (3 admitted, the 4th refused 53300)"
release_all
"${P[@]}" -c "SELECT usher.set_service('orders', max_connections => 2)" >/dev/null
assert_cmd "standby: the changed quota is published once replayed, without a restart" \
  await 30 "${S[@]}" -c "SELECT 1/count(*)::int FROM usher.published_services WHERE name = 'orders' AND max_connections = 2"
hold orders/api 3
assert_match "$HELD/$HELD_ERROR" '^2/.*FATAL:  53300: too many connections for service "orders": 2 of 2 in use' \
  "standby: the quota lowered on the primary is enforced (2 admitted, the 3rd refused 53300)"
release_all

# --- the gate on the standby: read-only statements queue at max_active as well
"${P[@]}" -c "SELECT usher.set_service('reports', max_active => 1)" >/dev/null
await 30 "${S[@]}" -c "SELECT 1/count(*)::int FROM usher.published_services WHERE name = 'reports' AND max_active = 1"
PGUSER=postgres session_open holder
session_send holder "SELECT pg_advisory_lock(7), 'locked';"
await 30 session_seen holder locked
session_open first reports/first
session_send first "SELECT pg_advisory_lock_shared(7), 'first done';"
await 30 gate_is reports "1 0"
session_open second reports/second
session_send second "SELECT 'second done';"
assert_cmd "standby: a second read-only statement of reports queues behind the running one (max_active 1)" \
  await 30 gate_is reports "1 1"
session_send holder "SELECT pg_advisory_unlock(7);"
assert_cmd "standby: it runs once the first has ended" await 30 session_seen second "second done"
session_close first; session_close second; session_close holder

# --- replay paused: real lag, health() and metrics() report it
# Wait until the launcher has seen replay caught up more than a second after the last
# replayed commit (the primary idle meanwhile), so that a lag counted from that commit
# would be over a second more than one counted from the catch-up.
assert_cmd "standby: replay seen caught up a second after the last replayed commit" \
  await 30 "${S[@]}" -c "SELECT 1/coalesce(usher.replay_caught_up_internal() > pg_last_xact_replay_timestamp() + interval '1s', false)::int"
"${S[@]}" -c "SELECT pg_wal_replay_pause()" >/dev/null
await 30 "${S[@]}" -c "SELECT 1/(pg_get_wal_replay_pause_state() = 'paused')::int"
"${P[@]}" -c "INSERT INTO ticks SELECT now() FROM generate_series(1, 1000)" >/dev/null
assert_cmd "standby: WAL received while replay is paused is lag in bytes" \
  await 30 "${S[@]}" -c "SELECT 1/(lag_bytes > 8192)::int FROM usher.replication_status()"
assert_eq "$("${S[@]}" -c "SELECT replay_paused, lag_seconds > 0,
                                   lag_seconds < extract(epoch FROM clock_timestamp() - last_replay_time) - 1
                            FROM usher.replication_status()")" "t|t|t" \
  "standby: replay paused; the lag counts from when replay was last caught up, not from the last replayed commit"
lowered="SET usher.replication_lag_warning = '1ms'; SET usher.replication_lag_bytes_warning = '8kB';"
assert_eq "$("${S[@]}" -c "$lowered" -c "SELECT \"check\" || ' ' || status FROM usher.health()
                                          WHERE \"check\" LIKE 'replication%'" | tail -3 | tr '\n' ' ')" \
  "replication_lag warning replication_lag_bytes warning replication_state warning " \
  "standby health(): the lag in seconds and in bytes and the paused replay are warnings"
assert_match "$("${S[@]}" -c "SELECT detail FROM usher.health() WHERE \"check\" = 'replication_state'")" \
  "^standby \(streaming, following .*\): [0-9]+ bytes received but not yet replayed; replay is paused$" \
  "standby health(): the detail names the primary it follows and says replay is paused"
metrics=$("${S[@]}" -c "SELECT usher.metrics()")
assert_eq "$(grep -E '^usher_replication_(is_standby|replay_paused)' <<<"$metrics" | sed 's/{.*}//' | tr '\n' ' ')" \
  "usher_replication_is_standby 1 usher_replication_replay_paused 1 " "standby metrics: a standby, replay paused"
assert_match "$(grep '^usher_replication_lag_bytes' <<<"$metrics")" '^usher_replication_lag_bytes\{upstream=".+"\} [1-9][0-9]*$' \
  "standby metrics: its lag in bytes, labelled with the primary it follows"
assert_cmd "standby metrics pass promtool check metrics" promtool check metrics <<<"$metrics"
assert_eq "$("${P[@]}" -c "$lowered" -c "SELECT status FROM usher.health() WHERE \"check\" = 'replication_lag_bytes'" | tail -1)" \
  "warning" "primary health(): the standby that does not replay is a warning"
metrics=$("${P[@]}" -c "SELECT usher.metrics()")
assert_match "$(grep -E '^usher_replication_(is_standby|lag_bytes|streaming)' <<<"$metrics" | tr '\n' ' ')" \
  '^usher_replication_is_standby 0 usher_replication_lag_bytes\{standby=".+",client_addr=".+"\} [1-9][0-9]* usher_replication_streaming\{standby=".+",client_addr=".+"\} 1 $' \
  "primary metrics: one series per standby, its lag in bytes, streaming"
assert_match "$(grep '^usher_replication_replay_lag_bytes' <<<"$metrics")" \
  '^usher_replication_replay_lag_bytes\{standby=".+",client_addr=".+"\} [1-9][0-9]*$' \
  "primary metrics: the 1.0.0 family of bytes each standby has yet to replay, too"
assert_cmd "primary metrics pass promtool check metrics" promtool check metrics <<<"$metrics"

"${S[@]}" -c "SELECT pg_wal_replay_resume()" >/dev/null
assert_cmd "standby: lag back to 0 bytes and 0 seconds once replay resumes" \
  await 30 "${S[@]}" -c "SELECT 1/(lag_bytes = 0 AND lag_seconds = 0 AND NOT replay_paused)::int FROM usher.replication_status()"
assert_eq "$("${S[@]}" -c "$lowered" -c "SELECT string_agg(status, ' ') FROM usher.health()
                                          WHERE \"check\" LIKE 'replication%'" | tail -1)" "ok ok ok" \
  "standby health(): the replication checks are ok again"

# --- promotion: the new primary enforces the same quotas and takes registry changes
"${S[@]}" -c "SELECT pg_promote()" >/dev/null
assert_eq "$("${S[@]}" -c "SELECT role, state IS NULL FROM usher.replication_status()")" "primary|t" \
  "promoted: a primary with no standby"
on_standby
hold orders/api 3
assert_match "$HELD/$HELD_ERROR" '^2/.*FATAL:  53300: too many connections for service "orders": 2 of 2 in use' \
  "promoted: the quota of the old primary is enforced without a restart"
release_all
"${S[@]}" -c "SELECT usher.set_service('orders', max_connections => 4)" >/dev/null
hold orders/api 5
assert_match "$HELD/$HELD_ERROR" '^4/.*FATAL:  53300: too many connections for service "orders": 4 of 4 in use' \
  "promoted: a registry change on the new primary is enforced at once"
release_all
assert_done
