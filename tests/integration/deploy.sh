#!/usr/bin/env bash
# The deployment files: the Prometheus alert rules (usher.rules.yml, pool.rules.yml) pass
# promtool's checks and their unit tests, systemd-analyze verify accepts every unit of
# deploy/systemd without a warning, deploy/patroni passes Patroni's, HAProxy's and
# systemd's validators, and the systemd exporter service, run by hand against a real server, writes
# a metrics file that promtool accepts.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

assert_cmd "the alert rules pass promtool check rules" promtool check rules "$ROOT/deploy/prometheus/usher.rules.yml"
assert_cmd "the alert rules pass their unit tests" bash -c "cd '$ROOT/deploy/prometheus' && promtool test rules usher.rules.test.yml"
assert_cmd "the pool alert rules pass promtool check rules" promtool check rules "$ROOT/deploy/prometheus/pool.rules.yml"
assert_cmd "the pool alert rules pass their unit tests" bash -c "cd '$ROOT/deploy/prometheus' && promtool test rules pool.rules.test.yml"

# --- systemd units: systemd-analyze verify, which must say nothing (a misspelt setting
# is only a warning to it). The textfile exporters' scripts are verified from the
# checkout (their units name them where they are installed).
if command -v systemd-analyze >/dev/null; then
  UNITS=$(mktemp -d)
  for unit in "$ROOT"/deploy/systemd/*.service "$ROOT"/deploy/systemd/*.timer; do
    sed "s#/usr/local/bin/pgbouncer-metrics.sh#$ROOT/deploy/pgbouncer/pgbouncer-metrics.sh#" "$unit" >"$UNITS/$(basename "$unit")"
  done
  verify=$(cd "$UNITS" && systemd-analyze verify ./*.service ./*.timer 2>&1)
  assert_eq "$?|$verify" "0|" "systemd-analyze verify accepts every unit of deploy/systemd, without a warning"
  rm -rf "$UNITS"
else
  assert_eq "systemd-analyze missing" "systemd-analyze" "systemd-analyze (package systemd) is installed to verify deploy/systemd"
fi
# --- deploy/patroni (docs/ha.md): Patroni's own validator, HAProxy's, and the drop-in
# on top of Debian's patroni@.service (packages patroni, haproxy: tests/harness/deps.sh).
assert_cmd "patroni --validate-config accepts deploy/patroni/patroni.yml" \
  patroni --validate-config "$ROOT/deploy/patroni/patroni.yml"
assert_cmd "haproxy -c accepts deploy/patroni/haproxy.cfg" haproxy -c -q -f "$ROOT/deploy/patroni/haproxy.cfg"
assert_eq "$(grep -c 'option httpchk GET /primary$' "$ROOT/deploy/patroni/haproxy.cfg")|$(grep -c 'option httpchk GET /replica?lag=' "$ROOT/deploy/patroni/haproxy.cfg")" \
  "1|1" "HAProxy routes on Patroni's /primary and /replica?lag= health endpoints"
if command -v systemd-analyze >/dev/null && [[ -f /lib/systemd/system/patroni@.service ]]; then
  UNITS=$(mktemp -d)
  cp /lib/systemd/system/patroni@.service "$UNITS/"
  cp -r "$ROOT/deploy/patroni/systemd/patroni@.service.d" "$UNITS/"
  verify=$(SYSTEMD_UNIT_PATH=$UNITS: systemd-analyze verify "$UNITS/patroni@15-usher.service" 2>&1)
  assert_eq "$?|$verify" "0|" "systemd-analyze verify accepts Debian's patroni@.service with deploy/patroni's drop-in"
  rm -rf "$UNITS"
fi

unit=$ROOT/deploy/systemd/pgbouncer.service
assert_eq "$(grep -E '^(Restart|After|LimitNOFILE)=' "$unit" | sort | tr '\n' ' ')" \
  "After=network-online.target postgresql.service LimitNOFILE=65536 Restart=on-failure " \
  "the PgBouncer unit restarts on failure, starts after PostgreSQL, and raises the descriptor limit"

NAME=deploy
OUT=$(mktemp -d)
trap 'cluster_destroy $NAME; rm -rf "$OUT"' EXIT
cluster_destroy $NAME
cluster_start $NAME usher.database=postgres || exit 1
eval "$(cluster_env $NAME)"
psql -X -q -c "CREATE EXTENSION pg_usher" -c "CREATE ROLE metrics LOGIN IN ROLE pg_monitor"
# The ExecStart line of the unit, as systemd would run it (but as role metrics, into $OUT).
exec_start=$(sed -n "s/^ExecStart=\/bin\/sh -c '\(.*\)'$/\1/p" "$ROOT/deploy/systemd/usher-metrics.service")
assert_cmd "the exporter command runs as a pg_monitor role" env PGUSER=metrics TEXTFILE_DIR="$OUT" sh -c "$exec_start"
assert_cmd "and writes a file promtool accepts" bash -c "promtool check metrics < '$OUT/usher.prom'"
assert_eq "$(grep -c '^usher_ready 1$' "$OUT/usher.prom")" "1" "the file has usher_ready"
assert_done
