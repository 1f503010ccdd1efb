#!/usr/bin/env bash
# pg_regress: deterministic SQL behaviour (sql/*.sql against expected/*.out).
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
log=$USHER_RESULTS/regress.log
mkdir -p "$REPO_ROOT/${REGRESS_OUTPUT:-build/regress}"  # pg_regress creates one level only
make --no-print-directory -C "$REPO_ROOT" installcheck >"$log" 2>&1
rc=$?
cat "$log"
# PostgreSQL 15 prints "test NAME ... ok"; 16+ prints TAP ("ok 1 - NAME").
passed=$(grep -cE '^(test |     )?.* \.\.\. ok|^ok [0-9]+ ' "$log")
failed=$(grep -cE '\.\.\. FAILED|^not ok [0-9]+ ' "$log")
echo "$passed $failed" >>"$USHER_COUNTS"
[[ $rc -eq 0 && $failed -eq 0 ]] || { [[ -f $REPO_ROOT/$REGRESS_OUTPUT/regression.diffs ]] && cat "$REPO_ROOT/$REGRESS_OUTPUT/regression.diffs"; exit 1; }
