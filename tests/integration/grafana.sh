#!/usr/bin/env bash
# The Grafana dashboard (deploy/grafana/pg_usher.json) against a real Prometheus: the
# JSON is valid, every panel and target uses the ${datasource} variable, and every
# metric name it uses is one a real server's usher.metrics() or a real libusher pool's
# Pool::prometheus() exports. Then, with load on a real server (a queued statement, a
# statement that timed out at the gate, a refused login, a streaming standby, a pool in
# use) scraped every second by a real `prometheus`, every panel query, its template
# variables filled in, must evaluate without error and return at least one series.
# (Also a semaphore held, one waiting on it and one acquire that timed out.) The PgBouncer
# row is held to the same bar: a real PgBouncer (pool_size 1) in front of the server, one
# client that waited for its server connection and one still waiting, and its metrics
# written by deploy/pgbouncer/pgbouncer-metrics.sh.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/pgbouncer.sh"
source "$HERE/../harness/assert.sh"

DASH=$REPO_ROOT/deploy/grafana/pg_usher.json
NAME=grafana STANDBY=grafana-standby BOUNCER=grafana-bouncer
OUT=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  bouncer_destroy $BOUNCER
  cluster_destroy $STANDBY
  cluster_destroy $NAME
  rm -rf "$OUT"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail_early() { echo "not ok - $1"; echo "0 1" >>"${USHER_COUNTS:-/dev/null}"; exit 1; }

# --- The JSON itself.
assert_cmd "the dashboard is valid JSON" jq empty "$DASH"
assert_eq "$(jq -r '.schemaVersion' "$DASH")" "38" "schemaVersion 38"
assert_eq "$(jq -c '.templating.list[] | select(.name == "datasource") | [.type, .query]' "$DASH")" \
  '["datasource","prometheus"]' "a datasource variable of type prometheus"
assert_match "$(jq -r '.templating.list[] | select(.name == "service") | .query.query' "$DASH")" \
  '^label_values\(usher_[a-z_]+.*, service\)$' "a service variable from label_values of a pg_usher metric"
assert_match "$(jq -r '.templating.list[] | select(.name == "instance") | .query.query' "$DASH")" \
  '^label_values\(usher_[a-z_]+, instance\)$' "an instance variable"
assert_eq "$(jq '[.panels[] | select(.type != "row") | select(.datasource.uid != "${datasource}" or .datasource.type != "prometheus")] | length' "$DASH")" \
  "0" "every panel's datasource is \${datasource}"
assert_eq "$(jq '[.panels[].targets[]? | select(.datasource.uid != "${datasource}")] | length' "$DASH")" \
  "0" "every target's datasource is \${datasource}"
assert_eq "$(jq '[.panels[].id] | length == (unique | length)' "$DASH")" "true" "panel ids are unique"
assert_eq "$(jq '[.panels[] | select(.type != "row") | select((.targets // []) | length == 0)] | length' "$DASH")" \
  "0" "every panel has a query"

# --- A server with services and the libusher pool exporter.
bouncer_destroy $BOUNCER
cluster_destroy $STANDBY
cluster_destroy $NAME
cluster_start $NAME usher.database=postgres || fail_early "cluster starts"
eval "$(cluster_env $NAME)"
SU=(psql -X -At -v ON_ERROR_STOP=1 -U postgres)
"${SU[@]}" >/dev/null <<'SQL' || fail_early "services created"
CREATE EXTENSION pg_usher;
CREATE ROLE app LOGIN;
SELECT usher.set_service('orders', max_connections => 20, reserved_connections => 2,
                         max_active => 1, queue_timeout => '60s');
SELECT usher.set_service('tight', max_active => 1, queue_timeout => '200ms');
SELECT usher.set_service('reports', max_connections => 1);
SELECT usher.set_semaphore('exports', 1);
SQL

# A streaming standby, so that the primary exports replication lag per standby.
cluster_standby $STANDBY $NAME >/dev/null || fail_early "the standby starts"
await 30 test "$("${SU[@]}" -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" = 1 ||
  fail_early "the standby streams"

