#!/usr/bin/env bash
# search_path hijack (issue 9, item 1): a plain role with CREATE on a schema that other
# roles search plants operators and functions there; nothing of it may ever run when a
# superuser or a pg_monitor role uses pg_usher, nor in pg_usher's own internal SQL.
#
# The plain role "mallory" owns schema usher_public and may create in public. In both
# it creates, every one logging to public.pwned (and the server log: "PWNED") and
# trying to make mallory superuser:
#  * an operator for every (operator, left type, right type) of the common operators
#    and types that pg_catalog has no exact operator for but resolves by implicit
#    casts (numeric * bigint, numeric >= double precision, ...): such an operator wins
#    over pg_catalog's wherever its schema is searched at all;
#  * a clone of every pg_catalog function whose name appears in pg_usher's SQL and C
#    sources (same name and signature): it wins where its schema comes before
#    pg_catalog in search_path.
# Then every code path is driven with search_path = usher_public, public, pg_catalog
# (set for the database, so the publisher worker gets it at restart too): every
# function of schema usher (read from the catalog; one not driven here fails the test)
# and every view, as the superuser and as a pg_monitor role; commits of every registry
# and semaphore change (also by direct DML); a server restart (the publisher worker);
# the sampler; CREATE EXTENSION in a database where the traps exist beforehand and
# the extension's target schema is mallory's (what a view binds at creation); and 1.0.0
# installed that way, then ALTER EXTENSION pg_usher UPDATE.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../harness/cluster.sh"
source "$HERE/../harness/assert.sh"

NAME=search_path
trap 'cluster_destroy $NAME' EXIT
cluster_destroy $NAME
cluster_start $NAME usher.database=postgres usher.sample_interval=100ms || exit 1
eval "$(cluster_env $NAME)"
LOG="$(cluster_dir $NAME)/server.log"
HOSTILE_PATH='usher_public,public,pg_catalog'
# Checks run with a safe path of their own.
SAFE=(env PGOPTIONS="-c search_path=pg_catalog" psql -X -At -v ON_ERROR_STOP=1)
AS_SUPER=(env PGOPTIONS="-c search_path=$HOSTILE_PATH" psql -X -At -v ON_ERROR_STOP=1)
AS_MONITOR=(env PGOPTIONS="-c search_path=$HOSTILE_PATH" PGUSER=watcher psql -X -At -v ON_ERROR_STOP=1)
AS_MALLORY=(env PGUSER=mallory psql -X -At -v ON_ERROR_STOP=1)

"${SAFE[@]}" >/dev/null <<'SQL' || exit 1
CREATE EXTENSION pg_usher;
CREATE ROLE mallory LOGIN;
CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
CREATE ROLE sp_app LOGIN;
GRANT CREATE ON SCHEMA public TO mallory;
CREATE SCHEMA usher_public AUTHORIZATION mallory;
GRANT USAGE ON SCHEMA usher_public TO PUBLIC;
CREATE DATABASE sp_fresh;
CREATE DATABASE sp_upgrade;
SQL
for db in sp_fresh sp_upgrade; do
  "${SAFE[@]}" -d $db -c "GRANT CREATE ON SCHEMA public TO mallory" \
    -c "CREATE SCHEMA usher_public AUTHORIZATION mallory" -c "GRANT USAGE ON SCHEMA usher_public TO PUBLIC" >/dev/null || exit 1
done

