-- usher.health_sessions_internal(), which usher.health() reads instead of usher.backends:
-- a row for each session a per-session check can report on (idle in a transaction,
-- aborted or not; in a transaction; waiting for a lock; lent), none for the sessions no
-- check names, which one row (pid NULL) counts. That is what keeps health() cheap with
-- many idle connections; the counts and columns must still be those of usher.backends.
-- The extension is committed (the other sessions call usher.checkout) and dropped at
-- the end.
CREATE EXTENSION pg_usher;
SELECT plan(15);
\ir lib/helpers.psql

SELECT dblink_connect(c, pg_temp.here('tapsvc/' || c))
  FROM unnest(ARRAY['quiet1', 'quiet2', 'quiet3', 'open', 'aborted', 'leased']) c;
CREATE TEMP TABLE remote AS
  SELECT c AS conn, (SELECT pid FROM dblink(c, 'SELECT pg_backend_pid()') AS t(pid integer)) AS pid
    FROM unnest(ARRAY['quiet1', 'quiet2', 'quiet3', 'open', 'aborted', 'leased']) c;
SELECT dblink_exec('open', 'BEGIN');
SELECT * FROM dblink('open', 'SELECT 1') AS t(one integer);
SELECT dblink_exec('aborted', 'BEGIN');
SELECT dblink_exec('aborted', 'LOCK TABLE usher_tap_no_such_table', false);
SELECT * FROM dblink('leased', 'SELECT usher.checkout(''tap-holder'')') AS t(ok boolean);

-- A session reports ClientRead a moment after its answer reached us: wait for all six,
-- or the two functions below, which read wait events live, could see one before and
-- one after.
SELECT pg_temp.await($$SELECT count(*) = 6 FROM pg_stat_activity
                        WHERE pid IN (SELECT pid FROM remote) AND wait_event = 'ClientRead'$$);
-- usher.backends reads one snapshot of the backend status (this transaction keeps it);
-- health_sessions_internal() reads the status slots live. This test's sessions are
-- quiet from here on (all in ClientRead), so both see the same.
BEGIN;
SELECT pg_stat_clear_snapshot();
CREATE TEMP TABLE hs AS SELECT * FROM usher.health_sessions_internal();
CREATE TEMP TABLE bk AS SELECT * FROM usher.backends WHERE pid <> pg_backend_pid();

SELECT is((SELECT sum(sessions) FROM hs), (SELECT count(*) FROM bk)::bigint,
          'the rows count every client backend but the caller''s');
SELECT is((SELECT count(*) FROM hs WHERE pid = pg_backend_pid()), 0::bigint, 'the caller is left out');
SELECT is((SELECT count(*) FROM hs WHERE pid IN (SELECT pid FROM remote WHERE conn LIKE 'quiet%')), 0::bigint,
          'idle sessions with no transaction, lease or lock wait get no row of their own');
SELECT is((SELECT count(*) FROM hs WHERE pid IS NULL), 1::bigint, 'one row counts them');
SELECT cmp_ok((SELECT sessions FROM hs WHERE pid IS NULL), '>=', 3, 'the counting row counts the three idle sessions');
SELECT is((SELECT count(*) FROM hs WHERE pid IS NOT NULL AND sessions <> 1), 0::bigint,
          'a session''s own row stands for one session');
SELECT is((SELECT state FROM hs WHERE pid = (SELECT pid FROM remote WHERE conn = 'open')),
          'idle in transaction', 'a session idle in a transaction has its row');
SELECT is((SELECT state FROM hs WHERE pid = (SELECT pid FROM remote WHERE conn = 'aborted')),
          'idle in transaction (aborted)', 'a session idle in an aborted transaction has its row');
SELECT is((SELECT lease_holder FROM hs WHERE pid = (SELECT pid FROM remote WHERE conn = 'leased')),
          'tap-holder', 'a lent idle session has its row');
-- The columns are usher.backends's, row for row (ages compared as present or absent, as
-- the two calls read the clock apart). This test's own sessions only: the wait event is
-- read when each function runs, not from the snapshot, and other sessions may move on.
SELECT is((SELECT count(*) FROM hs JOIN bk USING (pid)
            WHERE pid IN (SELECT pid FROM remote) AND (hs.service, hs.role, hs.state, hs.wait_event_type, hs.lease_holder,
                   hs.xact_age IS NULL, hs.state_age IS NULL, hs.lease_age IS NULL)
                  IS DISTINCT FROM
                  (bk.service, bk.role, bk.state, bk.wait_event_type, bk.lease_holder,
                   bk.xact_age IS NULL, bk.state_age IS NULL, bk.lease_age IS NULL)),
          0::bigint, 'the rows show what usher.backends shows for the session');
SELECT is((SELECT count(*) FROM hs WHERE pid IN (SELECT pid FROM remote)), 3::bigint,
          'three of this test''s sessions have rows');
SELECT is((SELECT count(*) FROM hs WHERE pid IS NOT NULL),
          (SELECT count(*) FROM bk WHERE state LIKE 'idle in transaction%' OR xact_age IS NOT NULL
                                      OR wait_event_type = 'Lock' OR lease_holder IS NOT NULL),
          'exactly the sessions a check can report on have rows');
-- health() counts from it: the caller included, as usher.backends counts.
SELECT is((SELECT split_part(detail, ' ', 1) FROM usher.health() WHERE "check" = 'connection_saturation'),
          (SELECT count(*)::text FROM usher.backends), 'connection_saturation counts every client backend');

-- Read live, not from this transaction's snapshot: the 'open' session commits (it
-- reports itself idle before its answer reaches us); pg_stat_activity, which reads the
-- snapshot, still shows it idle in a transaction; health_sessions_internal() no longer
-- gives it a row.
SELECT dblink_exec('open', 'COMMIT');
SELECT is((SELECT state FROM pg_stat_activity WHERE pid = (SELECT pid FROM remote WHERE conn = 'open')),
          'idle in transaction', 'pg_stat_activity still shows the transaction''s snapshot');
SELECT is((SELECT count(*) FROM usher.health_sessions_internal()
            WHERE pid = (SELECT pid FROM remote WHERE conn = 'open')),
          0::bigint, 'health_sessions_internal() reads the session as it is now');

COMMIT;

SELECT * FROM dblink('leased', 'SELECT usher.checkin()') AS t(ok boolean);
SELECT dblink_disconnect(c) FROM unnest(ARRAY['quiet1', 'quiet2', 'quiet3', 'open', 'aborted', 'leased']) c;
SELECT * FROM finish();
DROP EXTENSION pg_usher;
