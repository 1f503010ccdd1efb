-- Application semaphores from real sessions (dblink): timeouts, release at session end,
-- release on commit and rollback of another session, and privileges: a plain role is
-- denied, a role granted EXECUTE may acquire and release, pg_monitor reads the view.
-- Not one transaction: the other sessions must see the extension, so it is committed
-- here and dropped at the end.
CREATE EXTENSION pg_usher;
SELECT plan(35);
\ir lib/helpers.psql

SELECT FROM usher.set_semaphore('reports', 2);
CREATE FUNCTION pg_temp.held(semaphore text) RETURNS integer LANGUAGE sql AS
  $$ SELECT held FROM usher.semaphores WHERE name = semaphore $$;
CREATE FUNCTION pg_temp.remote(conn text, sql text) RETURNS text LANGUAGE sql AS
  $$ SELECT v FROM dblink(conn, sql) AS t(v text) $$;

-- Another session holds both permits for its session.
SELECT dblink_connect('other', pg_temp.here('reports/worker-1'));
SELECT is(pg_temp.remote('other', $$SELECT usher.acquire('reports', 2, '1s', 'session')::text$$), 'true',
          'another session acquires 2 of 2 permits for its session');
SELECT is(pg_temp.held('reports'), 2, 'usher.semaphores shows them held');
SELECT is((SELECT holder_pids FROM usher.semaphores WHERE name = 'reports'),
          ARRAY[pg_temp.remote('other', 'SELECT pg_backend_pid()::text')::integer], 'holder_pids names that session');
SELECT is(usher.acquire('reports', 1, '0'), false, 'a full semaphore: timeout 0 returns false at once');
CREATE TEMP TABLE waited AS SELECT clock_timestamp() AS t0, usher.acquire('reports', 1, '300ms') AS ok;
SELECT is((SELECT ok FROM waited), false, 'timeout 300ms returns false');
SELECT ok((SELECT clock_timestamp() - t0 >= interval '280ms' FROM waited), 'after waiting about the timeout');
SELECT is((SELECT waiters FROM usher.semaphores WHERE name = 'reports'), 0, 'and leaves no waiter');
SELECT is(pg_temp.remote('other', $$SELECT usher.release('reports')::text$$), '', 'the other session releases one permit');
SELECT is(usher.acquire('reports', 1, '0'), true, 'now one is free');
SELECT is(pg_temp.held('reports'), 1, 'held 1: the other session''s; this statement''s permit ended with its transaction');
SELECT dblink_disconnect('other');
SELECT ok(pg_temp.held('reports') IS NOT NULL, 'the other session has disconnected');
SELECT pg_sleep(0.1) FROM generate_series(1, 50) WHERE pg_temp.held('reports') > 0 LIMIT 50;
SELECT is(pg_temp.held('reports'), 0, 'its session-scope permit is released when the session ends');

-- Another session's transaction: released at commit, and at rollback.
SELECT dblink_connect('other', pg_temp.here('reports/worker-2'));
SELECT dblink_exec('other', 'BEGIN');
SELECT is(pg_temp.remote('other', $$SELECT usher.acquire('reports', 2)::text$$), 'true', 'a transaction acquires 2');
SELECT is(pg_temp.held('reports'), 2, 'held while its transaction is open');
SELECT dblink_exec('other', 'COMMIT');
SELECT is(pg_temp.held('reports'), 0, 'released at commit');
SELECT dblink_exec('other', 'BEGIN');
SELECT is(pg_temp.remote('other', $$SELECT usher.acquire('reports', 2)::text$$), 'true', 'another transaction acquires 2');
SELECT dblink_exec('other', 'ROLLBACK');
SELECT is(pg_temp.held('reports'), 0, 'released at rollback');
SELECT dblink_exec('other', 'BEGIN');
SELECT is(pg_temp.remote('other', $$SELECT usher.acquire('reports', 2)::text$$), 'true', 'a third acquires 2');
SELECT throws_ok($$SELECT dblink_exec('other', 'SELECT 1/0')$$, NULL, NULL, 'then fails');
SELECT dblink_exec('other', 'ROLLBACK');
SELECT is(pg_temp.held('reports'), 0, 'released when the failed transaction is rolled back');
SELECT dblink_disconnect('other');

