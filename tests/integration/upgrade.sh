#!/usr/bin/env bash
# Upgrades: a database created at every earlier version kept in extension/versions/,
# with registry rows, semaphores and grants in it, and brought to the current version
# with ALTER EXTENSION pg_usher UPDATE, equals a fresh install of the current version
# given the same rows and grants:
#   - the catalog description of the extension's objects (upgrade/describe.sql: every
#     member's definition, security and search_path settings, privileges, initial
#     privileges, comments, columns, constraints, triggers, configuration tables) is
#     the same in both databases; a difference is printed as a unified diff;
#   - the registry and the semaphore definitions are kept by the update, equal the fresh
#     database's, and are published (the commit of a change after the update, and the
#     worker at the next server start), and a quota set after the update is enforced;
#   - the roles given access keep it;
#   - pg_temp.usher_copy_grants, the update scripts' helper for re-created objects,
#     gives a copy of a view, a function and a table their original's grants;
#   - before the update, the new pg_usher.so serves the old SQL declarations: every
#     function and view is called once, and each call succeeds or fails with a clean
#     ERROR (no crash, no XX000).
# The registry is writable only in the database named by usher.database, so one server
# is restarted with usher.database pointing at each database in turn. See
# docs/upgrading.md.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

NAME=upgrade
FRESH=usher_fresh
WORK=$(mktemp -d)
cleanup() {
  cluster_destroy $NAME
  rm -rf "$WORK"
}
trap cleanup EXIT
Q=(psql -X -At -v ON_ERROR_STOP=1)

