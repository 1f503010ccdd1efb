#!/usr/bin/env bash
# Multi-process scenarios: several servers, replicas, servers without preloading.
# Each tests/integration/*.sh starts the clusters it needs and reports its counts.
#
# The scripts are independent (own cluster names, random ports, own temp folders), and
# most keep about one core busy, so they run USHER_INTEGRATION_JOBS at a time (default:
# the number of cores). The login storm keeps every core busy on its own (a login costs
# this kind of VM ~50 ms of CPU), so it runs alone, first. A script's output is printed
# whole when it ends, so the log reads script by script. The longest scripts start
# first (LONG, measured: docs/testing.md), so that no long one starts last.
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
make --no-print-directory -s -C "$REPO_ROOT/tests/integration/tools" || exit 1
JOBS=${USHER_INTEGRATION_JOBS:-$(nproc)}
ALONE=" accounting_storm "
LONG=" patroni grafana top replicas load_1200 pgbouncer_config pgbouncer search_path upgrade semaphores "
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

# USHER_INTEGRATION="gate admission" runs only those scripts.
alone=() long=() shared=()
for t in "$REPO_ROOT"/tests/integration/*.sh; do
  name=$(basename "$t" .sh)
  if [[ -n ${USHER_INTEGRATION:-} && " $USHER_INTEGRATION " != *" $name "* ]]; then continue; fi
  if [[ $ALONE == *" $name "* ]]; then alone+=("$t")
  elif [[ $LONG == *" $name "* ]]; then long+=("$t")
  else shared+=("$t"); fi
done
shared=("${long[@]}" "${shared[@]}")

# run_one SCRIPT: runs it into $OUT/NAME.log, then prints that log between its markers.
run_one() {
  local t=$1 name started rc
  name=$(basename "$t")
  started=$SECONDS
  "$t" >"$OUT/$name.log" 2>&1
  rc=$?
  { echo "--- $name"; cat "$OUT/$name.log"; echo "--- $name: $((SECONDS - started)) s"; } |
    flock "$OUT/.print" cat
  return $rc
}

status=0
for t in "${alone[@]}"; do run_one "$t" || status=1; done

running=0
for t in "${shared[@]}"; do
  if (( running >= JOBS )); then wait -n || status=1; running=$((running - 1)); fi
  run_one "$t" &
  running=$((running + 1))
done
for (( ; running > 0; running-- )); do wait -n || status=1; done
exit $status
