# pgbench helpers shared by the gate benchmarks. Source it after
# tests/harness/cluster.sh (it uses cluster_env and $PG_BIN).
#
#   set_gate CLUSTER on|off   usher.gate with ALTER SYSTEM + pg_reload_conf(), then 1 s
#                             for every backend to take the reload
#   pgbench_tps OUTPUT        the "tps = " figure of a pgbench run's output
#   pgbench_xacts OUTPUT      its "number of transactions actually processed"
#   p99_ms LOG...             99th percentile latency in ms of pgbench per-transaction
#                             logs (-l, optionally --sampling-rate)
#   bench_options ARGS...     --record, --rounds N, --seconds S into RECORD, ROUNDS and
#                             SECS (the caller sets their defaults first)
set_gate() {
  (eval "$(cluster_env "$1")"
   psql -X -q -c "ALTER SYSTEM SET usher.gate = $2" -c "SELECT pg_reload_conf()" >/dev/null)
  sleep 1
}

pgbench_tps() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$1"; }
pgbench_xacts() { sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' <<<"$1"; }

# Field 3 of a per-transaction log line is the transaction's latency in µs.
p99_ms() {
  awk '{print $3}' "$@" | sort -n |
    awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.2f", a[i]/1000}'
}

bench_options() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      --record) RECORD=1 ;;
      --rounds) ROUNDS=$2; shift ;;
      --seconds) SECS=$2; shift ;;
      *) echo "usage: $0 [--record] [--rounds N] [--seconds S]" >&2; exit 2 ;;
    esac
    shift
  done
}