-- Capacities near the int4 limit, with a waiter: neither a release nor a raised
-- capacity grants a request that would take held past the capacity (held + permits
-- overflowing int4); the waiter is served once it really fits.
SELECT FROM usher.set_semaphore('wide', 2000000000);
SELECT is(usher.acquire('wide', 1500000000, '0', 'session'), true, 'this session takes 1500000000 of 2000000000');
SELECT dblink_connect('other', pg_temp.here('wide/worker'));
SELECT dblink_send_query('other', $$SELECT usher.acquire('wide', 1500000000, '60s', 'session')$$);
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    EXIT WHEN (SELECT waiters FROM usher.semaphores WHERE name = 'wide') = 1;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT is((SELECT waiters FROM usher.semaphores WHERE name = 'wide'), 1, 'another session asking for 1500000000 waits');
SELECT usher.release('wide', 1);
SELECT is((SELECT held || ' ' || waiters FROM usher.semaphores WHERE name = 'wide'), '1499999999 1',
          'a release that leaves 500000001 free does not grant it: held stays 1499999999, the waiter waits');
SELECT FROM usher.set_semaphore('wide', 2147483647);
SELECT is((SELECT held || ' ' || waiters FROM usher.semaphores WHERE name = 'wide'), '1499999999 1',
          'nor does raising the capacity to 2147483647');
SELECT usher.release('wide', 1499999999);
SELECT is((SELECT held || ' ' || waiters FROM usher.semaphores WHERE name = 'wide'), '1500000000 0',
          'once this session releases everything, the waiter gets its 1500000000');
SELECT is((SELECT ok FROM dblink_get_result('other') AS t(ok boolean)), true, 'and its acquire returns true');
SELECT FROM dblink_get_result('other') AS t(ok boolean);
SELECT is(pg_temp.remote('other', $$SELECT usher.acquire('wide', 1000000000, '0', 'session')::text$$), 'false',
          'a second request of 1000000000 does not fit beside it');
SELECT is((SELECT held FROM usher.semaphores WHERE name = 'wide'), 1500000000, 'held is never more than the capacity');
SELECT dblink_disconnect('other');
SELECT FROM usher.drop_semaphore('wide');

-- Privileges.
CREATE ROLE usher_sem_plain;
CREATE ROLE usher_sem_app;
CREATE ROLE usher_sem_monitor IN ROLE pg_monitor;
GRANT USAGE ON SCHEMA usher TO usher_sem_app, usher_sem_plain;
GRANT EXECUTE ON FUNCTION usher.acquire(text, integer, interval, text), usher.release(text, integer) TO usher_sem_app;
SELECT is(pg_temp.as_role('usher_sem_plain', $$SELECT usher.acquire('reports')$$), 'ERROR 42501',
          'a plain role may not acquire');
SELECT is(pg_temp.as_role('usher_sem_plain', $$SELECT usher.set_semaphore('reports', 9)$$), 'ERROR 42501',
          'nor define semaphores');
SELECT is(pg_temp.as_role('usher_sem_plain', $$SELECT count(*) FROM usher.semaphores$$), 'ERROR 42501',
          'nor read usher.semaphores');
SELECT is(pg_temp.as_role('usher_sem_app', $$SELECT usher.acquire('reports', 1, '0', 'session')$$), 'true',
          'a role granted EXECUTE acquires');
SELECT is(pg_temp.as_role('usher_sem_app', $$SELECT usher.release('reports')::text$$), '', 'and releases');
SELECT is(pg_temp.as_role('usher_sem_app', $$SELECT usher.set_semaphore('reports', 9)$$), 'ERROR 42501',
          'but may not define semaphores');
SELECT is(pg_temp.as_role('usher_sem_monitor', $$SELECT string_agg(name || ':' || capacity, ',') FROM usher.semaphores$$),
          'reports:2', 'pg_monitor reads usher.semaphores');

SELECT * FROM finish();
REVOKE ALL ON SCHEMA usher FROM usher_sem_app, usher_sem_plain;
DROP EXTENSION pg_usher;
DROP ROLE usher_sem_plain, usher_sem_app, usher_sem_monitor;
