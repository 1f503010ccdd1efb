#!/usr/bin/env bash
# Delegation as docs/admission.md and docs/semaphores.md describe it (issue 9, item 5):
# the owner grants a role USAGE on schema usher and EXECUTE on the registry and
# semaphore writers; that role, in its own session, changes services, role mappings and
# semaphores, and each change is published when its transaction commits (the read at
# COMMIT runs with the tables' owner's rights, whoever committed): published_services
# shows it and a login quota it set is enforced. A role without the grant is refused
# with 42501, and the delegated role gains nothing beyond the functions.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"
source "$HERE/../harness/scenario.sh"

scenario_start delegation
Q=(psql -X -At -v ON_ERROR_STOP=1)
AS_OPS=(env PGUSER=ops psql -X -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate)
AS_PLAIN=(env PGUSER=plain psql -X -At -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate)

# The grants exactly as docs/admission.md and docs/semaphores.md give them.
"${Q[@]}" >/dev/null <<'SQL' || exit 1
CREATE EXTENSION pg_usher;
CREATE ROLE ops LOGIN;
CREATE ROLE plain LOGIN;
CREATE ROLE app LOGIN;
GRANT USAGE ON SCHEMA usher TO ops;
GRANT EXECUTE ON FUNCTION usher.set_service(text, integer, integer, integer, interval, integer, boolean, text, text),
                          usher.drop_service(text), usher.set_role_service(name, text) TO ops;
GRANT EXECUTE ON FUNCTION usher.set_semaphore(text, integer, text), usher.drop_semaphore(text) TO ops;
SQL

out=$("${AS_OPS[@]}" -c "SELECT (usher.set_service('quota', max_connections => 1)).max_connections" 2>&1)
assert_eq "$out" 1 "the delegated role's set_service commits"
assert_eq "$("${Q[@]}" -c "SELECT max_connections FROM usher.published_services WHERE name = 'quota'")" 1 \
  "and its change is published"
out=$("${AS_OPS[@]}" -c "SELECT usher.set_role_service('app', 'quota')" 2>&1)
assert_eq "$out" "" "the delegated role's set_role_service commits"
assert_eq "$("${Q[@]}" -c "SELECT array_to_string(roles, ',') FROM usher.published_services WHERE name = 'quota'")" app \
  "and the role mapping is published"

# The quota it set is enforced at login: app's first session holds the one connection.
PGUSER=app psql -X -At -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
BG_PIDS+=($!)
counted() { [[ $("${Q[@]}" -c "SELECT current FROM usher.service_status WHERE service = 'quota'") == 1 ]]; }
await 20 counted
assert_cmd "app's first session is counted under service quota" counted
out=$(PGUSER=app psql -X -At -c "SELECT 1" 2>&1)
assert_match "$out" 'FATAL:.*service "quota"' "app's second login is refused by the quota the delegated role set"
kill "${BG_PIDS[@]}" 2>/dev/null; BG_PIDS=()
"${Q[@]}" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'app'" >/dev/null

out=$("${AS_OPS[@]}" -c "SELECT (usher.set_semaphore('exports', 3)).capacity" 2>&1)
assert_eq "$out" 3 "the delegated role's set_semaphore commits"
assert_eq "$("${Q[@]}" -c "SELECT capacity FROM usher.semaphores WHERE name = 'exports' AND defined")" 3 \
  "and the semaphore is published"
out=$("${AS_OPS[@]}" -c "SELECT usher.drop_semaphore('exports')" 2>&1)
assert_eq "$out" "" "the delegated role's drop_semaphore commits"
assert_eq "$("${Q[@]}" -c "SELECT count(*) FROM usher.semaphores WHERE name = 'exports'")" 0 "and the drop is published"

# A transaction of several changes, one rolled back to a savepoint: what commits is published.
out=$("${AS_OPS[@]}" 2>&1 <<'SQL'
BEGIN;
SELECT usher.set_service('batch', max_active => 2) \g /dev/null
SAVEPOINT s;
SELECT usher.set_service('batch', max_active => 7) \g /dev/null
ROLLBACK TO s;
COMMIT;
SQL
)
assert_eq "$(echo $out)" "BEGIN SAVEPOINT ROLLBACK COMMIT" "a delegated multi-statement transaction commits"
assert_eq "$("${Q[@]}" -c "SELECT max_active FROM usher.published_services WHERE name = 'batch'")" 2 \
  "and publishes what survived its savepoints"

# After publishing at COMMIT the session is the delegated role again, with its own rights.
out=$("${AS_OPS[@]}" -c "SELECT usher.set_service('again')" -c "SELECT current_user" \
        -c "INSERT INTO usher.service (name) VALUES ('direct')" 2>&1)
assert_match "$out" $'ops\nERROR:  42501' "after the commit the session is itself again: writing the table directly is denied"
out=$("${AS_OPS[@]}" -c "SELECT usher.drop_service('quota')" 2>&1)
assert_eq "$out" "" "the delegated role's drop_service commits"
assert_eq "$("${Q[@]}" -c "SELECT count(*) FROM usher.published_services WHERE name = 'quota'")" 0 "and the drop is published"

# A role without the grant is refused, with 42501, by every writer.
for call in "usher.set_service('nope')" "usher.drop_service('batch')" "usher.set_role_service('app', 'batch')" \
            "usher.set_semaphore('nope', 1)" "usher.drop_semaphore('nope')"; do
  out=$("${AS_PLAIN[@]}" -c "SELECT $call" 2>&1)
  assert_eq "$out" "ERROR:  42501" "a role without the grant: $call refused with 42501"
done
out=$("${AS_PLAIN[@]}" -c "INSERT INTO usher.service (name) VALUES ('direct')" 2>&1)
assert_eq "$out" "ERROR:  42501" "a role without the grant cannot write the table"

assert_done
