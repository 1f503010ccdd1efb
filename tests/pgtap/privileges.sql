-- Who may read what: nothing for PUBLIC, read access through pg_monitor, query texts
-- of other roles' sessions only with pg_read_all_stats (pg_monitor includes it, as for
-- pg_stat_activity), thresholds changeable only by superusers. Not one transaction: a
-- session of the viewer role must see the extension and the role, so they are
-- committed here and dropped at the end.
CREATE EXTENSION pg_usher;
SELECT plan(26);
\ir lib/helpers.psql

CREATE ROLE usher_tap_plain;
CREATE ROLE usher_tap_monitor IN ROLE pg_monitor;
-- A role a DBA granted the backends view alone, without pg_read_all_stats.
CREATE ROLE usher_tap_viewer LOGIN;
GRANT USAGE ON SCHEMA usher TO usher_tap_viewer;
GRANT SELECT ON usher.backends TO usher_tap_viewer;
GRANT EXECUTE ON FUNCTION usher.backends_internal() TO usher_tap_viewer;


-- A session of another role (the superuser running this test) to look at.
SELECT dblink_connect('other', format('host=%s port=%s dbname=%s user=%s application_name=orders/w1',
                      split_part(current_setting('unix_socket_directories'), ',', 1),
                      current_setting('port'), current_database(), current_user));
CREATE TEMP TABLE other AS
  SELECT pid FROM dblink('other', 'SELECT pg_backend_pid()') AS t(pid integer);
SELECT dblink_exec('other', 'SET application_name = ''orders/w1''');
GRANT SELECT ON other TO usher_tap_viewer, usher_tap_monitor;

-- A plain role is refused everything, with 42501.
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT count(*) FROM usher.backends'), 'ERROR 42501', 'plain role: backends denied');
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT count(*) FROM usher.connections'), 'ERROR 42501', 'plain role: connections denied');
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT count(*) FROM usher.capacity'), 'ERROR 42501', 'plain role: capacity denied');
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT count(*) FROM usher.health()'), 'ERROR 42501', 'plain role: health() denied');
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT usher.ready()'), 'ERROR 42501', 'plain role: ready() denied');
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT usher.metrics()'), 'ERROR 42501', 'plain role: metrics() denied');
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT count(*) FROM usher.backends_internal()'), 'ERROR 42501', 'plain role: the backing function denied');
SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT count(*) FROM usher.health_thresholds()'), 'ERROR 42501', 'plain role: thresholds denied');

-- A pg_monitor role reads everything, including other roles' query text and address
-- columns (pg_monitor includes pg_read_all_stats, exactly as for pg_stat_activity).
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT count(*) FROM usher.backends WHERE pid = (SELECT pid FROM other)'), '1', 'pg_monitor: sees other sessions');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT query FROM usher.backends WHERE pid = (SELECT pid FROM other)'),
          'SET application_name = ''orders/w1''', 'pg_monitor: sees the query text of other roles, as in pg_stat_activity');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT (count(*) > 0)::text FROM usher.connections'), 'true', 'pg_monitor: connections');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT count(*) FROM usher.capacity WHERE scope = ''server'''), '1', 'pg_monitor: capacity');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT count(*) FROM usher.health()'), '10', 'pg_monitor: health()');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT usher.ready()::text'), 'true', 'pg_monitor: ready()');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT (usher.metrics() LIKE ''# HELP %'')::text'), 'true', 'pg_monitor: metrics()');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SET usher.lock_waits_warning = ''1h'''), 'ERROR 42501', 'pg_monitor: cannot change thresholds');

-- Without pg_read_all_stats: rows and states of others, but no query text or address.
SELECT is(pg_temp.as_role('usher_tap_viewer', 'SELECT state FROM usher.backends WHERE pid = (SELECT pid FROM other)'), 'idle', 'viewer: sees the state of other roles'' sessions');
SELECT is(pg_temp.as_role('usher_tap_viewer', 'SELECT coalesce(query, ''<hidden>'') FROM usher.backends WHERE pid = (SELECT pid FROM other)'),
          '<hidden>', 'viewer: no query text of other roles');
SELECT dblink_connect('viewer', format('host=%s port=%s dbname=%s user=usher_tap_viewer',
                      split_part(current_setting('unix_socket_directories'), ',', 1),
                      current_setting('port'), current_database()));
SELECT is((SELECT q FROM dblink('viewer', 'SELECT query FROM usher.backends WHERE pid = pg_backend_pid()') AS t(q text)),
          'SELECT query FROM usher.backends WHERE pid = pg_backend_pid()', 'viewer: sees its own session''s query text');
SELECT dblink_disconnect('viewer');
SELECT is(pg_temp.as_role('usher_tap_viewer', 'SELECT count(*) FROM usher.health()'), 'ERROR 42501', 'viewer: health() not granted');

-- The superuser reads everything.
SELECT is((SELECT query FROM usher.backends WHERE pid = (SELECT pid FROM other)), 'SET application_name = ''orders/w1''', 'superuser: query text of others');
SELECT lives_ok('SET usher.lock_waits_warning = ''1h''; RESET usher.lock_waits_warning', 'superuser: may change thresholds');

-- SECURITY DEFINER only for the registry writers, each with search_path pinned.
SELECT is((SELECT array_agg(proname::text ORDER BY proname) FROM pg_proc
            WHERE pronamespace = 'usher'::regnamespace AND prosecdef),
          ARRAY['drop_semaphore', 'drop_service', 'set_role_service', 'set_semaphore', 'set_service'],
          'SECURITY DEFINER only for the registry and semaphore definitions');
SELECT is((SELECT count(*) FROM pg_proc WHERE pronamespace = 'usher'::regnamespace AND prosecdef
              AND NOT coalesce(proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']), 0::bigint,
          'every SECURITY DEFINER function pins search_path');
-- Every function, whatever its language (docs/security.md): none resolves a name under
-- the caller's search_path, now or after a change adds SQL to it.
SELECT is((SELECT array_agg(oid::regprocedure::text ORDER BY 1) FROM pg_proc
            WHERE pronamespace = 'usher'::regnamespace
              AND NOT coalesce(proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp']), NULL,
          'every function of schema usher pins search_path');
SELECT is((SELECT count(*) FROM pg_proc p, aclexplode(p.proacl) a
            WHERE p.pronamespace = 'usher'::regnamespace AND a.grantee = 0), 0::bigint, 'nothing executable by PUBLIC');

SELECT dblink_disconnect('other');
SELECT * FROM finish();
DROP EXTENSION pg_usher;
DROP TABLE other;
DROP ROLE usher_tap_plain, usher_tap_monitor;
DROP OWNED BY usher_tap_viewer;
DROP ROLE usher_tap_viewer;
