#!/usr/bin/env bash
# The statement gate under overload and at rest (issue 4), each measured side by side in
# one run:
#  1. overload: `pgbench -S -c 256 -j 2`, every client in one service with
#     max_active = 2 x cores, gate on vs gate off (usher.gate), and the same pgbench
#     with 8 clients as the reference a server of this size can do; TPS, p99 latency,
#     and the most statements of the service seen active at once (sampled);
#  2. overhead: `pgbench -S -c 8 -j 2` with the gate on (max_active high enough never
#     to queue) vs a cluster without pg_usher.
#
#   bench/gate/run.sh [--record] [--rounds N] [--seconds S]
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$BENCH_DIR/../.." && pwd)
source "$REPO_ROOT/tests/harness/cluster.sh"

RECORD=0 ROUNDS=3 SECS=20
while [[ $# -gt 0 ]]; do
  case $1 in
    --record) RECORD=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    *) echo "usage: $0 [--record] [--rounds N] [--seconds S]" >&2; exit 2 ;;
  esac
  shift
done
PGBENCH="$PG_BIN/pgbench"
CORES=$(nproc)
MAX_ACTIVE=$((2 * CORES))
log() { echo "[gate bench] $*" >&2; }
WORK=$(mktemp -d)
GATED=bench-gate PLAIN=bench-gate-plain
sampler_pid=
cleanup() { [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null; cluster_destroy $GATED; cluster_destroy $PLAIN; rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
cluster_destroy $GATED; cluster_destroy $PLAIN
common=(max_connections=300 shared_buffers=256MB log_min_messages=fatal)
cluster_start $GATED "${common[@]}" usher.database=postgres
USHER_PRELOAD='' cluster_start $PLAIN "${common[@]}"

# The clients log in as an ordinary role: superusers pass the gate.
for c in $GATED $PLAIN; do
  (eval "$(cluster_env "$c")"
   "$PGBENCH" -i -s 10 -q >/dev/null 2>&1
   psql -X -q -v ON_ERROR_STOP=1 -c "CREATE ROLE app LOGIN" \
        -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO app")
done
(eval "$(cluster_env $GATED)"
 psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pg_usher" \
      -c "SELECT usher.set_service('orders', max_active => $MAX_ACTIVE, queue_timeout => '60s')" \
      -c "SELECT usher.set_service('roomy', max_active => 1000)" >/dev/null)

set_gate() {  # on|off
  (eval "$(cluster_env $GATED)"; psql -X -q -c "ALTER SYSTEM SET usher.gate = $1" -c "SELECT pg_reload_conf()" >/dev/null)
  sleep 1
}
# pgbench with per-transaction logs (sampled) -> "tps p99_ms"
run() {  # cluster service clients tag
  local cluster=$1 service=$2 clients=$3 tag=$4
  rm -f "$WORK"/$tag.*
  local tps
  tps=$(cd "$WORK" && eval "$(cluster_env "$cluster")" &&
        PGUSER=app PGAPPNAME=$service/pgbench "$PGBENCH" -n -S -c "$clients" -j 2 -T "$SECS" \
          -l --sampling-rate=0.05 --log-prefix="$tag" 2>&1 | sed -n 's/^tps = \([0-9.]*\).*/\1/p')
  local p99
  p99=$(cat "$WORK"/$tag.* | awk '{print $3}' | sort -n |
        awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.2f", a[i]/1000}')
  echo "$tps $p99"
}
# The most statements of the service seen active at once, polled by a superuser.
start_sampler() {
  (eval "$(cluster_env $GATED)"
   most=0
   while :; do
     n=$(psql -X -At -c "SELECT active FROM usher.service_status WHERE service = 'orders'" 2>/dev/null || echo 0)
     (( n > most )) && { most=$n; echo "$most" >"$WORK/most_active"; }
     sleep 0.05
   done) &
  sampler_pid=$!
}

echo 0 >"$WORK/most_active"
declare -a off on ref over_on over_plain
log "warm-up"
set_gate off; run $GATED orders 256 warm >/dev/null
gated_run() {  # round: 256 clients with the gate on, sampling how many statements run
  set_gate on
  start_sampler
  on+=("$(run $GATED orders 256 on$1)")
  kill "$sampler_pid"; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=
}
ungated_runs() {  # round: 256 and 8 clients with the gate off
  set_gate off
  off+=("$(run $GATED orders 256 off$1)")
  ref+=("$(run $GATED orders 8 ref$1)")
}
for r in $(seq 1 "$ROUNDS"); do
  # The order alternates from round to round, so that drift over the run (a slower
  # second run of a pair was seen here) favours neither side.
  if (( r % 2 )); then ungated_runs $r; gated_run $r; else gated_run $r; ungated_runs $r; fi
  set_gate on
  if (( r % 2 )); then
    over_plain+=("$(run $PLAIN roomy 8 plain$r)"); over_on+=("$(run $GATED roomy 8 roomy$r)")
  else
    over_on+=("$(run $GATED roomy 8 roomy$r)"); over_plain+=("$(run $PLAIN roomy 8 plain$r)")
  fi
  log "round $r: 256 gate off ${off[-1]} | 256 gate on ${on[-1]} | 8 clients ${ref[-1]} | overhead: plain ${over_plain[-1]}, gate on ${over_on[-1]}"
done
most=$(cat "$WORK/most_active")
peak=$(eval "$(cluster_env $GATED)"; psql -X -At -c "SELECT peak_active FROM usher.service_status WHERE service = 'orders'")

col() { local i=$1; shift; printf '%s\n' "$@" | awk -v i="$i" '{print $i}'; }
mean() { awk '{s+=$1; n++} END {printf "%.1f", s/n}'; }
m_off=$(col 1 "${off[@]}" | mean); m_on=$(col 1 "${on[@]}" | mean); m_ref=$(col 1 "${ref[@]}" | mean)
p_off=$(col 2 "${off[@]}" | mean); p_on=$(col 2 "${on[@]}" | mean); p_ref=$(col 2 "${ref[@]}" | mean)
m_plain=$(col 1 "${over_plain[@]}" | mean); m_roomy=$(col 1 "${over_on[@]}" | mean)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
gain=$(ratio "$m_on" "$m_off"); of_ref=$(ratio "$m_on" "$m_ref"); overhead=$(ratio "$m_roomy" "$m_plain")
verdict() { awk -v r="$1" -v t="$2" 'BEGIN {print (r >= t) ? "met" : "missed"}'; }

rows1="" rows2=""
for i in $(seq 0 $((ROUNDS - 1))); do
  rows1+="| $((i + 1)) | $(col 1 "${off[$i]}") / $(col 2 "${off[$i]}") | $(col 1 "${on[$i]}") / $(col 2 "${on[$i]}") | $(col 1 "${ref[$i]}") / $(col 2 "${ref[$i]}") |
"
  rows2+="| $((i + 1)) | $(col 1 "${over_plain[$i]}") | $(col 1 "${over_on[$i]}") | $(ratio "$(col 1 "${over_on[$i]}")" "$(col 1 "${over_plain[$i]}")") |
"
done
machine="Machine: $CORES cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); $("$PG_BIN/postgres" --version | sed 's/postgres (PostgreSQL) //'); commit $(git -C "$REPO_ROOT" rev-parse --short HEAD); $(date -u +%F)."
S1="## Statement gate under overload: pgbench -S -c 256 (issue 4)

Command: \`bench/gate/run.sh --rounds $ROUNDS --seconds $SECS\` (\`make bench\` runs it with --record).
One throwaway cluster preloading pg_usher (\`max_connections = 300\`, \`shared_buffers = 256MB\`,
scale 10), clients logged in as an ordinary role with \`PGAPPNAME=orders/pgbench\`;
service \`orders\` has \`max_active = 2 × $CORES cores = $MAX_ACTIVE\`. Each round:
\`pgbench -n -S -c 256 -j 2 -T $SECS\` with \`usher.gate = off\`, the same with 8 clients, and
256 clients with \`usher.gate = on\`, the gated run first in even rounds. p99 from pgbench's per-transaction log
(\`-l --sampling-rate=0.05\`), in ms. While the gated run ran, a superuser session polled
\`usher.service_status.active\` every 50 ms.

$machine

| round | 256 clients, gate off: tps / p99 ms | 256 clients, gate on: tps / p99 ms | 8 clients: tps / p99 ms |
|--:|--:|--:|--:|
${rows1}| mean | $m_off / $p_off | $m_on / $p_on | $m_ref / $p_ref |

- gated ÷ ungated throughput: **$gain** (target ≥ 1.3: **$(verdict "$gain" 1.3)**)
- gated ÷ 8-client throughput of the same run: **$of_ref**
- most statements of the service active at once: sampled **$most**, \`peak_active\` **$peak** (max_active $MAX_ACTIVE)"
S2="## Statement gate at rest: pgbench -S -c 8 (issue 4)

Command: as above (same run). \`pgbench -n -S -c 8 -j 2 -T $SECS\` as an ordinary role, against
the pg_usher cluster with the gate on and the clients in service \`roomy\`
(\`max_active = 1000\`: every statement takes and gives back a slot, none waits), and
against an identical cluster without pg_usher, the order alternating from round to round.

$machine

| round | without pg_usher (tps) | gate on, never queuing (tps) | ratio |
|--:|--:|--:|--:|
${rows2}| mean | $m_plain | $m_roomy | **$overhead** |

Target: ≥ 0.97 of the baseline: **$(verdict "$overhead" 0.97)**."
printf '\n%s\n\n%s\n' "$S1" "$S2"
if [[ $RECORD -eq 1 ]]; then
  source "$REPO_ROOT/bench/lib/record.sh"
  record_section "## Statement gate under overload: pgbench -S -c 256 (issue 4)" "$S1"
  record_section "## Statement gate at rest: pgbench -S -c 8 (issue 4)" "$S2"
  log "recorded in bench/RESULTS.md"
fi
