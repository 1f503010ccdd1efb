#!/usr/bin/env bash
# The deployment files: the Prometheus alert rules pass promtool's checks and their unit
# tests, and the systemd exporter service, run by hand against a real server, writes
# a metrics file that promtool accepts.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

assert_cmd "the alert rules pass promtool check rules" promtool check rules "$ROOT/deploy/prometheus/usher.rules.yml"
assert_cmd "the alert rules pass their unit tests" bash -c "cd '$ROOT/deploy/prometheus' && promtool test rules usher.rules.test.yml"

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