# A pool of the installed libusher (make build-all installs it) that holds one lease
# and borrows another every 100 ms, writing Pool::prometheus() to a file each time.
cat >"$OUT/pool_metrics.cpp" <<'CPP'
#include <usher/usher.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
int main(int argc, char** argv) {
  if (argc != 2) return 2;
  usher::PoolConfig c;
  c.name = "grafana";
  c.max_size = 3;
  c.min_idle = 1;
  usher::Pool pool(c);
  auto held = pool.acquire();
  std::string path = argv[1], tmp = path + ".tmp";
  for (;;) {
    pool.acquire()->exec("SELECT 1");
    { std::ofstream(tmp) << pool.prometheus(); }
    std::rename(tmp.c_str(), path.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}
CPP
if ! g++ -std=c++20 -O1 -o "$OUT/pool_metrics" "$OUT/pool_metrics.cpp" \
    $(pkg-config --cflags --libs usher) -Wl,-rpath,"$(pkg-config --variable=libdir usher)" >"$OUT/cc.log" 2>&1; then
  cat "$OUT/cc.log"; fail_early "the pool exporter builds against the installed libusher"
fi

WWW=$OUT/www
mkdir -p "$WWW"
PGAPPNAME=client/grafana "$OUT/pool_metrics" "$WWW/pool_metrics" 2>"$OUT/pool.log" &
pids+=($!)
# usher.metrics() refreshed into $WWW/metrics (renamed into place: never half a file).
(
  while :; do
    PGAPPNAME=monitor "${SU[@]}" -c "SELECT usher.metrics()" >"$WWW/metrics.tmp" 2>>"$OUT/refresh.log" &&
      mv "$WWW/metrics.tmp" "$WWW/metrics"
    sleep 0.3
  done
) &
pids+=($!)
# A PgBouncer with one server connection per pool; stats_period = 1 s so that SHOW STATS
# (refreshed every stats_period) moves while the test runs. pgbouncer-metrics.sh, as the
# timer runs it, refreshed into $WWW/pgbouncer_metrics (it renames its file into place).
bouncer_start $BOUNCER $NAME default_pool_size=1 stats_period=1 || fail_early "PgBouncer starts"
(
  eval "$(bouncer_env $BOUNCER)"
  while :; do
    PGUSER=postgres "$REPO_ROOT/deploy/pgbouncer/pgbouncer-metrics.sh" "$WWW/pgbouncer_metrics" 2>>"$OUT/pgbouncer-metrics.log"
    sleep 0.3
  done
) &
pids+=($!)
await 20 test -s "$WWW/metrics" || fail_early "usher.metrics() is written"
await 20 test -s "$WWW/pgbouncer_metrics" || fail_early "pgbouncer-metrics.sh writes its file"
await 20 test -s "$WWW/pool_metrics" || fail_early "the pool's metrics are written"

HTTP_PORT=$(free_port) || fail_early "a free port"
python3 -m http.server "$HTTP_PORT" --bind 127.0.0.1 --directory "$WWW" >"$OUT/http.log" 2>&1 &
pids+=($!)
await 20 curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" || fail_early "the metrics are served over HTTP"

PROM_PORT=$(free_port) || fail_early "a free port"
cat >"$OUT/prometheus.yml" <<YML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: usher
    metrics_path: /metrics
    static_configs: [{targets: ['127.0.0.1:$HTTP_PORT']}]
  - job_name: usher_client
    metrics_path: /pool_metrics
    static_configs: [{targets: ['127.0.0.1:$HTTP_PORT']}]
  - job_name: pgbouncer
    metrics_path: /pgbouncer_metrics
    static_configs: [{targets: ['127.0.0.1:$HTTP_PORT']}]
YML
prometheus --config.file="$OUT/prometheus.yml" --storage.tsdb.path="$OUT/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$OUT/prometheus.log" 2>&1 &
pids+=($!)
PROM=http://127.0.0.1:$PROM_PORT
if ! await 60 curl -sf "$PROM/-/ready"; then
  tail -n 20 "$OUT/prometheus.log"; fail_early "prometheus starts"
fi

query() { curl -s --get --data-urlencode "query=$1" "$PROM/api/v1/query"; }
has_data() { [[ $(query "$1" | jq -r 'if .status == "success" then (.data.result | length) else 0 end') -gt 0 ]]; }
assert_cmd "prometheus scrapes usher.metrics()" await 30 has_data 'up{job="usher"} == 1 and on() usher_ready'
assert_cmd "prometheus scrapes the pool's metrics" await 30 has_data 'up{job="usher_client"} == 1 and on() usher_pool_acquires_total'
assert_cmd "prometheus scrapes pgbouncer-metrics.sh's file" await 30 has_data 'up{job="pgbouncer"} == 1 and on() pgbouncer_up'

# --- Load, after the first scrapes so that counters are seen to go up.
bg() {  # application_name sql: a session of role app in the background
  PGAPPNAME=$1 psql -X -At -U app -c "$2" >"$OUT/bg.${1////_}.log" 2>&1 &
  pids+=($!)
}
gate_is() { test "$("${SU[@]}" -c "SELECT active || ' ' || queued FROM usher.service_status WHERE service = '$1'")" = "$2"; }
# orders: a statement waits for the slot until its holder is cancelled, and is admitted
# (the wait histogram); then one statement holds the slot and another stays queued
# behind it. Nothing depends on how fast the machine is.
bg orders/first "SELECT pg_sleep(600)"
await 10 gate_is orders "1 0"
bg orders/waits "SELECT 1"
assert_cmd "a statement queues in orders" await 10 gate_is orders "1 1"
"${SU[@]}" -c "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE application_name = 'orders/first'" >/dev/null
assert_cmd "and is admitted when the slot frees" await 20 gate_is orders "0 0"
bg orders/holder "SELECT pg_sleep(600)"
await 10 gate_is orders "1 0"
bg orders/queued "SELECT 1"
assert_cmd "a statement stays queued in orders" await 10 gate_is orders "1 1"
# tight: a statement times out at the gate.
bg tight/holder "SELECT pg_sleep(600)"
await 10 gate_is tight "1 0"
out=$(PGAPPNAME=tight/late psql -X -At -U app -c "SELECT 1" 2>&1)
assert_match "$out" "statement queue timeout for service \"tight\"" "a statement times out at the gate of tight"
# reports: its one connection is taken, so the next login is refused.
bg reports/one "SELECT pg_sleep(600)"
reports_current() { test "$("${SU[@]}" -c "SELECT current FROM usher.service_status WHERE service = 'reports'")" = 1; }
assert_cmd "a session takes the one connection of reports" await 10 reports_current
out=$(PGAPPNAME=reports/two psql -X -At -U app -c "SELECT 1" 2>&1)
assert_match "$out" "too many connections for service \"reports\"" "a login to the full service reports is refused"

# exports: a session holds the semaphore's one permit, another waits for it, and an
# acquire times out.
sem_bg() { PGAPPNAME=$1 "${SU[@]}" -c "$2" >"$OUT/bg.${1////_}.log" 2>&1 & pids+=($!); }
sem_is() { test "$("${SU[@]}" -c "SELECT held || ' ' || waiters FROM usher.semaphores WHERE name = 'exports'")" = "$1"; }
sem_bg batch/holder "SELECT usher.acquire('exports', 1, '10s', 'session'), pg_sleep(600)"
assert_cmd "a session holds the semaphore exports" await 10 sem_is "1 0"
sem_bg batch/waiter "SELECT usher.acquire('exports', 1, '600s')"
assert_cmd "and another waits for it" await 10 sem_is "1 1"
assert_eq "$("${SU[@]}" -c "SELECT usher.acquire('exports', 1, '100ms')")" "f" "an acquire of exports times out"

# PgBouncer (pool_size 1): a client takes the one server connection and waits there on
# an advisory lock a direct session holds (pg_advisory_xact_lock: nothing stays on the
# server connection); a second client waits for the server connection. The lock
# released, both finish (a wait SHOW STATS counts); then the same again, left standing,
# so a client is still waiting while Prometheus scrapes.
via_bouncer() { (eval "$(bouncer_env $BOUNCER)"; PGAPPNAME=$1 psql -X -At -U postgres -d postgres -c "$2"); }
lock_held() { test "$("${SU[@]}" -c "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = $1 AND granted")" = 1; }
bouncer_pool_is() {  # "cl_active cl_waiting sv_active" of database postgres
  test "$(bouncer_admin $BOUNCER "SHOW POOLS" | awk -F'|' 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    $c["database"] == "postgres" { print $c["cl_active"], $c["cl_waiting"], $c["sv_active"] }')" = "$1"
}
# PgBouncer lists a database in SHOW STATS from its first client on: Prometheus must
# have seen the counters before the wait, or their first sample would already hold it
# and increase() see nothing.
via_bouncer bouncer/first "SELECT 1" >/dev/null
assert_cmd "prometheus sees PgBouncer's SHOW STATS for postgres" await 30 has_data \
  'pgbouncer_stats_sql_transactions_pooled_total{database="postgres"} > 0'
for key in 1 2; do
  PGAPPNAME=locker/$key "${SU[@]}" -c "SELECT pg_advisory_lock($key), pg_sleep(600)" >/dev/null 2>&1 &
  pids+=($!)
  await 10 lock_held $key
  via_bouncer bouncer/blocked "SELECT pg_advisory_xact_lock($key)" >"$OUT/bg.bouncer_blocked$key.log" 2>&1 & pids+=($!)
  await 10 bouncer_pool_is "1 0 1"
  via_bouncer bouncer/waits "SELECT 1" >"$OUT/bg.bouncer_waits$key.log" 2>&1 & pids+=($!)
  assert_cmd "a client waits for PgBouncer's one server connection ($key)" await 10 bouncer_pool_is "1 1 1"
  [[ $key == 2 ]] && break
  "${SU[@]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'locker/$key'" >/dev/null
  assert_cmd "and is served when the connection frees" await 20 bouncer_pool_is "0 0 0"
done

# Prometheus has seen all of it.
assert_cmd "prometheus sees the queued statement" await 30 has_data 'usher_service_queued_statements{service="orders"} == 1'
assert_cmd "prometheus sees the gate wait" await 30 has_data 'increase(usher_gate_wait_seconds_count{service="orders"}[1m]) > 0'
assert_cmd "prometheus sees the queue timeout" await 30 has_data 'increase(usher_service_queue_timeouts_total{service="tight"}[1m]) > 0'
assert_cmd "prometheus sees the refused login" await 30 has_data 'increase(usher_service_rejected_total{service="reports",reason="quota"}[1m]) > 0'
assert_cmd "prometheus sees the semaphore waiter" await 30 has_data 'usher_semaphore_waiters{semaphore="exports"} == 1 and on() usher_semaphore_held{semaphore="exports"} == 1'
assert_cmd "prometheus sees the semaphore timeout" await 30 has_data 'increase(usher_semaphore_timeouts_total{semaphore="exports"}[1m]) > 0'
assert_cmd "prometheus sees the pool's acquires" await 30 has_data 'rate(usher_pool_acquires_total{pool="grafana"}[1m]) > 0'
assert_cmd "prometheus sees the client waiting in PgBouncer" await 30 has_data 'pgbouncer_pools_client_waiting_connections{database="postgres"} == 1 and on() pgbouncer_pools_server_active_connections{database="postgres"} == 1'
assert_cmd "prometheus sees PgBouncer's pool size" await 30 has_data 'pgbouncer_databases_pool_size{name="postgres"} == 1'
assert_cmd "prometheus sees PgBouncer's transactions and the client's wait" await 30 has_data \
  'increase(pgbouncer_stats_sql_transactions_pooled_total{database="postgres"}[1m]) > 0 and increase(pgbouncer_stats_client_wait_seconds_total{database="postgres"}[1m]) > 0'

# --- Every metric the dashboard names is exported for real.
SERVER_TEXT=$(curl -sf "http://127.0.0.1:$HTTP_PORT/metrics")
POOL_TEXT=$(curl -sf "http://127.0.0.1:$HTTP_PORT/pool_metrics")
BOUNCER_TEXT=$(curl -sf "http://127.0.0.1:$HTTP_PORT/pgbouncer_metrics")
assert_cmd "pgbouncer-metrics.sh's output passes promtool check metrics" promtool check metrics <<<"$BOUNCER_TEXT"
names=$(jq -r '[.panels[].targets[]?.expr, .templating.list[].query.query? // empty] | .[]' "$DASH" |
  grep -oE '(usher|pgbouncer)_[a-z_]*' | sort -u)
n_names=0 n_bouncer=0
for m in $names; do
  n_names=$((n_names + 1))
  case $m in
    usher_pool_*) text=$POOL_TEXT src="Pool::prometheus()" ;;
    pgbouncer_*) text=$BOUNCER_TEXT src="pgbouncer-metrics.sh" n_bouncer=$((n_bouncer + 1)) ;;
    *) text=$SERVER_TEXT src="usher.metrics()" ;;
  esac
  if grep -q "^$m[{ ]" <<<"$text"; then _assert_result 0 "metric $m is in $src"
  else _assert_result 1 "metric $m is in $src" "no sample named $m"; fi
