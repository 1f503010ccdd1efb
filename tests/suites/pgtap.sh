#!/usr/bin/env bash
# pgTAP: SQL-level assertions (tests/pgtap/*.sql), run with pg_prove in a fresh database.
set -uo pipefail
REPO_ROOT=$(cd "$(dirname "$0")/../.." && pwd)
db=usher_test  # the database named by usher.database: the registry tests change services
psql -X -q -v ON_ERROR_STOP=1 -d postgres <<SQL || exit 1
DROP DATABASE IF EXISTS $db WITH (FORCE);
CREATE DATABASE $db;
SQL
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION pgtap; CREATE EXTENSION dblink;' || exit 1
log=$USHER_RESULTS/pgtap.log
pg_prove -d "$db" --ext .sql -v "$REPO_ROOT"/tests/pgtap/*.sql >"$log" 2>&1
rc=$?
cat "$log"
passed=$(grep -cE '^ok [0-9]+' "$log")
failed=$(grep -cE '^not ok [0-9]+' "$log")
echo "$passed $failed" >>"$USHER_COUNTS"
exit $rc
