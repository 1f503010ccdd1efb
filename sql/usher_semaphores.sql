-- Application semaphores in one session: definitions, acquire / release in both scopes,
-- automatic release at commit, rollback and subtransaction abort, capacity changes and
-- drops while permits are held, and every invalid argument. (Concurrent sessions, FIFO
-- order, waits and exits: tests/integration/semaphores.sh and tests/pgtap/semaphores.sql.)
-- Runs in the database named by usher.database (the test harness sets usher_test).
CREATE EXTENSION pg_usher;
\set SHOW_CONTEXT never
\set VERBOSITY default

CREATE FUNCTION pg_temp.sem(semaphore text,
    OUT capacity integer, OUT held integer, OUT available integer, OUT waiters integer,
    OUT holders integer, OUT mine boolean, OUT defined boolean)
LANGUAGE sql AS $$
  SELECT capacity, held, available, waiters, holders, holder_pids = ARRAY[pg_backend_pid()], defined
    FROM usher.semaphores WHERE name = semaphore
$$;

-- Definitions: persisted in usher.semaphore, published when the transaction commits.
SELECT * FROM usher.set_semaphore('exports', 3, 'nightly CSV exports');
SELECT * FROM usher.set_semaphore('reindex', 1);
SELECT name, capacity, comment FROM usher.semaphore ORDER BY name;
SELECT name, capacity, held, available, waiters, holders, holder_pids, defined
  FROM usher.semaphores ORDER BY name;
BEGIN;
SELECT capacity FROM usher.set_semaphore('exports', 10);
SELECT capacity AS still_published FROM usher.semaphores WHERE name = 'exports';
ROLLBACK;
SELECT capacity AS after_rollback FROM usher.semaphores WHERE name = 'exports';
-- A change cannot be prepared: it would commit in another backend, unpublished.
BEGIN;
SELECT capacity FROM usher.set_semaphore('exports', 10);
PREPARE TRANSACTION 'sem_definitions';
SELECT capacity AS after_refused_prepare FROM usher.semaphores WHERE name = 'exports';
-- Changing the capacity keeps the comment unless a new one is given.
SELECT * FROM usher.set_semaphore('exports', 3);

-- Transaction scope (the default): released when the transaction ends.
BEGIN;
SELECT usher.acquire('exports');
SELECT usher.acquire('exports', 2);
SELECT * FROM pg_temp.sem('exports');
-- Full: a request that does not fit returns false when its timeout passes.
SELECT usher.acquire('exports', 1, timeout => '0');
SELECT usher.acquire('exports', 1, timeout => '50ms');
COMMIT;
SELECT * FROM pg_temp.sem('exports');

BEGIN;
SELECT usher.acquire('exports', 3);
ROLLBACK;
SELECT held AS after_rollback FROM pg_temp.sem('exports');

-- A statement outside a transaction block is its own transaction.
SELECT usher.acquire('exports', 3);
SELECT held AS after_autocommit FROM pg_temp.sem('exports');

-- Released early with usher.release, the most recent acquisition first.
BEGIN;
SELECT usher.acquire('exports', 2);
SELECT usher.release('exports');
SELECT held FROM pg_temp.sem('exports');
COMMIT;
SELECT held FROM pg_temp.sem('exports');

-- Subtransactions: what a rolled-back savepoint acquired is released with it; what a
-- released savepoint acquired belongs to the enclosing transaction.
BEGIN;
SELECT usher.acquire('exports');
SAVEPOINT a;
SELECT usher.acquire('exports');
ROLLBACK TO SAVEPOINT a;
SELECT held AS after_rollback_to_savepoint FROM pg_temp.sem('exports');
SAVEPOINT b;
SELECT usher.acquire('exports');
RELEASE SAVEPOINT b;
SAVEPOINT c;
SELECT held AS after_release_savepoint FROM pg_temp.sem('exports');
ROLLBACK TO SAVEPOINT c;
SELECT held AS still_held FROM pg_temp.sem('exports');
COMMIT;
SELECT held AS after_commit FROM pg_temp.sem('exports');

-- An error inside a PL/pgSQL exception block aborts its subtransaction: released.
DO $$
BEGIN
  BEGIN
    PERFORM usher.acquire('exports', 2);
    RAISE EXCEPTION 'job failed';
  EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'caught "%", held now %', SQLERRM, (SELECT held FROM usher.semaphores WHERE name = 'exports');
  END;
END $$;

-- Session scope: survives transactions (even rolled-back ones) until usher.release
-- or the end of the session.
SELECT usher.acquire('exports', 2, scope => 'session');
BEGIN;
SELECT usher.acquire('reindex', scope => 'session');
ROLLBACK;
SELECT name, held FROM usher.semaphores ORDER BY name;
-- Both scopes at once: a release gives back the most recent acquisition first.
BEGIN;
SELECT usher.acquire('exports');
SELECT usher.release('exports');
COMMIT;
SELECT held AS session_permits_kept FROM pg_temp.sem('exports');
SELECT usher.release('exports', 2);
SELECT usher.release('reindex');
SELECT name, held FROM usher.semaphores ORDER BY name;

-- A transaction holding transaction-scoped permits cannot be prepared.
BEGIN;
SELECT usher.acquire('reindex');
PREPARE TRANSACTION 'sem';
SELECT held AS after_refused_prepare FROM pg_temp.sem('reindex');

