-- Who may change the service registry: the extension's owner, and the roles it grants
-- EXECUTE on the registry functions; nobody through the table directly; and only in
-- the database named by usher.database. Not one transaction: roles and a second
-- database must be visible to other sessions.
CREATE EXTENSION pg_usher;
SELECT plan(12);
\ir lib/helpers.psql

CREATE ROLE usher_tap_plain;
CREATE ROLE usher_tap_monitor IN ROLE pg_monitor;
CREATE ROLE usher_tap_dba;
GRANT EXECUTE ON FUNCTION usher.set_service(text, integer, integer, integer, interval, integer, boolean, text, text),
                          usher.drop_service(text), usher.set_role_service(name, text) TO usher_tap_dba;
GRANT USAGE ON SCHEMA usher TO usher_tap_dba;


SELECT is(pg_temp.as_role('usher_tap_plain', 'SELECT usher.set_service(''tap_svc'')'), 'ERROR 42501', 'plain role: set_service denied');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT usher.set_service(''tap_svc'')'), 'ERROR 42501', 'pg_monitor: set_service denied');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT usher.drop_service(''default'')'), 'ERROR 42501', 'pg_monitor: drop_service denied');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'INSERT INTO usher.service (name) VALUES (''tap_direct'') RETURNING name'),
          'ERROR 42501', 'pg_monitor: the table cannot be written directly');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT count(*)::text FROM usher.service_status WHERE service = ''default'''),
          '1', 'pg_monitor: reads service_status');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT count(*)::text FROM usher.published_services'),
          '1', 'pg_monitor: reads published_services');
SELECT is(pg_temp.as_role('usher_tap_monitor', 'SELECT usher.checkout(''x'')::text'), 'ERROR 42501',
          'checkout is not granted to pg_monitor (the owner grants it to pool roles)');
SELECT is(pg_temp.as_role('usher_tap_dba', 'SELECT (usher.set_service(''tap_svc'', max_connections => 3)).max_connections::text'),
          '3', 'a role granted EXECUTE changes the registry through the SECURITY DEFINER function');
SELECT is(pg_temp.as_role('usher_tap_dba', 'INSERT INTO usher.service (name) VALUES (''tap_direct'') RETURNING name'),
          'ERROR 42501', 'but still cannot write the table directly');
SELECT is((SELECT max_connections FROM usher.published_services WHERE name = 'tap_svc'), 3, 'its change is published');

-- Another database with the extension: registry changes there are refused, with a HINT.
CREATE DATABASE usher_tap_other;
SELECT dblink_connect('other', format('host=%s port=%s dbname=usher_tap_other user=%s',
                      split_part(current_setting('unix_socket_directories'), ',', 1),
                      current_setting('port'), current_user));
SELECT dblink_exec('other', 'CREATE EXTENSION pg_usher');
SELECT dblink_exec('other', $$
  CREATE FUNCTION try_set_service() RETURNS text LANGUAGE plpgsql AS $f$
  BEGIN
    PERFORM usher.set_service('tap_elsewhere');
    RETURN 'accepted';
  EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
  END $f$ $$);
SELECT is((SELECT r FROM dblink('other', 'SELECT try_set_service()') AS t(r text)),
          format('55000: the service registry is enforced from database "%s", not "usher_tap_other"',
                 current_setting('usher.database')),
          'a registry change in another database is refused with 55000, naming both databases');
SELECT is((SELECT count(*) FROM usher.published_services WHERE name = 'tap_elsewhere'), 0::bigint,
          'and nothing from the other database is published');
SELECT dblink_disconnect('other');
DROP DATABASE usher_tap_other;

SELECT * FROM finish();
DROP EXTENSION pg_usher;
DROP OWNED BY usher_tap_dba, usher_tap_monitor, usher_tap_plain;
DROP ROLE usher_tap_plain, usher_tap_monitor, usher_tap_dba;
