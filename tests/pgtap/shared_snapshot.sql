-- One snapshot of shared state, one rule for which services are visible
-- (shared_state.hpp: take_snapshot, visible): usher.service_status, every per-service
-- family of usher.metrics() (the gate's wait histogram included), the sampler and
-- usher.backends show the same services, and metrics() lists them in the order of
-- their names. The case that tells them apart: a service dropped while a session still
-- counts under it stays visible until that session ends. Not one transaction: the
-- registry is published on commit and the sampler is another process.
CREATE EXTENSION pg_usher;
SELECT plan(14);
\ir lib/helpers.psql

-- The services of one family of metrics(), in the order metrics() writes them.
CREATE FUNCTION pg_temp.metric_services(family text) RETURNS text[] LANGUAGE sql AS $$
  SELECT coalesce(array_agg(substring(line FROM 'service="([^"]*)"') ORDER BY n), '{}')
    FROM regexp_split_to_table(usher.metrics(), E'\n') WITH ORDINALITY AS t(line, n)
   WHERE line LIKE family || '{%'
$$;
CREATE FUNCTION pg_temp.status_services() RETURNS text[] LANGUAGE sql AS $$
  SELECT array_agg(service ORDER BY service) FROM usher.service_status
$$;
-- A sample taken after this statement began shows n sessions of svc connected.
CREATE FUNCTION pg_temp.await_sampled(svc text, n integer) RETURNS boolean LANGUAGE sql AS $$
  SELECT pg_temp.await(format('SELECT EXISTS (SELECT 1 FROM usher.activity_history h WHERE h.service = %L '
                              'AND h.connected = %s AND h.sampled_at > %L)', svc, n, now()))
$$;

-- Entries are taken in order: tap_snap_z gets an earlier entry than tap_snap_a, so
-- entry order and name order differ.
SELECT usher.set_service('tap_snap_z');
SELECT usher.set_service('tap_snap_a');
SELECT dblink_connect('snap_z', pg_temp.here('tap_snap_z/worker'));
SELECT usher.drop_service('tap_snap_z');

SELECT is((SELECT listed || ' ' || current FROM usher.service_status WHERE service = 'tap_snap_z'), 'false 1',
          'service_status: a dropped service with a session left is listed false, current 1');
SELECT is((SELECT count(*) FROM usher.published_services WHERE name = 'tap_snap_z'), 0::bigint,
          'published_services: the dropped service is not published');
SELECT is((SELECT service_enforced FROM usher.backends WHERE application_name = 'tap_snap_z/worker'), 'tap_snap_z',
          'backends: its session is still enforced under it');
SELECT ok(pg_temp.await_sampled('tap_snap_z', 1), 'the sampler records the dropped service with its 1 session');

SELECT is(pg_temp.metric_services('usher_service_connections'), pg_temp.status_services(),
          'metrics: usher_service_connections lists the services of service_status, by name');
SELECT is(pg_temp.metric_services('usher_service_statements_past_limit_total'), pg_temp.status_services(),
          'metrics: usher_service_statements_past_limit_total lists the same services');
SELECT is(pg_temp.metric_services('usher_gate_wait_seconds_count'), pg_temp.status_services(),
          'metrics: the gate wait histogram lists the same services, in the same order');
SELECT ok('tap_snap_z' = ANY (pg_temp.metric_services('usher_gate_wait_seconds_count')),
          'metrics: the dropped service with a session keeps its gate wait histogram');
SELECT ok(array_position(pg_temp.metric_services('usher_gate_wait_seconds_count'), 'tap_snap_a')
            < array_position(pg_temp.metric_services('usher_gate_wait_seconds_count'), 'tap_snap_z'),
          'metrics: the histogram is in name order, not in the order of shared-memory entries');
SELECT is((SELECT line FROM regexp_split_to_table(usher.metrics(), E'\n') AS line
            WHERE line LIKE 'usher_service_connections{service="tap_snap_z"}%'),
          'usher_service_connections{service="tap_snap_z"} 1', 'metrics: its session count is 1');
SELECT is((SELECT string_agg(line, ' ') FROM regexp_split_to_table(usher.metrics(), E'\n') AS line
            WHERE line LIKE 'usher_service_rejected_total{service="tap_snap_a"%'),
          'usher_service_rejected_total{service="tap_snap_a",reason="quota"} 0 '
          'usher_service_rejected_total{service="tap_snap_a",reason="reservation"} 0 '
          'usher_service_rejected_total{service="tap_snap_a",reason="full"} 0',
          'metrics: refusals by reason, as integers');

SELECT dblink_disconnect('snap_z');
SELECT ok(pg_temp.await($$SELECT NOT EXISTS (SELECT 1 FROM usher.service_status WHERE service = 'tap_snap_z')$$), 'after its last session the dropped service leaves service_status');
SELECT is(pg_temp.metric_services('usher_gate_wait_seconds_count'), pg_temp.status_services(),
          'metrics: and the gate wait histogram');
SELECT ok(pg_temp.await_sampled('tap_snap_a', 0), 'the sampler goes on with the listed services');

SELECT * FROM finish();
SELECT usher.drop_service('tap_snap_a');
DROP EXTENSION pg_usher;