-- Capacity changes while permits are held: holders keep them; new requests wait until
-- held is below the new capacity. Capacity 0 closes the semaphore.
SELECT usher.acquire('exports', 3, scope => 'session');
SELECT capacity FROM usher.set_semaphore('exports', 2);
SELECT * FROM pg_temp.sem('exports');
SELECT usher.acquire('exports', 1, timeout => '0');
SELECT usher.release('exports', 2);
SELECT usher.acquire('exports', 1, timeout => '0');
SELECT usher.release('exports');
SELECT capacity FROM usher.set_semaphore('exports', 0);
SELECT usher.acquire('exports', 5, timeout => '10ms');
SELECT capacity FROM usher.set_semaphore('exports', 3);

-- Capacities near the int4 limit: a request that would take held past the capacity
-- (held + permits overflowing int4) is not granted, and held never goes negative.
SELECT capacity FROM usher.set_semaphore('huge', 2000000000);
SELECT usher.acquire('huge', 1500000000, '0', 'session') AS first_granted;
SELECT usher.acquire('huge', 1500000000, '0', 'session') AS second_granted;
SELECT usher.acquire('huge', 2000000000, '0', 'session') AS whole_capacity_granted;
SELECT usher.acquire('huge', 500000000, '0', 'session') AS the_rest_granted;
SELECT usher.acquire('huge', 1, '0', 'session') AS one_more_granted;
SELECT capacity, held, available, waiters FROM pg_temp.sem('huge');
SELECT usher.release('huge', 2000000000);
SELECT capacity FROM usher.set_semaphore('huge', 2147483647);
SELECT usher.acquire('huge', 2147483647, '0', 'session') AS max_granted;
SELECT usher.acquire('huge', 2147483647, '0', 'session') AS max_again_granted;
SELECT capacity, held, available FROM pg_temp.sem('huge');
SELECT usher.release('huge', 2147483647);
SELECT usher.drop_semaphore('huge');

-- Dropping a semaphore while it is held: the holder keeps its permits and can release
-- them; new requests find no semaphore; the entry disappears when nothing holds it.
SELECT usher.acquire('reindex', scope => 'session');
SELECT usher.drop_semaphore('reindex');
SELECT * FROM pg_temp.sem('reindex');
SELECT usher.acquire('reindex');
SELECT usher.release('reindex');
SELECT count(*) AS reindex_rows FROM usher.semaphores WHERE name = 'reindex';
SELECT usher.drop_semaphore('reindex');

-- Invalid arguments: SQLSTATE, message and hint of each error.
CREATE FUNCTION pg_temp.try(statement text, OUT code text, OUT message text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  code := '00000';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
END $$;
\pset format unaligned
SELECT v.statement, t.* FROM (VALUES
  ($$SELECT usher.acquire(NULL)$$),
  ($$SELECT usher.acquire('exports', NULL)$$),
  ($$SELECT usher.acquire('exports', 0)$$),
  ($$SELECT usher.acquire('exports', -1)$$),
  ($$SELECT usher.acquire('exports', 4)$$),
  ($$SELECT usher.acquire('missing')$$),
  ($$SELECT usher.acquire('exports', scope => 'forever')$$),
  ($$SELECT usher.acquire('exports', scope => NULL)$$),
  ($$SELECT usher.acquire('exports', timeout => '-1s')$$),
  ($$SELECT usher.release(NULL)$$),
  ($$SELECT usher.release('exports', 0)$$),
  ($$SELECT usher.release('missing')$$),
  ($$SELECT usher.release('exports')$$),
  ($$SELECT usher.acquire('exports', 1, scope => 'session')$$),
  ($$SELECT usher.release('exports', 2)$$),
  ($$SELECT usher.release('exports')$$),
  ($$SELECT usher.set_semaphore(NULL, 1)$$),
  ($$SELECT usher.set_semaphore('', 1)$$),
  ($$SELECT usher.set_semaphore(repeat('x', 64), 1)$$),
  ($$SELECT usher.set_semaphore('exports', NULL)$$),
  ($$SELECT usher.set_semaphore('exports', -1)$$),
  ($$SELECT usher.drop_semaphore('missing')$$)
) AS v(statement), pg_temp.try(v.statement) AS t;
\pset format aligned
-- Direct DML by the owner is held to the same rules by the table's constraints.
INSERT INTO usher.semaphore VALUES ('bad', -5);

-- Statistics.
SELECT name, peak_held, acquired_total > 0 AS acquired, timeouts_total > 0 AS timed_out
  FROM usher.semaphores ORDER BY name;

-- metrics(): each usher_semaphore_* family has one sample per semaphore, from the view;
-- the name is escaped as a label value. (Waiters: tests/integration/semaphores.sh.)
SELECT name, capacity FROM usher.set_semaphore(E'we"ird\\sem', 2);
BEGIN;
SELECT usher.acquire(E'we"ird\\sem');
SELECT line FROM regexp_split_to_table(usher.metrics(), E'\n') AS line
 WHERE line ~ '^(# (HELP|TYPE) )?usher_semaphore_';
SELECT s.name, count(m.line) AS matching_counter_samples
  FROM usher.semaphores s
  LEFT JOIN regexp_split_to_table(usher.metrics(), E'\n') AS m(line)
    ON m.line IN (format('usher_semaphore_acquired_total{semaphore="%s"} %s',
                         replace(replace(s.name, '\', '\\'), '"', '\"'), s.acquired_total),
                  format('usher_semaphore_timeouts_total{semaphore="%s"} %s',
                         replace(replace(s.name, '\', '\\'), '"', '\"'), s.timeouts_total))
 GROUP BY 1 ORDER BY 1;
COMMIT;

-- DROP EXTENSION unpublishes every semaphore.
DROP EXTENSION pg_usher;
CREATE EXTENSION pg_usher;
SELECT count(*) AS semaphores_after_recreate FROM usher.semaphores;
DROP EXTENSION pg_usher;