CURRENT=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$ROOT/extension/pg_usher.control")
# Every earlier version whose install script is kept: pg_usher--X.sql (not X--Y).
OLD_VERSIONS=()
for f in "$ROOT"/extension/versions/pg_usher--*.sql; do
  v=$(basename "$f" .sql); v=${v#pg_usher--}
  [[ $v == *--* || $v == "$CURRENT" ]] || OLD_VERSIONS+=("$v")
done
assert_cmd "extension/versions/ keeps at least one earlier version's install script" test ${#OLD_VERSIONS[@]} -gt 0

# The server must run what this checkout builds: the installed scripts are this tree's.
SHAREDIR=$("$PG_CONFIG" --sharedir)/extension
installed_ok=0
for f in "$ROOT"/extension/versions/*.sql "$ROOT"/extension/pg_usher.control "$ROOT/build/pg_usher--$CURRENT.sql"; do
  cmp -s "$f" "$SHAREDIR/$(basename "$f")" || { echo "# not installed as in this checkout: $(basename "$f")"; installed_ok=1; }
done
assert_eq "$installed_ok" "0" "the installed control file and scripts are this checkout's (run make install)"

# in_db DB SQL...: runs each statement in DB, prints the rows
in_db() { local db=$1; shift; local args=(); for s in "$@"; do args+=(-c "$s"); done; "${Q[@]}" -d "$db" "${args[@]}"; }
# in_db_checked DB SQL...: as in_db, but a failure shows in the output (compared by the caller)
in_db_checked() { in_db "$@" 2>&1 || echo "(the query failed)"; }
describe() { "${Q[@]}" -d "$1" -f "$HERE/upgrade/describe.sql" 2>&1 || echo "(the description failed)"; }
populate() { "${Q[@]}" -q -d "$1" -f "$HERE/upgrade/populate.sql" >/dev/null; }
# The registry as the old version defined it (columns a later version may add are left out).
registry_as_set() {
  in_db_checked "$1" "SELECT format('service %s: max_connections %s, reserved %s, max_active %s, queue_timeout %s, priority %s, enabled %s, comment %s',
                            name, max_connections, reserved_connections, max_active, queue_timeout, priority, enabled, comment)
                FROM usher.service ORDER BY name" \
             "SELECT format('role %s: service %s', role_name, service) FROM usher.role_service ORDER BY role_name" \
             "SELECT format('semaphore %s: capacity %s, comment %s', name, capacity, comment) FROM usher.semaphore ORDER BY name"
}
# Whole rows, whatever the columns.
registry_rows() {
  in_db_checked "$1" "SELECT 'service ' || s::text FROM usher.service s ORDER BY name" \
             "SELECT 'role ' || r::text FROM usher.role_service r ORDER BY role_name" \
             "SELECT 'semaphore ' || s::text FROM usher.semaphore s ORDER BY name"
}
# What shared memory holds, as the registry tables would give it: prints the rows that
# differ (none when the publication is the registry).
publication_mismatch() {
  in_db_checked "$1" "WITH registry AS (
                SELECT s.name, s.max_connections, s.reserved_connections, s.max_active, s.queue_timeout, s.priority, s.enabled,
                       coalesce((SELECT array_agg(r.role_name::text ORDER BY r.role_name) FROM usher.role_service r WHERE r.service = s.name), '{}') AS roles
                  FROM usher.service s),
              published AS (
                SELECT p.name, p.max_connections, p.reserved_connections, p.max_active, p.queue_timeout, p.priority, p.enabled,
                       coalesce((SELECT array_agg(x ORDER BY x) FROM unnest(p.roles) x), '{}') AS roles
                  FROM usher.published_services p)
              (SELECT 'only in usher.service: ' || r::text FROM (TABLE registry EXCEPT TABLE published) r)
              UNION ALL
              (SELECT 'only published: ' || p::text FROM (TABLE published EXCEPT TABLE registry) p)" \
             "(SELECT 'semaphore only in usher.semaphore: ' || name || ' ' || capacity FROM usher.semaphore
                EXCEPT SELECT 'semaphore only in usher.semaphore: ' || name || ' ' || capacity FROM usher.semaphores WHERE defined)
              UNION ALL
              (SELECT 'semaphore only in shared memory: ' || name || ' ' || capacity FROM usher.semaphores WHERE defined
                EXCEPT SELECT 'semaphore only in shared memory: ' || name || ' ' || capacity FROM usher.semaphore)"
}
# quota_enforced DB SERVICE: SERVICE set to max_connections 1 now is published at commit,
# admits one login (a role mapped to no service) and refuses the second.
holding() { [[ $(in_db "$1" "SELECT count(*) FROM usher.backends WHERE service_enforced = '$2'") == 1 ]]; }
quota_enforced() {
  local db=$1 svc=$2 holder out
  in_db "$db" "SELECT usher.set_service('$svc', max_connections => 1)" >/dev/null || return 1
  out=$(publication_mismatch "$db"); [[ -z $out ]] || { echo "not published at commit: $out"; return 1; }
  PGAPPNAME=$svc/holder psql -X -At -U usher_reader -d "$db" -c "SELECT pg_sleep(120)" >/dev/null 2>&1 &
  holder=$!
  await 30 holding "$db" "$svc" || { kill $holder; echo "the first session of $svc never counted"; return 1; }
  out=$(PGAPPNAME=$svc/second psql -X -At -U usher_reader -d "$db" -c "SELECT 1" 2>&1)
  kill $holder; wait $holder 2>/dev/null
  in_db "$db" "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '$svc/holder'" >/dev/null
  [[ $out == *"too many connections for service \"$svc\": 1 of 1"* ]] || { echo "the second login got: $out"; return 1; }
}
published_as_registry() { local out; out=$(publication_mismatch "$1") && [[ -z $out ]]; }
# pg_dump's script, less its random \restrict key
dump() { { pg_dump -d "$1" 2>&1 || echo "(pg_dump failed)"; } | grep -v '^\\\(un\)\?restrict '; }
# outcome_ok EXPECTED OUTPUT: the output of a call under the old SQL declarations is
# right when it is the expected outcome ("ok": nothing printed; or an ERROR of the
# expected SQLSTATE), or a refusal whose HINT says to run ALTER EXTENSION pg_usher
# UPDATE (what docs/upgrading.md allows a function whose result changed); never XX000,
# never a lost connection.
outcome_ok() {
  local expected=$1 out=$2 state
  if [[ -z $out ]]; then state=ok
  elif [[ $out =~ ERROR:\ \ ([0-9A-Z]{5}): ]]; then state=${BASH_REMATCH[1]}
  else return 1
  fi
  [[ $state == "$expected" ]] && return 0
  [[ $state != XX000 && $out == *"HINT:  "*"ALTER EXTENSION pg_usher UPDATE"* ]]
}
# use_registry_in DB: restart the server with usher.database = DB.
use_registry_in() {
  cluster_apply_settings "$(cluster_dir $NAME)" "usher.database=$1" && cluster_restart $NAME
}
crashes() {  # backends that died of a signal, as the server log reports them
  grep -c "terminated by signal\|was terminated by exception" "$(cluster_dir $NAME)/server.log"
}

cluster_destroy $NAME
cluster_start $NAME "usher.database=$FRESH" || exit 1
eval "$(cluster_env $NAME)"
in_db postgres "CREATE ROLE usher_operator LOGIN" "CREATE ROLE usher_app LOGIN" "CREATE ROLE usher_reader LOGIN" \
               "CREATE ROLE usher_batch LOGIN" "CREATE ROLE usher_monitor LOGIN" "GRANT pg_monitor TO usher_monitor" >/dev/null

# --- the reference: a fresh install of the current version
createdb $FRESH
in_db $FRESH "CREATE EXTENSION pg_usher" >/dev/null
assert_eq "$(in_db $FRESH "SELECT extversion FROM pg_extension WHERE extname = 'pg_usher'")" "$CURRENT" \
  "CREATE EXTENSION pg_usher installs the control file's default_version $CURRENT"
assert_cmd "the registry, semaphores and grants are set up in the fresh database" populate $FRESH
describe $FRESH >"$WORK/fresh.describe"
registry_rows $FRESH >"$WORK/fresh.rows"
assert_match "$(wc -l <"$WORK/fresh.describe")" '^[0-9]{3,}$' "the catalog description of the fresh install is not empty"

# A call for each function, with the outcome it earns: "ok", or the SQLSTATE its
# arguments deserve. Arguments reach the C code (a STRICT function given NULL would
# not); each call runs in a transaction rolled back.
declare -A CALL=(
  ['usher._check_registry_writable()']="ok|SELECT usher._check_registry_writable()"
  ['usher._check_semaphores_writable()']="ok|SELECT usher._check_semaphores_writable()"
  ['usher.acquire(text,integer,interval,text)']="ok|SELECT usher.acquire('exports', 1, '0', 'transaction')"
  ['usher.release(text,integer)']="55000|SELECT usher.release('exports', 1)"
  ['usher.activity_history_internal()']="ok|SELECT * FROM usher.activity_history_internal()"
  ['usher.backends_internal()']="ok|SELECT * FROM usher.backends_internal()"
  ['usher.checkout(text)']="ok|SELECT usher.checkout('upgrade-check')"
  ['usher.checkin()']="ok|SELECT usher.checkin()"
  ['usher.cpu_cores_internal()']="ok|SELECT * FROM usher.cpu_cores_internal()"
  ['usher.drop_semaphore(text)']="42704|SELECT usher.drop_semaphore('no-such-semaphore')"
  ['usher.drop_service(text)']="42704|SELECT usher.drop_service('no-such-service')"
  ['usher.health()']="ok|SELECT * FROM usher.health()"
  ['usher.health_thresholds()']="ok|SELECT * FROM usher.health_thresholds()"
  ['usher.metrics()']="ok|SELECT usher.metrics()"
  ['usher.pool_advice(jsonb)']="ok|SELECT * FROM usher.pool_advice('{}')"
  ['usher.published_services_internal()']="ok|SELECT * FROM usher.published_services_internal()"
  ['usher.ready()']="ok|SELECT usher.ready()"
  ['usher.semaphores_internal()']="ok|SELECT * FROM usher.semaphores_internal()"
  ['usher.service_status_internal()']="ok|SELECT * FROM usher.service_status_internal()"
  ['usher.set_role_service(name,text)']="ok|SELECT usher.set_role_service('usher_batch', 'default')"
  ['usher.set_semaphore(text,integer,text)']="ok|SELECT usher.set_semaphore('upgrade-check', 2)"
  ['usher.set_service(text,integer,integer,integer,interval,integer,boolean,text)']="ok|SELECT usher.set_service('upgrade_check', max_connections => 2)"
)

for OLD in "${OLD_VERSIONS[@]}"; do
  DB=usher_from_${OLD//./_}
  use_registry_in "$DB" || exit 1
  createdb "$DB"
  assert_cmd "CREATE EXTENSION pg_usher VERSION '$OLD' works with the new module" in_db "$DB" "CREATE EXTENSION pg_usher VERSION '$OLD'"
  assert_eq "$(in_db "$DB" "SELECT extversion FROM pg_extension WHERE extname = 'pg_usher'")" "$OLD" "the database is at $OLD"
  path=$(in_db "$DB" "SELECT path FROM pg_extension_update_paths('pg_usher') WHERE source = '$OLD' AND target = '$CURRENT'")
  assert_match "$path" "^$OLD--(.*--)?$CURRENT\$" "an update path leads from $OLD to $CURRENT"

  # --- what a DBA has set up (the new module under the old SQL declarations)
  assert_cmd "the registry, semaphores and grants are set up at $OLD" populate "$DB"

  # --- the new module under the old SQL declarations: every function and view once
  started=$(in_db "$DB" "SELECT pg_postmaster_start_time()")
  crashes_before=$(crashes)
  in_db "$DB" "SELECT p.oid::regprocedure FROM pg_depend d JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND p.oid = d.objid
               WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND p.prorettype <> 'trigger'::regtype
                 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_usher') ORDER BY 1" >"$WORK/functions"
  in_db "$DB" "SELECT c.oid::regclass FROM pg_depend d JOIN pg_class c ON d.classid = 'pg_class'::regclass AND c.oid = d.objid
               WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
                 AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_usher') ORDER BY 1" >"$WORK/relations"
  missing=$(while read -r f; do [[ -n ${CALL[$f]:-} ]] || echo "$f"; done <"$WORK/functions")
  assert_eq "$missing" "" "this test has a call for every function of $OLD (add the ones listed)"
  unclean=""
  while read -r f; do
    [[ -n ${CALL[$f]:-} ]] || continue
    out=$("${Q[@]}" -d "$DB" -v VERBOSITY=verbose -c "BEGIN" -c "${CALL[$f]#*|}" -c "ROLLBACK" 2>&1 >/dev/null)
    outcome_ok "${CALL[$f]%%|*}" "$out" || unclean+="$f: $out"$'\n'
    [[ -z $out ]] || echo "# $f: $(head -1 <<<"$out")"
  done <"$WORK/functions"
  while read -r r; do
    [[ $(in_db "$DB" "SELECT relkind FROM pg_class WHERE oid = '$r'::regclass") == v ]] || continue
    out=$("${Q[@]}" -d "$DB" -v VERBOSITY=verbose -c "SELECT * FROM $r" 2>&1 >/dev/null)
    outcome_ok ok "$out" || unclean+="$r: $out"$'\n'
  done <"$WORK/relations"
  assert_eq "$unclean" "" "under $OLD's SQL the new module answers every function and view as before, or refuses with a HINT to update"
  assert_eq "$(in_db "$DB" "SELECT pg_postmaster_start_time()")|$(crashes)" "$started|$crashes_before" \
    "no backend crashed and the server did not restart"

  # the new module's commit-time publication, worker and login check with the old tables
  assert_eq "$(publication_mismatch "$DB")" "" "at $OLD the registry and semaphores are published at commit"
  assert_cmd "at $OLD a quota is enforced at login" quota_enforced "$DB" before_update
  in_db "$DB" "SELECT usher.drop_service('before_update')" >/dev/null
  cluster_restart $NAME
  await 30 published_as_registry "$DB"
  assert_eq "$(publication_mismatch "$DB")" "" "at $OLD the worker publishes the registry and semaphores at server start"

  # --- then the update
  registry_as_set "$DB" >"$WORK/old.registry"
  assert_cmd "ALTER EXTENSION pg_usher UPDATE from $OLD" in_db "$DB" "ALTER EXTENSION pg_usher UPDATE"
  assert_eq "$(in_db "$DB" "SELECT extversion FROM pg_extension WHERE extname = 'pg_usher'")" "$CURRENT" "the database is at $CURRENT"

  # --- equal to the fresh install
  describe "$DB" >"$WORK/updated.describe"
  assert_cmd "updated from $OLD, the extension's objects equal a fresh install of $CURRENT (diff: updated, fresh)" \
    diff -u --label "updated from $OLD" --label "fresh $CURRENT" "$WORK/updated.describe" "$WORK/fresh.describe"
  # The comparison is not blind: each kind of step an upgrade script can miss, made
  # here in a transaction rolled back, shows as a difference.
  changes=(
    "a changed comment|COMMENT ON VIEW usher.backends IS 'changed'"
    "a function's search_path set|ALTER FUNCTION usher.ready SET search_path = public"
    "a function made SECURITY DEFINER|ALTER FUNCTION usher.ready SECURITY DEFINER"
    "a changed function body|DO \$\$ BEGIN EXECUTE regexp_replace(pg_get_functiondef('usher.health'::regproc), '[\$]function[\$]', '\$function\$ '); END \$\$"
    "a changed view query|DO \$\$ BEGIN EXECUTE format('CREATE OR REPLACE VIEW usher.connections AS SELECT * FROM (%s) c', rtrim(pg_get_viewdef('usher.connections'), ';')); END \$\$"
    "an added grant|GRANT SELECT ON usher.semaphore TO usher_app"
    "a revoked grant|REVOKE SELECT ON usher.semaphores FROM pg_monitor"
    "a changed column default|ALTER TABLE usher.service ALTER COLUMN priority SET DEFAULT 1"
    "an added constraint|ALTER TABLE usher.semaphore ADD CHECK (capacity < 1000000)"
    "a dropped trigger|DROP TRIGGER publish_on_commit ON usher.semaphore"
    "an object in schema usher outside the extension|CREATE FUNCTION usher.stray() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
    "an object no longer a member|ALTER EXTENSION pg_usher DROP VIEW usher.capacity"
    "default privileges in schema usher|ALTER DEFAULT PRIVILEGES IN SCHEMA usher GRANT SELECT ON TABLES TO usher_app"
  )
  for entry in "${changes[@]}"; do
    if out=$("${Q[@]}" -q -d "$DB" -c "BEGIN" -c "${entry#*|}" -f "$HERE/upgrade/describe.sql" -c "ROLLBACK" 2>&1); then
      changed=$(diff <(echo "$out") "$WORK/fresh.describe" | grep -c '^[<>]')
    else
      changed="the change failed: $out"
    fi
    assert_match "$changed" '^[1-9][0-9]*$' "the comparison sees ${entry%%|*} (${entry#*|})"
  done

  # pg_dump writes GRANTs for what differs from pg_init_privs, and the registry rows
  assert_cmd "pg_dump of the updated database equals pg_dump of the fresh one (what a restore recreates)" \
    diff -u --label "updated from $OLD" --label "fresh $CURRENT" <(dump "$DB") <(dump $FRESH)
  assert_cmd "the registry and semaphores as set at $OLD are kept" \
    diff -u --label "at $OLD" --label "after the update" "$WORK/old.registry" <(registry_as_set "$DB")
  assert_cmd "the registry and semaphore rows equal the fresh install's" \
    diff -u --label "updated from $OLD" --label "fresh $CURRENT" <(registry_rows "$DB") "$WORK/fresh.rows"

  # --- publication and enforcement after the update
  assert_eq "$(publication_mismatch "$DB")" "" "after the update shared memory still holds the registry and semaphores"
  assert_cmd "the quota of a service set after the update is enforced at login" quota_enforced "$DB" after_update
  assert_eq "$(in_db "$DB" "SELECT usher.acquire('exports', 3, '0') || ' ' || usher.acquire('exports', 1, '0')")" \
    "true false" "a semaphore defined at $OLD grants its capacity and no more after the update"

  # --- the roles keep their access
  for r in $(in_db "$DB" "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'usher'::regnamespace AND c.relkind IN ('v', 'r') ORDER BY 1"); do
    assert_cmd "pg_monitor reads $r after the update" psql -X -At -v ON_ERROR_STOP=1 -U usher_monitor -d "$DB" -c "SELECT count(*) FROM $r"
  done
  assert_cmd "pg_monitor calls health(), ready() and metrics() after the update" \
    psql -X -At -v ON_ERROR_STOP=1 -U usher_monitor -d "$DB" -c "SELECT count(*) FROM usher.health()" -c "SELECT usher.ready()" -c "SELECT usher.metrics()"
  assert_cmd "a role granted SELECT on usher.backends still reads it" \
    psql -X -At -v ON_ERROR_STOP=1 -U usher_reader -d "$DB" -c "SELECT count(*) FROM usher.backends" -c "SELECT name, max_connections FROM usher.service"
  assert_cmd "an application role still takes leases" \
    psql -X -At -v ON_ERROR_STOP=1 -U usher_app -d "$DB" -c "SELECT usher.checkout('upgrade'), usher.checkin()"
  assert_eq "$(in_db "$DB" "SELECT bool_and(has_function_privilege('usher_operator', p.oid, 'EXECUTE'))
                            FROM pg_proc p WHERE p.pronamespace = 'usher'::regnamespace
                             AND p.proname IN ('set_service', 'drop_service', 'set_role_service', 'set_semaphore', 'drop_semaphore')")" \
    "t" "the operator keeps EXECUTE on the registry and semaphore functions"

  # --- the worker publishes the updated registry at the next start
  cluster_restart $NAME
  await 30 published_as_registry "$DB"
  assert_eq "$(publication_mismatch "$DB")" "" "after a restart the worker publishes the updated registry and semaphores"
done

# --- the helper the update scripts use to carry a DBA's grants to a re-created object
# (pg_temp.usher_copy_grants, docs/upgrading.md), run in a session of the fresh database
# on copies of its objects: each copy gets the original's privileges, grantors, grant
# options and column privileges.
for script in "$ROOT"/extension/versions/pg_usher--*--"$CURRENT".sql; do
  helper=$(sed -n '/^DROP FUNCTION IF EXISTS pg_temp.usher_copy_grants/,/^\$\$;$/p' "$script")
  assert_match "$helper" 'CREATE FUNCTION pg_temp.usher_copy_grants' "$(basename "$script") defines pg_temp.usher_copy_grants"
  sorted_acl="(SELECT coalesce(string_agg(x::text, ' ' ORDER BY x::text), '') FROM unnest(%s) x)"
  acls="SELECT 'service_status ' || $(printf "$sorted_acl" relacl) FROM pg_class WHERE oid = 'usher.service_status'::regclass
        UNION ALL
        SELECT 'checkout ' || $(printf "$sorted_acl" proacl) FROM pg_proc WHERE oid = to_regproc('usher.checkout')
        UNION ALL
        SELECT 'columns ' || string_agg(attname || ': ' || $(printf "$sorted_acl" attacl), ', ' ORDER BY attnum)
          FROM pg_attribute WHERE attrelid = coalesce(to_regclass('usher.copy_of_service'), 'usher.service'::regclass)
                              AND attacl IS NOT NULL"
  out=$("${Q[@]}" -q -d $FRESH -c "SET client_min_messages = warning" -c "$helper" -c "BEGIN" -c "$acls" -c "SELECT '=== after'" \
        -c "ALTER VIEW usher.service_status RENAME TO copy_of_service_status" \
        -c "CREATE VIEW usher.service_status AS SELECT * FROM usher.service_status_internal()" \
        -c "REVOKE ALL ON usher.service_status FROM PUBLIC" -c "GRANT SELECT ON usher.service_status TO pg_monitor" \
        -c "SELECT pg_temp.usher_copy_grants('view', 'usher.copy_of_service_status', 'usher.service_status')" \
        -c "ALTER EXTENSION pg_usher DROP VIEW usher.copy_of_service_status" -c "DROP VIEW usher.copy_of_service_status" \
        -c "ALTER FUNCTION usher.checkout RENAME TO copy_of_checkout" \
        -c "CREATE FUNCTION usher.checkout(holder text, note text DEFAULT NULL) RETURNS boolean LANGUAGE C AS '\$libdir/pg_usher', 'usher_checkout'" \
        -c "REVOKE ALL ON FUNCTION usher.checkout FROM PUBLIC" \
        -c "SELECT pg_temp.usher_copy_grants('function', 'usher.copy_of_checkout(text)', 'usher.checkout(text, text)')" \
        -c "ALTER EXTENSION pg_usher DROP FUNCTION usher.copy_of_checkout" -c "DROP FUNCTION usher.copy_of_checkout" \
        -c "CREATE TABLE usher.copy_of_service (LIKE usher.service)" -c "REVOKE ALL ON usher.copy_of_service FROM PUBLIC" \
        -c "SELECT pg_temp.usher_copy_grants('table', 'usher.service', 'usher.copy_of_service')" \
        -c "$acls" -c "ROLLBACK" 2>&1 | grep -v '^$')
  before=$(sed '/^=== after$/,$d' <<<"$out")
  after=$(sed '1,/^=== after$/d' <<<"$out")
  assert_match "$before" 'usher_app=r/usher_reader.*usher_reader=r\*/postgres' \
    "the view copied carries a grant with grant option and one made through it"
  assert_match "$before" 'columns .*name: .*usher_reader=r/postgres' "the table copied carries column privileges"
  assert_eq "$after" "$before" \
    "usher_copy_grants gives a re-created view, function and table their original's grants, grantors, grant options and column privileges"
done

assert_done
