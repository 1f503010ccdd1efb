#!/usr/bin/env bash
# Entry point of `make bench`: runs every benchmark in bench/ one after the other and
# records their figures in bench/RESULTS.md.
#
#   bench/views/run.sh        views at 1,000 connections (issue 2)
#   bench/admission/run.sh    login admission, pgbench -C -S (issue 3)
#   bench/gate/run.sh         statement gate under overload and at rest (issue 4)
#   bench/gate/neighbours.sh  statement gate between services: a noisy neighbour (issue 4)
#   bench/gate/modes.sh       gate modes under multi-statement transactions (issue 9)
#   bench/client/run.sh       client library, when present
#
# Arguments are passed to each benchmark; with none, the views benchmark gets
# --record --breakdown (write its section of RESULTS.md, with the breakdown of where the
# time goes), the admission and gate benchmarks --record, and the client one none.
# Exits non-zero if any benchmark failed to run; the others still run.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

status=0
for b in views/run.sh admission/run.sh gate/run.sh gate/neighbours.sh gate/modes.sh client/run.sh; do
  script="$BENCH_DIR/$b"
  if [[ -f $script && -x $script ]]; then
    echo "=== bench/$b ==="
    if [[ $# -eq 0 && $b == views/* ]]; then args=(--record --breakdown)
    elif [[ $# -eq 0 && $b != client/* ]]; then args=(--record)
    else args=("$@"); fi
    "$script" ${args[@]+"${args[@]}"} || { echo "bench/$b failed (exit $?)" >&2; status=1; }
  elif [[ $b != client/* ]]; then
    echo "bench/$b is missing or not executable" >&2; status=1
  fi
done
exit $status