# The names of the functions pg_usher's SQL and SPI texts call.
NAMES=$(cat "$HERE"/../../extension/sql/*.sql "$HERE"/../../extension/*.cpp |
  grep -oE '\b[a-z_][a-z0-9_]*\(' | tr -d '(' | sort -u | paste -sd, -)

# plant DB: mallory's traps in public and usher_public of database DB.
plant() {
  "${AS_MALLORY[@]}" -d "$1" -v names="$NAMES" >/dev/null <<'SQL'
CREATE TABLE public.pwned (who name, what text, at timestamptz DEFAULT pg_catalog.now());
GRANT INSERT, SELECT ON public.pwned TO PUBLIC;
CREATE FUNCTION public.pwned_mark(what text) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
  RAISE WARNING 'PWNED: % ran as %', what, current_user;
  BEGIN
    INSERT INTO public.pwned (who, what) VALUES (current_user, what);
  EXCEPTION WHEN OTHERS THEN RAISE WARNING 'PWNED: could not log %', SQLERRM;
  END;
  BEGIN
    EXECUTE 'ALTER ROLE mallory SUPERUSER';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
END
$f$;
GRANT EXECUTE ON FUNCTION public.pwned_mark(text) TO PUBLIC;
SELECT pg_catalog.set_config('sp.names', :'names', false);
DO $do$
DECLARE
  schemas text[] := ARRAY['public', 'usher_public'];
  ops text[] := ARRAY['=', '<>', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '||', '~~', '~'];
  types text[] := ARRAY['smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision', 'text',
                        'name', 'character varying', 'character', 'interval', 'timestamptz', 'timestamp',
                        'date', 'oid', 'boolean', 'pg_lsn', 'inet', 'jsonb'];
  sch text; op text; l text; r text; result regtype; n integer := 0; f record; args text; callargs text;
BEGIN
  PERFORM pg_catalog.set_config('search_path', 'pg_catalog', true);
  FOREACH op IN ARRAY ops LOOP
    FOREACH l IN ARRAY types LOOP
      FOREACH r IN ARRAY types LOOP
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_operator o
                               WHERE o.oprname = op AND o.oprleft = l::regtype AND o.oprright = r::regtype
                                 AND o.oprnamespace = 'pg_catalog'::regnamespace);
        BEGIN
          EXECUTE format('SELECT pg_typeof(NULL::%s OPERATOR(pg_catalog.%s) NULL::%s)', l, op, r) INTO result;
        EXCEPTION WHEN OTHERS THEN
          CONTINUE;  -- pg_catalog cannot do it at all, so pg_usher does not write it
        END;
        n := n + 1;
        FOREACH sch IN ARRAY schemas LOOP
          EXECUTE format($q$CREATE FUNCTION %I.pwn_op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS $b$
                           BEGIN PERFORM public.pwned_mark(%L); RETURN $1 OPERATOR(pg_catalog.%s) $2; END $b$$q$,
                         sch, n, l, r, result, format('operator %s.%s(%s, %s)', sch, op, l, r), op);
          EXECUTE format('CREATE OPERATOR %I.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = %I.pwn_op_%s)',
                         sch, op, l, r, sch, n);
        END LOOP;
      END LOOP;
    END LOOP;
  END LOOP;
  RAISE NOTICE '% operators', n;
  -- Clones of the pg_catalog functions pg_usher names (plain argument and result types).
  n := 0;
  FOR f IN SELECT p.oid, p.proname, p.prorettype::regtype AS ret, p.proargtypes::regtype[] AS argtypes
             FROM pg_proc p
            WHERE p.pronamespace = 'pg_catalog'::regnamespace AND p.prokind = 'f' AND NOT p.proretset
              AND p.proname = ANY (pg_catalog.string_to_array(pg_catalog.current_setting('sp.names'), ','))
              AND p.proname NOT IN ('pwned_mark')
              AND NOT EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = ANY (p.proargtypes::oid[]) AND t.typtype = 'p')
              AND (SELECT t.typtype FROM pg_type t WHERE t.oid = p.prorettype) <> 'p'
              AND p.provariadic = 0 LOOP
    n := n + 1;
    SELECT coalesce(pg_catalog.string_agg(format('%s', t), ', ' ORDER BY i), ''),
           coalesce(pg_catalog.string_agg(format('$%s', i), ', ' ORDER BY i), '')
      INTO args, callargs FROM pg_catalog.unnest(f.argtypes) WITH ORDINALITY a(t, i);
    FOREACH sch IN ARRAY schemas LOOP
      EXECUTE format($q$CREATE FUNCTION %I.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$
                       BEGIN PERFORM public.pwned_mark(%L); RETURN pg_catalog.%I(%s); END $b$$q$,
                     sch, f.proname, args, f.ret, format('function %s.%s(%s)', sch, f.proname, args),
                     f.proname, callargs);
    END LOOP;
  END LOOP;
  RAISE NOTICE '% functions', n;
END
$do$;
SQL
}
plant postgres || { echo "could not plant the traps"; exit 1; }
plant sp_fresh || { echo "could not plant the traps in sp_fresh"; exit 1; }
plant sp_upgrade || { echo "could not plant the traps in sp_upgrade"; exit 1; }
pwned() { "${SAFE[@]}" -d "${1:-postgres}" -c "SELECT count(*) FROM public.pwned"; }
reset_pwned() { "${SAFE[@]}" -d "${1:-postgres}" -c "TRUNCATE public.pwned" >/dev/null; }

# The traps work: mallory's own query with its schema searched runs them.
"${AS_MALLORY[@]}" -c "SET search_path = public, pg_catalog" -c "SELECT 1.5 * 2::bigint" >/dev/null 2>&1
assert_eq "$(pwned)" 1 "the traps are live: numeric * bigint runs mallory's operator where public is searched"
reset_pwned
"${SAFE[@]}" -c "ALTER DATABASE postgres SET search_path = $HOSTILE_PATH" \
             -c "ALTER DATABASE sp_fresh SET search_path = $HOSTILE_PATH" >/dev/null

# CREATE EXTENSION where the traps exist beforehand, with mallory's schema first in
# search_path: the extension's target schema is then usher_public.
out=$("${SAFE[@]}" -d sp_fresh -c "SET search_path = $HOSTILE_PATH" -c "CREATE EXTENSION pg_usher" \
        -c "SHOW search_path" 2>&1 | tail -n 1)
assert_eq "$out" "usher_public, public, pg_catalog" "CREATE EXTENSION with usher_public first in search_path, which it leaves as it was"
assert_eq "$(pwned sp_fresh)" 0 "CREATE EXTENSION runs nothing of mallory's"
fresh_out=$("${AS_SUPER[@]}" -d sp_fresh 2>&1 <<'SQL'
SELECT count(*) >= 0 FROM usher.capacity;
SELECT count(*) >= 0 FROM usher.leases;
SELECT count(*) >= 0 FROM usher.activity_summary;
SELECT count(*) >= 0 FROM usher.health();
SQL
) || fresh_out="FAILED: $fresh_out"
assert_eq "$(echo "$fresh_out" | grep -v PWNED | sort -u)" t "the views of the fresh database work"
assert_eq "$(pwned sp_fresh)" 0 "views created while the traps existed do not run them" "$fresh_out"

# An installation of 1.0.0 made while the traps existed (its views bound mallory's
# operators), updated to 1.1.0 the same way: the update recreates what 1.0.0 bound.
"${SAFE[@]}" -d sp_upgrade -c "SET search_path = $HOSTILE_PATH" -c "CREATE EXTENSION pg_usher VERSION '1.0.0'" \
  -c "ALTER EXTENSION pg_usher UPDATE" >/dev/null 2>&1
reset_pwned sp_upgrade
upgraded_out=$("${AS_SUPER[@]}" -d sp_upgrade 2>&1 <<'SQL'
SELECT count(*) >= 0 FROM usher.capacity;
SELECT count(*) >= 0 FROM usher.leases;
SELECT count(*) >= 0 FROM usher.activity_summary;
SELECT count(*) >= 0 FROM usher.health();
SELECT usher.ready() IS NOT NULL;
SELECT length(usher.metrics()) > 0;
SQL
) || upgraded_out="FAILED: $upgraded_out"
assert_eq "$(echo "$upgraded_out" | grep -v PWNED | sort -u)" t "the views and functions of the updated database work"
assert_eq "$(pwned sp_upgrade)" 0 "after ALTER EXTENSION UPDATE nothing runs mallory's objects" "$upgraded_out"

# Every function of schema usher, with arguments where it takes some. A function that
# is not listed here fails the test: add it.
declare -A CALL=(
  ['usher.backends_internal()']="SELECT count(*) FROM usher.backends_internal()"
  ['usher.health_thresholds()']="SELECT count(*) FROM usher.health_thresholds()"
  ['usher.health()']="SELECT count(*) FROM usher.health()"
  ['usher.health_sessions_internal()']="SELECT count(*) FROM usher.health_sessions_internal()"
  ['usher.replication_status()']="SELECT count(*) FROM usher.replication_status()"
  ['usher.replay_caught_up_internal()']="SELECT usher.replay_caught_up_internal() IS NULL"
  ['usher.ready()']="SELECT usher.ready()"
  ['usher.metrics()']="SELECT length(usher.metrics()) > 0"
  ['usher.published_services_internal()']="SELECT count(*) FROM usher.published_services_internal()"
  ['usher.service_status_internal()']="SELECT count(*) FROM usher.service_status_internal()"
  ['usher.semaphores_internal()']="SELECT count(*) FROM usher.semaphores_internal()"
  ['usher.activity_history_internal()']="SELECT count(*) FROM usher.activity_history_internal()"
  ['usher.cpu_cores_internal()']="SELECT count(*) FROM usher.cpu_cores_internal()"
  ['usher.pool_advice(jsonb)']="SELECT count(*) FROM usher.pool_advice('{\"sp_svc\": 2}')"
  ['usher._check_registry_writable()']="SELECT usher._check_registry_writable()"
  ['usher._check_semaphores_writable()']="SELECT usher._check_semaphores_writable()"
  ['usher.checkout(text)']="SELECT usher.checkout('sp-holder')"
  ['usher.checkin()']="SELECT usher.checkin()"
  ['usher.set_service(text,integer,integer,integer,interval,integer,boolean,text,text)']="SELECT usher.set_service('sp_svc', max_connections => 5, queue_timeout => '1.5s')"
  ['usher.set_role_service(name,text)']="SELECT usher.set_role_service('sp_app', 'sp_svc')"
  ['usher.drop_service(text)']="SELECT usher.set_service('sp_gone'); SELECT usher.drop_service('sp_gone')"
  ['usher.set_semaphore(text,integer,text)']="SELECT usher.set_semaphore('sp_sem', 2)"
  ['usher.drop_semaphore(text)']="SELECT usher.set_semaphore('sp_gone', 1); SELECT usher.drop_semaphore('sp_gone')"
  ['usher.acquire(text,integer,interval,text)']="SELECT usher.acquire('sp_sem', 1, '1s', 'session')"
  ['usher.release(text,integer)']="SELECT usher.acquire('sp_sem', 1, '1s', 'session'); SELECT usher.release('sp_sem', 1)"
)
# drive ROLE_CMD...: calls every function it may execute and reads every view it may read.
drive() {
  local who=$1; shift
  local f sql missing=() out errors="" order role
  role=$("$@" -c 'SELECT current_user') || { assert_eq "$role" "a role" "$who: can connect"; return; }
  order=$("${SAFE[@]}" -c "SELECT p.oid::regprocedure FROM pg_proc p
                            WHERE p.pronamespace = 'usher'::regnamespace AND p.prorettype <> 'trigger'::regtype
                            ORDER BY p.proname")
  while IFS= read -r f; do
    sql=${CALL[$f]:-}
    if [[ -z $sql ]]; then missing+=("$f"); continue; fi
    [[ $("${SAFE[@]}" -c "SELECT has_function_privilege('$role', '$f', 'EXECUTE')") == t ]] || continue
    out=$("$@" -c "$sql" 2>&1) || errors+="$f: $out"$'\n'
  done <<<"$order"
  # Every view it may read.
  while IFS= read -r f; do
    out=$("$@" -c "SELECT count(*) FROM $f" 2>&1) || errors+="$f: $out"$'\n'
  done < <("${SAFE[@]}" -c "SELECT c.oid::regclass FROM pg_class c WHERE c.relnamespace = 'usher'::regnamespace
                              AND c.relkind = 'v' AND has_table_privilege('$role', c.oid, 'SELECT')
                            ORDER BY 1")
  assert_eq "${missing[*]:-}" "" "$who: every function of schema usher is driven by this test"
  assert_eq "$errors" "" "$who: every call succeeds"
}

# A service, a role mapping and a semaphore for the readers to show.
"${SAFE[@]}" -c "SELECT usher.set_service('sp_svc', max_connections => 5)" \
  -c "SELECT usher.set_role_service('sp_app', 'sp_svc')" -c "SELECT usher.set_semaphore('sp_sem', 2)" >/dev/null
reset_pwned
drive superuser "${AS_SUPER[@]}"
assert_eq "$(pwned)" 0 "superuser: no function or view runs mallory's objects (functions, views, commits)"
"${SAFE[@]}" -c "SELECT * FROM public.pwned LIMIT 5" | sed 's/^/#   /'

reset_pwned
drive pg_monitor "${AS_MONITOR[@]}"
assert_eq "$(pwned)" 0 "pg_monitor: no function or view runs mallory's objects"

# Commits of registry and semaphore changes by direct DML (the owner may): the
# publication's read runs at COMMIT under the session's hostile search_path.
reset_pwned
"${AS_SUPER[@]}" >/dev/null 2>&1 <<'SQL'
UPDATE usher.service SET comment = 'by DML' WHERE name = 'sp_svc';
UPDATE usher.role_service SET service = 'sp_svc' WHERE role_name = 'sp_app';
UPDATE usher.semaphore SET capacity = 3 WHERE name = 'sp_sem';
BEGIN; SELECT usher.set_service('sp_svc2', max_active => 2, queue_timeout => '250ms'); COMMIT;
SQL
assert_eq "$(pwned)" 0 "commits of direct registry and semaphore changes run nothing of mallory's"
assert_eq "$("${SAFE[@]}" -c "SELECT max_active FROM usher.published_services WHERE name = 'sp_svc2'")" 2 \
  "the changes were published"

# The publisher worker at server start (the database's search_path is the hostile one).
reset_pwned
lines_before=$(wc -l <"$LOG")
cluster_restart $NAME || exit 1
published_after_restart() { tail -n +"$((lines_before + 1))" "$LOG" | grep -q 'pg_usher: published .* semaphore'; }
await 30 published_after_restart
assert_match "$(tail -n +"$((lines_before + 1))" "$LOG" | grep 'pg_usher: published .* service')" \
  'published 3 service\(s\) and 1 role mapping' "the publisher worker read the registry after the restart"
assert_eq "$("${SAFE[@]}" -c "SELECT max_active, queue_timeout FROM usher.published_services WHERE name = 'sp_svc2'")" \
  "2|00:00:00.25" "what the worker published"
assert_eq "$(pwned)" 0 "the publisher worker at restart runs nothing of mallory's"

# The sampler: samples arrive and reading them runs nothing of mallory's.
reset_pwned
sampled() { [[ $("${SAFE[@]}" -c "SELECT count(*) > 0 FROM usher.activity_history") == t ]]; }
await 10 sampled
"${AS_SUPER[@]}" -c "SELECT count(*) FROM usher.activity_summary" -c "SELECT count(*) FROM usher.pool_advice()" >/dev/null 2>&1
assert_eq "$(pwned)" 0 "the sampler and its views run nothing of mallory's"

assert_eq "$(grep -c 'PWNED' "$LOG" | tr -d ' ')" 1 \
  "the server log shows mallory's warning only for mallory's own query"
assert_eq "$("${SAFE[@]}" -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'")" f "mallory is not superuser"

assert_done
