-- Activity history (the launcher's sampler) and usher.pool_advice(): the views' shape,
-- the settings, the advice before any history (deterministic: usher.cpu_cores is set)
-- and every invalid argument. Time-dependent values are compared, never printed.
CREATE EXTENSION pg_usher;
\set SHOW_CONTEXT never

SELECT table_name, string_agg(column_name || ' ' || data_type, ', ' ORDER BY ordinal_position)
  FROM information_schema.columns
 WHERE table_schema = 'usher' AND table_name IN ('activity_history', 'activity_summary')
 GROUP BY table_name ORDER BY table_name;

-- Settings: the interval is validated and changes only with a reload; the ring's size
-- only at server start; cpu_cores is for superusers.
SHOW usher.sample_interval;
SET usher.sample_interval = '2s';
ALTER SYSTEM SET usher.sample_interval = '10ms';
SET usher.history_samples = 10;
SET usher.cpu_cores = -1;
SET usher.cpu_cores = 4;
SHOW usher.cpu_cores;

-- Three services: one reserving 5 connections, one with priority 100 and a quota of 3,
-- one with max_active 1. Published at commit; none of them has any activity.
SELECT name FROM usher.set_service('adv_a', reserved_connections => 5);
SELECT name FROM usher.set_service('adv_b', max_connections => 3, priority => 100);
SELECT name FROM usher.set_service('adv_c', max_active => 1);

-- Before any history: a share of 2 x cores = 8 weighted by priority (weights 1, 1, 2, 1
-- for default, adv_a, adv_b, adv_c), within the quotas.
SELECT service, client_instances, max_pool_size, min_idle, basis
  FROM usher.pool_advice() WHERE service LIKE 'adv%' ORDER BY service;
SELECT service, client_instances, max_pool_size, min_idle, basis
  FROM usher.pool_advice('{"adv_a": 3, "adv_b": 2, "adv_c": 1.0}') WHERE service LIKE 'adv%' ORDER BY service;
-- Every input is in the rationale.
SELECT service,
       rationale LIKE 'server: 4 cores (usher.cpu_cores), target 2 x 4 = 8 active statements; %' AS cores,
       rationale LIKE '%usable connections % = max_connections % - % reserved by the server;%' AS usable,
       rationale LIKE '%priority 100 (weight 2.00 of 5.00)%' AS priority,
       rationale LIKE '%other services reserve 5,%' AS others_reserve,
       rationale LIKE '%N = ceil(2 x cores x weight / total weight) = ceil(8 x 2.00 / 5.00) = 4;%' AS share,
       rationale LIKE '%cap C = min(available %, max_connections 3) = 3;%' AS cap
  FROM usher.pool_advice() WHERE service = 'adv_b';
SELECT rationale LIKE '%cap C = min(available %, max_active 1) = 1;%' AS capped_by_max_active
  FROM usher.pool_advice() WHERE service = 'adv_c';
-- More instances than the cap allows: 1 each, and the rationale says so.
SELECT max_pool_size, rationale LIKE '%note: 2 instances x 1 exceed the cap 1%' AS noted
  FROM usher.pool_advice('{"adv_c": 2}') WHERE service = 'adv_c';

-- Invalid arguments: 22023, naming the bad key or value.
SELECT * FROM usher.pool_advice('[1, 2]');
SELECT * FROM usher.pool_advice('"adv_a"');
SELECT * FROM usher.pool_advice('null');
SELECT * FROM usher.pool_advice('{"adv_a": 0}');
SELECT * FROM usher.pool_advice('{"adv_a": -3}');
SELECT * FROM usher.pool_advice('{"adv_a": 2.5}');
SELECT * FROM usher.pool_advice('{"adv_a": "12"}');
SELECT * FROM usher.pool_advice('{"adv_a": null}');
SELECT * FROM usher.pool_advice('{"adv_a": 100001}');
SELECT * FROM usher.pool_advice('{"adv_a": 2, "nope": 1}');
-- An empty object and NULL mean one instance everywhere.
SELECT count(*) FILTER (WHERE client_instances = 1) = count(*) AS all_one FROM usher.pool_advice('{}');

-- The sampler records the new services within a few intervals (polled, bounded).
DO $$
BEGIN
  FOR i IN 1..400 LOOP
    EXIT WHEN (SELECT count(DISTINCT service) FROM usher.activity_history WHERE service LIKE 'adv%') = 3;
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT service, connected, active, queued
  FROM usher.activity_history WHERE service LIKE 'adv%'
 ORDER BY sampled_at DESC, service LIMIT 3;
SELECT service, samples >= 1 AS sampled, window_end >= window_start AS ordered,
       peak_connected, p95_connected, peak_active, p95_active, peak_queued, statements
  FROM usher.activity_summary WHERE service LIKE 'adv%' ORDER BY service;
-- No activity in those services: still the default share.
SELECT service, basis FROM usher.pool_advice() WHERE service LIKE 'adv%' ORDER BY service;

SELECT usher.drop_service('adv_a'), usher.drop_service('adv_b'), usher.drop_service('adv_c');
RESET usher.cpu_cores;
DROP EXTENSION pg_usher;
