#!/usr/bin/env bash
# Entry point of `make bench`: runs every benchmark in bench/ one after the other and
# records their figures in bench/RESULTS.md.
#
#   bench/views/run.sh      views at 1,000 connections (issue 2)
#   bench/admission/run.sh  login admission, pgbench -C -S (issue 3)
#   bench/client/run.sh     client library, when present
#
# Arguments are passed to each benchmark; with none, the views benchmark gets
# --record --breakdown (write its section of RESULTS.md, with the breakdown of where the
# time goes) and the others get none. Exits non-zero if any
# benchmark failed to run; the others still run.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

status=0
for b in views admission client; do
  script="$BENCH_DIR/$b/run.sh"
  if [[ -f $script && -x $script ]]; then
    echo "=== bench/$b ==="
    if [[ $# -eq 0 && $b == views ]]; then args=(--record --breakdown)
    elif [[ $# -eq 0 && $b == admission ]]; then args=(--record)
    else args=("$@"); fi
    "$script" ${args[@]+"${args[@]}"} || { echo "bench/$b failed (exit $?)" >&2; status=1; }
  elif [[ $b != client ]]; then
    echo "bench/$b/run.sh is missing or not executable" >&2; status=1
  fi
done
exit $status