done
assert_cmd "the dashboard names metrics" test "$n_names" -ge 20
assert_cmd "the dashboard names PgBouncer metrics ($n_bouncer)" test "$n_bouncer" -ge 10

# --- The template variables resolve (label_values(M, L) is Grafana's /api/v1/label/L/values?match[]=M).
INSTANCE=127.0.0.1:$HTTP_PORT
SERVICES='(orders|tight|reports)'
SEMAPHORES=exports
POOLS=grafana
DATABASES=postgres
subst() {
  local e=$1
  e=${e//\$__rate_interval/1m}; e=${e//\$__interval/15s}
  e=${e//\$instance/$INSTANCE}; e=${e//\$service/$SERVICES}; e=${e//\$pool/$POOLS}; e=${e//\$semaphore/$SEMAPHORES}; e=${e//\$database/$DATABASES}
  printf '%s' "$e"
}
while IFS=$'\t' read -r var q; do
  [[ $q =~ ^label_values\((.*),\ *([a-z_]+)\)$ ]] || { _assert_result 1 "variable $var is a label_values query" "$q"; continue; }
  match=$(subst "${BASH_REMATCH[1]}") label=${BASH_REMATCH[2]}
  values=$(curl -s --get --data-urlencode "match[]=$match" "$PROM/api/v1/label/$label/values" | jq -r '.data[]?' | paste -sd ' ')
  case $var in
    instance) want=$INSTANCE ;;
    service) want=orders ;;
    pool) want=grafana ;;
    semaphore) want=exports ;;
    database) want=postgres ;;
    *) want=? ;;
  esac
  assert_match " $values " " $want " "variable $var lists $want (got: $values)"
