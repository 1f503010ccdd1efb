-- usher.replication_status(): its shape, who may call it, and what a primary without a
-- standby reports (the test server has none; tests/integration/replicas.sh runs a real
-- standby). One transaction, rolled back.
BEGIN;
CREATE EXTENSION pg_usher;
SELECT plan(8);
\ir lib/helpers.psql

CREATE ROLE usher_tap_repl_plain;
CREATE ROLE usher_tap_repl_monitor IN ROLE pg_monitor;

SELECT is(pg_catalog.pg_get_function_arguments('usher.replication_status()'::regprocedure),
          'OUT role text, OUT standby_name text, OUT client_addr inet, OUT upstream_host text, '
          'OUT upstream_port integer, OUT state text, OUT sync_state text, OUT sent_lsn pg_lsn, '
          'OUT write_lsn pg_lsn, OUT flush_lsn pg_lsn, OUT received_lsn pg_lsn, OUT replay_lsn pg_lsn, '
          'OUT write_lag interval, OUT flush_lag interval, OUT replay_lag interval, OUT lag_bytes bigint, '
          'OUT lag_seconds double precision, OUT replay_paused boolean, '
          'OUT last_replay_time timestamp with time zone',
          'replication_status(): its columns');
SELECT is(pg_temp.as_role('usher_tap_repl_plain', 'SELECT count(*) FROM usher.replication_status()'), 'ERROR 42501',
          'plain role: replication_status() denied');
SELECT is(pg_temp.as_role('usher_tap_repl_plain', 'SELECT usher.replay_caught_up_internal()::text'), 'ERROR 42501',
          'plain role: replay_caught_up_internal() denied');
SELECT is(pg_temp.as_role('usher_tap_repl_monitor', 'SELECT role FROM usher.replication_status()'), 'primary',
          'pg_monitor: replication_status() says primary');
SELECT is((SELECT count(*) FROM usher.replication_status()
            WHERE role = 'primary' AND standby_name IS NULL AND state IS NULL AND lag_bytes IS NULL
              AND replay_paused IS NULL),
          1::bigint, 'a primary without a standby: one row, the standby columns NULL');
SELECT is(usher.replay_caught_up_internal(), NULL, 'a primary has no replay catch-up time');
SELECT is(array_agg(status || ' ' || value || ' ' || detail ORDER BY "check"),
          ARRAY['ok 0 primary with no standby connected', 'ok 0 primary with no standby connected',
                'ok 0 primary with no standby connected'],
          'health(): the three replication checks are ok on a primary without a standby')
  FROM usher.health() WHERE "check" LIKE 'replication%';
SELECT is((SELECT unit || ' ' || warning || ' ' || coalesce(critical::text, 'NULL')
             FROM usher.health_thresholds() WHERE "check" = 'replication_state'),
          'flag 1 NULL', 'replication_state: a flag, warning by default, no critical threshold');

SELECT * FROM finish();
ROLLBACK;
