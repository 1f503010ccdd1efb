#!/usr/bin/env bash
# Multi-process scenarios: several servers, replicas, servers without preloading.
# Each tests/integration/*.sh starts the clusters it needs and reports its counts.
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
make --no-print-directory -s -C "$REPO_ROOT/tests/integration/tools" || exit 1
status=0
# USHER_INTEGRATION="gate admission" runs only those scripts.
for t in "$REPO_ROOT"/tests/integration/*.sh; do
  if [[ -n ${USHER_INTEGRATION:-} && " $USHER_INTEGRATION " != *" $(basename "$t" .sh) "* ]]; then continue; fi
  echo "--- $(basename "$t")"
  started=$SECONDS
  "$t" || status=1
  echo "--- $(basename "$t"): $((SECONDS - started)) s"
done
exit $status
