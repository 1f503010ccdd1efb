#!/bin/sh
# PgBouncer's pools as Prometheus metrics for node_exporter's textfile collector, from
# the admin console's SHOW POOLS, SHOW DATABASES and SHOW STATS. The names are those of
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

# samples COMMAND TYPE LABELS: the rows of an admin console SHOW (first line: the column
# names) as samples of TYPE, labelled by LABELS ("label=column ..."); the metrics are
# the lines of $SPEC, "name value help", where value is a column, or a sum of
# column/divisor terms (microseconds/1000000), printed in full (not awk's %.6g, which
# would round a counter past 999999). The admin console's own "pgbouncer" rows are left
# out. Label values are escaped as the exposition format wants (\\, \").
samples() {
  show "$1" | awk -F "$sep" -v type="$2" -v labels="$3" '
    function esc(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return s }
    BEGIN {
      nl = split(labels, lab, " ")
      n = split(ENVIRON["SPEC"], line, "\n")
      for (i = 1; i <= n; i++) {
        split(line[i], f, " "); name[i] = f[1]; value[i] = f[2]
        help[i] = line[i]; sub(/^[^ ]+ [^ ]+ /, "", help[i])
      }
    }
    NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == "pgbouncer" { next }
    {
      l = ""
      for (i = 1; i <= nl; i++) { split(lab[i], kv, "="); l = l (i > 1 ? "," : "") kv[1] "=\"" esc($col[kv[2]]) "\"" }
      for (i = 1; i <= n; i++) {
        if (value[i] !~ /[+\/]/) v = $col[value[i]]
        else {
          v = 0; nt = split(value[i], term, "+")
          for (t = 1; t <= nt; t++) { split(term[t], cd, "/"); v += $col[cd[1]] / (cd[2] == "" ? 1 : cd[2]) }
          v = sprintf("%.6f", v)
        }
        out[i] = out[i] name[i] "{" l "} " v "\n"
      }
    }
    END { for (i = 1; i <= n; i++) printf "# HELP %s %s\n# TYPE %s %s\n%s", name[i], help[i], name[i], type, out[i] }'
}

{
  echo "# HELP pgbouncer_up 1 when PgBouncer's admin console answered."
  echo "# TYPE pgbouncer_up gauge"
  echo "pgbouncer_up 1"
  SPEC='pgbouncer_pools_client_active_connections cl_active Client connections linked to a server connection.
pgbouncer_pools_client_waiting_connections cl_waiting Client connections waiting for a server connection.
pgbouncer_pools_server_active_connections sv_active Server connections linked to a client.
pgbouncer_pools_server_idle_connections sv_idle Server connections idle and ready for a client.
pgbouncer_pools_server_used_connections sv_used Server connections idle for longer than server_check_delay, to be checked before use.
pgbouncer_pools_client_maxwait_seconds maxwait+maxwait_us/1000000 How long the oldest waiting client has waited.' \
    samples "SHOW POOLS" gauge "database=database user=user"
  SPEC='pgbouncer_databases_pool_size pool_size The pool_size of each database alias.
pgbouncer_databases_current_connections current_connections Server connections of each database alias.' \
    samples "SHOW DATABASES" gauge "name=name"
  # SHOW STATS: counters since PgBouncer started, per database alias (times in
  # microseconds there, seconds here). PgBouncer refreshes them every stats_period (60 s
  # by default), so their rates are smooth over a minute or more.
  SPEC='pgbouncer_stats_sql_transactions_pooled_total total_xact_count Transactions pooled (run on a server connection).
pgbouncer_stats_queries_pooled_total total_query_count Queries pooled (run on a server connection).
pgbouncer_stats_client_wait_seconds_total total_wait_time/1000000 Time clients spent waiting for a server connection.
pgbouncer_stats_queries_duration_seconds_total total_query_time/1000000 Time spent running queries on server connections.' \
    samples "SHOW STATS" counter "database=database"
} >"$tmp"
mv "$tmp" "$out"
trap - EXIT
