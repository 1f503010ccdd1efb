#!/bin/sh
# PgBouncer's pools as Prometheus metrics for node_exporter's textfile collector, from
# the admin console's SHOW POOLS and SHOW DATABASES. The names are those of
# prometheus-community/pgbouncer_exporter, so deploy/prometheus/pool.rules.yml works
# with either. Run it every 15 s (deploy/systemd/pgbouncer-metrics.{service,timer}).
#
#   pgbouncer-metrics.sh [FILE]    default $TEXTFILE_DIR/pgbouncer.prom
#
# The connection is psql's: PGHOST/PGPORT of PgBouncer (its Unix socket directory and
# port), PGUSER one of its stats_users; the database is always "pgbouncer".
set -eu
out=${1:-${TEXTFILE_DIR:-/var/lib/prometheus/node-exporter}/pgbouncer.prom}
tmp="$out.$$"
trap 'rm -f "$tmp"' EXIT
sep=$(printf '\037')  # a separator no name contains

show() { psql -X -q -A -F "$sep" -P footer=off -d pgbouncer -c "$1"; }

# Rows of SHOW POOLS / SHOW DATABASES (first line: the column names) to samples. Label
# values are escaped as the exposition format wants (\\, \", \n).
{
  echo "# HELP pgbouncer_up 1 when PgBouncer's admin console answered."
  echo "# TYPE pgbouncer_up gauge"
  echo "pgbouncer_up 1"
  show "SHOW POOLS" | awk -F "$sep" '
    function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return s }
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["database"] == "pgbouncer" { next }
    {
      l = sprintf("{database=\"%s\",user=\"%s\"}", esc($col["database"]), esc($col["user"]))
      v["client_active_connections"] = v["client_active_connections"] "pgbouncer_pools_client_active_connections" l " " $col["cl_active"] "\n"
      v["client_waiting_connections"] = v["client_waiting_connections"] "pgbouncer_pools_client_waiting_connections" l " " $col["cl_waiting"] "\n"
      v["server_active_connections"] = v["server_active_connections"] "pgbouncer_pools_server_active_connections" l " " $col["sv_active"] "\n"
      v["server_idle_connections"] = v["server_idle_connections"] "pgbouncer_pools_server_idle_connections" l " " $col["sv_idle"] "\n"
      v["client_maxwait_seconds"] = v["client_maxwait_seconds"] "pgbouncer_pools_client_maxwait_seconds" l " " ($col["maxwait"] + $col["maxwait_us"] / 1000000) "\n"
    }
    END {
      h["client_active_connections"] = "Client connections linked to a server connection."
      h["client_waiting_connections"] = "Client connections waiting for a server connection."
      h["server_active_connections"] = "Server connections linked to a client."
      h["server_idle_connections"] = "Server connections idle and ready for a client."
      h["client_maxwait_seconds"] = "How long the oldest waiting client has waited."
      for (k in h) {
        printf "# HELP pgbouncer_pools_%s %s\n# TYPE pgbouncer_pools_%s gauge\n%s", k, h[k], k, v[k]
      }
    }'
  show "SHOW DATABASES" | awk -F "$sep" '
    function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return s }
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["name"] == "pgbouncer" { next }
    { size = size sprintf("pgbouncer_databases_pool_size{name=\"%s\"} %s\n", esc($col["name"]), $col["pool_size"])
      cur = cur sprintf("pgbouncer_databases_current_connections{name=\"%s\"} %s\n", esc($col["name"]), $col["current_connections"]) }
    END {
      printf "# HELP pgbouncer_databases_pool_size The pool_size of each database alias.\n# TYPE pgbouncer_databases_pool_size gauge\n%s", size
      printf "# HELP pgbouncer_databases_current_connections Server connections of each database alias.\n# TYPE pgbouncer_databases_current_connections gauge\n%s", cur
    }'
} >"$tmp"
mv "$tmp" "$out"
trap - EXIT
