-- Leases: usher.checkout / usher.checkin from real sessions, the usher.leases view, the
-- suspect flag and the 'leases' health check. Not one transaction: the other session
-- must see the extension, so it is committed here and dropped at the end.
CREATE EXTENSION pg_usher;
SELECT plan(14);
\ir lib/helpers.psql

CREATE FUNCTION pg_temp.fresh() RETURNS void LANGUAGE sql AS $$ SELECT pg_stat_clear_snapshot() $$;

-- In this session.
SELECT is(usher.checkout('handler.cpp:42 thread 7'), true, 'checkout returns true (it doubles as validation)');
SELECT pg_temp.fresh();
SELECT is((SELECT lease_holder FROM usher.backends WHERE pid = pg_backend_pid()), 'handler.cpp:42 thread 7',
          'usher.backends shows the holder');
SELECT ok((SELECT lease_age >= interval '0' FROM usher.backends WHERE pid = pg_backend_pid()), 'and the lease age');
SELECT is(usher.checkin(), true, 'checkin returns true');
SELECT pg_temp.fresh();
SELECT is((SELECT lease_holder FROM usher.backends WHERE pid = pg_backend_pid()), NULL, 'checkin clears the lease');
SELECT usher.checkout(repeat('é', 40));
SELECT pg_temp.fresh();
SELECT is((SELECT octet_length(lease_holder) || ' ' || length(lease_holder) FROM usher.backends WHERE pid = pg_backend_pid()),
          '64 32', 'a long holder is cut to 64 bytes at a character boundary');
SELECT usher.checkout(NULL);
SELECT pg_temp.fresh();
SELECT is((SELECT lease_holder FROM usher.backends WHERE pid = pg_backend_pid()), NULL, 'checkout(NULL) clears the lease');

-- Another session borrows a connection and leaves it idle: a suspected leak.
SELECT dblink_connect('borrower', pg_temp.here('orders/api-1'));
CREATE TEMP TABLE borrower AS SELECT pid FROM dblink('borrower', 'SELECT pg_backend_pid()') AS t(pid integer);
SELECT is((SELECT ok FROM dblink('borrower', 'SELECT usher.checkout(''orders-api-1: OrderController.cpp:88'')') AS t(ok boolean)),
          true, 'another session checks its connection out');
SELECT pg_temp.fresh();
SELECT is((SELECT holder || ' ' || suspect FROM usher.leases WHERE pid = (SELECT pid FROM borrower)),
          'orders-api-1: OrderController.cpp:88 false', 'usher.leases lists it, not suspect under the default threshold');
SET usher.lease_warning = '20ms';
SELECT pg_sleep(0.1);
SELECT pg_temp.fresh();
SELECT is((SELECT suspect FROM usher.leases WHERE pid = (SELECT pid FROM borrower)), true,
          'idle with a lease older than usher.lease_warning: suspect');
SELECT is((SELECT status FROM usher.health() WHERE "check" = 'leases'), 'warning', 'health(): leases warning');
SELECT ok((SELECT detail FROM usher.health() WHERE "check" = 'leases')
          LIKE format('pid %s (service orders) is idle, lent to %L for %%', (SELECT pid FROM borrower),
                      'orders-api-1: OrderController.cpp:88'), 'the detail names the holder');
SELECT ok FROM dblink('borrower', 'SELECT usher.checkin()') AS t(ok boolean);
SELECT pg_temp.fresh();
SELECT is((SELECT count(*) FROM usher.leases), 0::bigint, 'after checkin no lease is left');
SELECT is((SELECT status FROM usher.health() WHERE "check" = 'leases'), 'ok', 'health(): leases ok again');
RESET usher.lease_warning;

SELECT dblink_disconnect('borrower');
SELECT * FROM finish();
DROP TABLE borrower;
DROP EXTENSION pg_usher;
