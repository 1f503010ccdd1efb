-- usher.health() and usher.backends against real conditions created from other
-- sessions (dblink): a session idle in a transaction, a lock wait, a prepared
-- transaction, extra connections. Thresholds are lowered with SET so the test is quick;
-- every check goes to warning or critical and back to ok.
BEGIN;
CREATE EXTENSION pg_usher;
SELECT plan(30);
\ir lib/helpers.psql

-- Status of one check, read with a fresh backend-status snapshot (a transaction
-- otherwise keeps the first one it took).
CREATE FUNCTION pg_temp.status_of(check_name text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_stat_clear_snapshot();
  RETURN (SELECT string_agg(status, ',') FROM usher.health() WHERE "check" = check_name);
END $$;
CREATE FUNCTION pg_temp.detail_of(check_name text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_stat_clear_snapshot();
  RETURN (SELECT string_agg(detail, ',') FROM usher.health() WHERE "check" = check_name);
END $$;
-- Each connection's backend pid, asked once: asking again later would change the
-- session's state (and reset its state age), or fail while it runs an async query.
CREATE TEMP TABLE remote (conn text PRIMARY KEY, pid integer);
CREATE FUNCTION pg_temp.remote_pid(name text) RETURNS integer LANGUAGE sql AS $$
  SELECT pid FROM remote WHERE conn = name
$$;
-- Waits (bounded) until a session shows the wanted wait event type.
CREATE FUNCTION pg_temp.await_wait(target integer, wanted text) RETURNS boolean LANGUAGE sql AS $$
  SELECT pg_temp.await(format('SELECT EXISTS (SELECT 1 FROM usher.backends WHERE pid = %s AND wait_event_type = %L)',
                              target, wanted))
$$;

SELECT dblink_connect('idle', pg_temp.here('orders/worker-1'));
SELECT dblink_connect('holder', pg_temp.here('billing/holder'));
SELECT dblink_connect('waiter', pg_temp.here('billing/waiter'));
SELECT dblink_connect('preparer', pg_temp.here('batch'));
INSERT INTO remote
  SELECT c, (SELECT pid FROM dblink(c, 'SELECT pg_backend_pid()') AS t(pid integer))
    FROM unnest(ARRAY['idle', 'holder', 'waiter', 'preparer']) c;

-- Another session, seen in usher.backends with its service.
SELECT is((SELECT service || ' ' || state FROM usher.backends WHERE pid = pg_temp.remote_pid('idle')),
          'orders idle', 'another session shows with its service and state');

-- Idle in transaction, and the transaction's age.
SELECT dblink_exec('idle', 'BEGIN');
SELECT is(pg_temp.status_of('idle_in_transaction'), 'ok', 'idle in transaction: ok under the default threshold');
SET usher.idle_in_transaction_warning = '20ms';
SET usher.long_transactions_warning = '20ms';
SELECT pg_sleep(0.1);
SELECT is(pg_temp.status_of('idle_in_transaction'), 'warning', 'idle in transaction: warning past its threshold');
SELECT ok(pg_temp.detail_of('idle_in_transaction') LIKE
          format('pid %s (service orders, role %s) idle in transaction for %%', pg_temp.remote_pid('idle'), current_user),
          'idle in transaction: detail names the session');
SELECT is(pg_temp.status_of('long_transactions'), 'warning', 'long transactions: warning past its threshold');
SET usher.idle_in_transaction_critical = '30ms';
SELECT is(pg_temp.status_of('idle_in_transaction'), 'critical', 'idle in transaction: critical past its threshold');
SELECT is(usher.ready(), false, 'ready() is false while a check is critical');
SELECT is((SELECT threshold FROM usher.health() WHERE "check" = 'idle_in_transaction'), 0.03::float8,
          'the threshold reported is the critical one crossed, in seconds');
SELECT dblink_exec('idle', 'COMMIT');
SELECT is(pg_temp.status_of('idle_in_transaction'), 'ok', 'idle in transaction: ok again after COMMIT');
-- Any other client backend's transaction older than 20 ms also counts (seen once in CI
-- on a loaded machine), so what must hold is that the committed one no longer does.
-- On failure "have" shows the check's detail.
SELECT is(CASE WHEN pg_temp.status_of('long_transactions') = 'ok' OR
                    pg_temp.detail_of('long_transactions') NOT LIKE format('pid %s %%', pg_temp.remote_pid('idle'))
               THEN 'not counted' ELSE pg_temp.detail_of('long_transactions') END,
          'not counted', 'long transactions: the committed one no longer counts');
SELECT is(usher.ready(), true, 'ready() is true again');
RESET usher.idle_in_transaction_warning;
RESET usher.idle_in_transaction_critical;
RESET usher.long_transactions_warning;

-- A real lock wait: holder takes an exclusive lock, waiter queues behind it.
SELECT dblink_exec('holder', 'CREATE TABLE IF NOT EXISTS usher_tap_locked (x int)');
SELECT dblink_exec('holder', 'BEGIN');
SELECT dblink_exec('holder', 'LOCK TABLE usher_tap_locked IN ACCESS EXCLUSIVE MODE');
SELECT dblink_send_query('waiter', 'SELECT count(*) FROM usher_tap_locked');
SELECT ok(pg_temp.await_wait(pg_temp.remote_pid('waiter'), 'Lock'), 'the waiter is waiting on a lock');
SELECT is((SELECT blocking_pids FROM usher.backends WHERE pid = pg_temp.remote_pid('waiter')),
          ARRAY[pg_temp.remote_pid('holder')], 'backends.blocking_pids names the holder');
SELECT is((SELECT wait_event FROM usher.backends WHERE pid = pg_temp.remote_pid('waiter')),
          'relation', 'backends.wait_event says what it waits for');
SELECT is((SELECT blocking_pids FROM usher.backends WHERE pid = pg_temp.remote_pid('holder')),
          '{}'::int[], 'a session that waits for nothing has no blockers');
SET usher.lock_waits_warning = '20ms';
SELECT pg_sleep(0.1);
SELECT is(pg_temp.status_of('lock_waits'), 'warning', 'lock waits: warning past its threshold');
SELECT ok(pg_temp.detail_of('lock_waits') ~ format('blocked by pid\(s\) %s;', pg_temp.remote_pid('holder')),
          'lock waits: detail names the blocker');
SET usher.lock_waits_critical = '30ms';
SELECT is(pg_temp.status_of('lock_waits'), 'critical', 'lock waits: critical past its threshold');
SELECT dblink_exec('holder', 'COMMIT');
SELECT is((SELECT n FROM dblink_get_result('waiter') AS t(n bigint)), 0::bigint, 'the waiter got its lock and ran');
SELECT is(pg_temp.status_of('lock_waits'), 'ok', 'lock waits: ok again after the holder commits');
SELECT dblink_exec('holder', 'DROP TABLE usher_tap_locked');
RESET usher.lock_waits_warning;
RESET usher.lock_waits_critical;

-- A prepared transaction left behind.
SELECT dblink_exec('preparer', 'BEGIN');
SELECT dblink_exec('preparer', 'PREPARE TRANSACTION ''usher_tap_orphan''');
SET usher.prepared_transactions_warning = '20ms';
SELECT pg_sleep(0.1);
SELECT is(pg_temp.status_of('prepared_transactions'), 'warning', 'prepared transactions: warning past its threshold');
SELECT ok(pg_temp.detail_of('prepared_transactions') LIKE '1 prepared transaction(s); the oldest, ''usher_tap_orphan''%',
          'prepared transactions: detail names the gid');
SELECT dblink_exec('preparer', 'COMMIT PREPARED ''usher_tap_orphan''');
SELECT is(pg_temp.status_of('prepared_transactions'), 'ok', 'prepared transactions: ok after COMMIT PREPARED');
RESET usher.prepared_transactions_warning;

-- Saturation counts real connections: three more sessions add three slots' worth.
CREATE TEMP TABLE before AS SELECT value FROM usher.health() WHERE "check" = 'connection_saturation';
SELECT dblink_connect('extra' || i, pg_temp.here('extra')) FROM generate_series(1, 3) i;
SELECT pg_stat_clear_snapshot();
SELECT is((SELECT round((h.value - b.value) * current_setting('max_connections')::int / 100)
             FROM usher.health() h, before b WHERE h."check" = 'connection_saturation'),
          3::float8, 'connection saturation rises with three more sessions');
SET usher.connection_saturation_warning = 1;
SELECT is(pg_temp.status_of('connection_saturation'), 'warning', 'connection saturation: warning past its threshold');
SELECT is((SELECT count FROM usher.connections WHERE service = 'extra' AND state = 'idle'), 3,
          'usher.connections counts the three idle sessions of service extra');
SELECT dblink_disconnect('extra' || i) FROM generate_series(1, 3) i;
RESET usher.connection_saturation_warning;
SELECT is(pg_temp.status_of('connection_saturation'), 'ok', 'connection saturation: ok under the default threshold');

-- Everything ok at the end; the rows keep their order.
SELECT pg_stat_clear_snapshot();
SELECT is(array_agg("check"), ARRAY['connection_saturation', 'idle_in_transaction', 'long_transactions',
          'lock_waits', 'replication_lag', 'replication_lag_bytes', 'replication_state', 'wraparound',
          'prepared_transactions', 'leases'], 'one row per check, in order')
  FROM usher.health();
SELECT is(count(*), 0::bigint, 'every check is ok at the end') FROM usher.health() WHERE status <> 'ok';
SELECT is(usher.ready(), true, 'ready() at the end');

SELECT dblink_disconnect(c) FROM unnest(ARRAY['idle', 'holder', 'waiter', 'preparer']) c;
SELECT * FROM finish();
ROLLBACK;
