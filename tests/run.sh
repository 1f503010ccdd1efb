#!/usr/bin/env bash
# Runs every test suite against throwaway clusters and ends with one summary line,
# "N passed, N failed". Called by `make test` after the build and install.
#
# A suite is an executable tests/suites/NAME.sh. It is given a running cluster (PG*
# environment variables set, pg_usher preloaded) and USHER_COUNTS, a file it appends
# "passed failed" lines to. It may start clusters of its own through the harness.
set -uo pipefail

TESTS_DIR=$(cd "$(dirname "$0")" && pwd)
REPO_ROOT=$(cd "$TESTS_DIR/.." && pwd)
# USHER_TEST_CLUSTER lets several runs share a checkout without touching each other:
# each run keeps its clusters (its integration tests' too) in a folder of its own.
CLUSTER=${USHER_TEST_CLUSTER:-test}
export USHER_CLUSTERS=$REPO_ROOT/build/clusters/$CLUSTER
source "$TESTS_DIR/harness/cluster.sh"

RESULTS=$REPO_ROOT/build/test-results/$CLUSTER
export USHER_RESULTS=$RESULTS REGRESS_OUTPUT=build/regress/$CLUSTER
rm -rf "$RESULTS"; mkdir -p "$RESULTS"

beside=()
cleanup() {
  for entry in "${beside[@]}"; do pkill -TERM -P "${entry#*:}" 2>/dev/null; done
  cluster_destroy "$CLUSTER"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cluster_destroy "$CLUSTER"
# The registry suites change services, which pg_usher accepts only in usher.database.
cluster_start "$CLUSTER" usher.database=usher_test || exit 1
eval "$(cluster_env "$CLUSTER")"

suites=("$@")
if [[ ${#suites[@]} -eq 0 ]]; then
  for s in "$TESTS_DIR"/suites/*.sh; do suites+=("$(basename "$s" .sh)"); done
fi

# run_suite NAME: runs it, prints its time; a failed suite counts at least one failure.
run_suite() {
  local suite=$1 started=$SECONDS suite_status suite_failed
  echo "=== suite: $suite"
  export USHER_COUNTS=$RESULTS/$suite.counts
  : >"$USHER_COUNTS"
  "$TESTS_DIR/suites/$suite.sh"
  suite_status=$?
  echo "=== suite $suite: $((SECONDS - started)) s"
  if [[ $suite_status -ne 0 ]]; then
    echo "=== suite $suite FAILED"
    suite_failed=$(awk '{f+=$2} END {print f+0}' "$USHER_COUNTS")
    [[ $suite_failed -gt 0 ]] || echo "0 1" >>"$USHER_COUNTS"
  fi
  return $suite_status
}

# The fuzz suite mostly waits on its timeouts (about 100 CPU seconds in 130 s of wall
# time, docs/testing.md) and has a cluster of its own, so with the integration suite to
# run it runs beside it (not beside the client suite: its tests' tight connect timeouts
# failed under that load); its output is printed, whole, at the end.
BESIDE=" fuzz:integration "  # SUITE:the suite it starts with
status=0
selected=" ${suites[*]} "
start_beside() {  # ANCHOR: starts the selected suites that run beside it
  local entry suite
  for entry in $BESIDE; do
    suite=${entry%%:*}
    [[ ${entry#*:} == "$1" && $selected == *" $suite "* ]] || continue
    make --no-print-directory -s -C "$TESTS_DIR/integration/tools" || exit 1  # built once
    export USHER_TOOLS_BUILT=1  # for the suites beside (fuzz.sh); integration.sh rebuilds
    run_suite "$suite" >"$RESULTS/$suite.log" 2>&1 &
    beside+=("$suite:$!")
  done
}
anchor_of() { local e; for e in $BESIDE; do [[ ${e%%:*} == "$1" ]] && echo "${e#*:}"; done; }
for suite in "${suites[@]}"; do
  anchor=$(anchor_of "$suite")
  [[ -n $anchor && $selected == *" $anchor "* ]] && continue  # started beside its anchor
  start_beside "$suite"
  run_suite "$suite" || status=1
done
for entry in "${beside[@]}"; do
  wait "${entry#*:}" || status=1
  cat "$RESULTS/${entry%%:*}.log"
done

read -r passed failed < <(cat "$RESULTS"/*.counts | awk '{p+=$1; f+=$2} END {print p+0, f+0}')
[[ $failed -eq 0 ]] || status=1
echo "$passed passed, $failed failed"
exit $status
