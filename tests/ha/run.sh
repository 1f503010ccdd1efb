#!/usr/bin/env bash
# `make test-ha`: the Patroni failover and switchover test (tests/ha/patroni.sh), run
# after `make test` by CI (.ci/run). It is not in `make test` because it takes about
# 100 s (a three-node Patroni cluster bootstrapped and failed over twice) and
# `make test` is within a minute of its 20-minute budget (docs/testing.md, docs/ha.md).
# Ends with the same "N passed, N failed" line as tests/run.sh.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
export USHER_COUNTS
USHER_COUNTS=$(mktemp)
trap 'rm -f "$USHER_COUNTS"' EXIT
started=$SECONDS
"$HERE/patroni.sh"
status=$?
read -r passed failed < <(awk '{p+=$1; f+=$2} END {print p+0, f+0}' "$USHER_COUNTS")
[[ $status -ne 0 && $failed -eq 0 ]] && failed=1
echo "=== test-ha: $((SECONDS - started)) s"
echo "$passed passed, $failed failed"
[[ $status -eq 0 && $failed -eq 0 ]]