done < <(jq -r '.templating.list[] | select(.type == "query") | [.name, .query.query] | @tsv' "$DASH")

# --- Every panel query parses, evaluates and has series.
n_exprs=0 n_data=0
while IFS=$'\t' read -r title ref expr; do
  n_exprs=$((n_exprs + 1))
  e=$(subst "$expr")
  if [[ $e == *'$'* ]]; then _assert_result 1 "$title/$ref: every variable substituted" "$e"; continue; fi
  answer=$(query "$e")
  # One jq for both (every target costs a process or two less: the test is long).
  read -r status count < <(jq -r '"\(.status) \(.data.result | length)"' <<<"$answer" 2>/dev/null)
  if [[ $status != success ]]; then
    _assert_result 1 "$title/$ref evaluates" "$e
$answer"
    continue
  fi
  if [[ $count -gt 0 ]]; then
    n_data=$((n_data + 1))
    _assert_result 0 "$title/$ref evaluates to $count series"
  else
    _assert_result 1 "$title/$ref evaluates to series" "$e
$answer"
  fi
done < <(jq -r '.panels[] | select(.type != "row") | .title as $t | .targets[] | [$t, .refId, .expr] | @tsv' "$DASH")
assert_eq "$n_exprs" "$(jq '[.panels[].targets[]?] | length' "$DASH")" "every target was queried ($n_exprs, $n_data with series)"
assert_done
