-- Activity history and pool advice: who may read them (pg_monitor yes, a plain role
-- no), the SQLSTATE of every invalid pool_advice argument, and the history of a
-- session of another service seen by the sampler. Not one transaction: the sampler
-- (another process) must see the published services and the other session.
CREATE EXTENSION pg_usher;
SELECT plan(22);
\ir lib/helpers.psql

CREATE ROLE usher_tap_act_plain;
CREATE ROLE usher_tap_act_monitor IN ROLE pg_monitor;

SELECT has_view('usher', 'activity_history', 'view usher.activity_history exists');
SELECT has_view('usher', 'activity_summary', 'view usher.activity_summary exists');
SELECT has_function('usher', 'pool_advice', ARRAY['jsonb'], 'usher.pool_advice(jsonb) exists');

-- Privileges.
SELECT is(pg_temp.as_role('usher_tap_act_monitor', 'SELECT (count(*) >= 0)::text FROM usher.activity_history'),
          'true', 'pg_monitor reads activity_history');
SELECT is(pg_temp.as_role('usher_tap_act_monitor', 'SELECT (count(*) >= 0)::text FROM usher.activity_summary'),
          'true', 'pg_monitor reads activity_summary');
SELECT is(pg_temp.as_role('usher_tap_act_monitor', 'SELECT count(*)::text FROM usher.pool_advice() WHERE service = ''default'''),
          '1', 'pg_monitor calls pool_advice');
SELECT is(pg_temp.as_role('usher_tap_act_plain', 'SELECT count(*)::text FROM usher.activity_history'),
          'ERROR 42501', 'a plain role may not read activity_history');
SELECT is(pg_temp.as_role('usher_tap_act_plain', 'SELECT count(*)::text FROM usher.activity_summary'),
          'ERROR 42501', 'a plain role may not read activity_summary');
SELECT is(pg_temp.as_role('usher_tap_act_plain', 'SELECT count(*)::text FROM usher.pool_advice()'),
          'ERROR 42501', 'a plain role may not call pool_advice');

-- Invalid arguments: 22023 with the bad key or value in the message.
SELECT throws_ok(format('SELECT * FROM usher.pool_advice(%L)', instances), '22023', message, description)
  FROM (VALUES
    (1, '[]', 'instances must be a JSON object of service names and client process counts, not a JSON array',
     'an array: 22023'),
    (2, '3', 'instances must be a JSON object of service names and client process counts, not a JSON number',
     'a number: 22023'),
    (3, '{"default": 0}', 'instances of service "default" must be a whole number between 1 and 100000, not 0',
     'zero: 22023'),
    (4, '{"default": 1.5}', 'instances of service "default" must be a whole number between 1 and 100000, not 1.5',
     'a fraction: 22023'),
    (5, '{"default": "2"}', 'instances of service "default" must be a whole number between 1 and 100000, not "2"',
     'a string: 22023'),
    (6, '{"default": true}', 'instances of service "default" must be a whole number between 1 and 100000, not true',
     'a boolean: 22023'),
    (7, '{"tap_nope": 2}', 'instances names service "tap_nope", which is not an enabled service in the published registry',
     'an unknown service: 22023')
  ) AS invalid(n, instances, message, description)
 ORDER BY n;

-- A session of another service appears in the history with its count.
SELECT usher.set_service('tap_act', max_connections => 8);
SELECT dblink_connect('act_other', pg_temp.here('tap_act/worker-1'));
-- A sample taken after this statement began shows n sessions of svc connected.
CREATE FUNCTION pg_temp.await_connected(svc text, n integer) RETURNS boolean LANGUAGE sql AS $$
  SELECT pg_temp.await(format('SELECT EXISTS (SELECT 1 FROM usher.activity_history h WHERE h.service = %L '
                              'AND h.connected = %s AND h.sampled_at > %L)', svc, n, now()))
$$;
SELECT ok(pg_temp.await_connected('tap_act', 1), 'a sample after the login shows 1 connected session of tap_act');
SELECT is((SELECT peak_connected FROM usher.activity_summary WHERE service = 'tap_act'), 1,
          'activity_summary: peak_connected 1');
SELECT dblink_disconnect('act_other');
SELECT ok(pg_temp.await_connected('tap_act', 0), 'after the logout a sample shows 0');
SELECT is((SELECT client_instances || ' ' || (max_pool_size BETWEEN 1 AND 8) FROM usher.pool_advice('{"tap_act": 2}')
            WHERE service = 'tap_act'), '2 true', 'pool_advice with instances: 2 instances, within the quota of 8');
SELECT ok((SELECT rationale LIKE '%max_connections 8,%2 instance(s)%' FROM usher.pool_advice('{"tap_act": 2}')
            WHERE service = 'tap_act'), 'the rationale shows the quota and the instances');
SELECT is((SELECT count(*) FROM usher.activity_history WHERE sampled_at > now() + interval '1 hour'), 0::bigint,
          'no sample from the future');

SELECT * FROM finish();
SELECT usher.drop_service('tap_act');
DROP ROLE usher_tap_act_plain;
DROP ROLE usher_tap_act_monitor;
DROP EXTENSION pg_usher;
