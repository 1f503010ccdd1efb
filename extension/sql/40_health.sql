-- Health: thresholds, the leases view, health(), ready(), metrics().

CREATE FUNCTION usher.health_thresholds(
    OUT "check" text,
    OUT unit text,
    OUT warning double precision,
    OUT critical double precision)
RETURNS SETOF record
LANGUAGE C STRICT STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_health_thresholds';

COMMENT ON FUNCTION usher.health_thresholds() IS
  'The warning and critical threshold of every health check (usher.* settings), NULL when disabled';

CREATE VIEW usher.leases AS
  SELECT b.pid, b.service, b.lease_holder AS holder, b.lease_age, b.state, b.state_age,
         b.application_name, b.role, b.database,
         (b.state LIKE 'idle%' AND t.warning IS NOT NULL
          AND extract(epoch FROM b.lease_age)::double precision >= t.warning) AS suspect
    FROM usher.backends b
   CROSS JOIN (SELECT warning FROM usher.health_thresholds() WHERE "check" = 'leases') t
   WHERE b.lease_holder IS NOT NULL;
COMMENT ON VIEW usher.leases IS
  'Leased backends (usher.checkout); suspect when idle with a lease older than usher.lease_warning';

-- The sessions usher.health()'s per-session checks read: every client backend but the
-- caller's that a check can report on, one row each; the others (idle, no transaction,
-- no lease, no lock wait) in one row with pid NULL that counts them. health() reads it
-- instead of usher.backends, which builds a full row for every session.
CREATE FUNCTION usher.health_sessions_internal(
    OUT sessions integer,
    OUT pid integer,
    OUT service text,
    OUT role name,
    OUT state text,
    OUT state_age interval,
    OUT xact_age interval,
    OUT wait_event_type text,
    OUT lease_holder text,
    OUT lease_age interval)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_health_sessions';

COMMENT ON FUNCTION usher.health_sessions_internal() IS
  'For usher.health(): the other client backends a health check can report on, one row each, and one row (pid NULL) counting the rest';

-- One row per check. Each measure below yields (check, value, detail); the grading
-- against the thresholds is done once, at the end. Values are in the unit that
-- health_thresholds() reports. The calling session itself is left out of the
-- per-session checks: a monitoring query must not report its own transaction
-- (health_sessions_internal() leaves it out; connection_saturation adds it back).
-- PL/pgSQL, not SQL, so that the session keeps the plan of this query: health probes
-- call it often, and planning it was a third of its cost.
CREATE FUNCTION usher.health(
    OUT "check" text,
    OUT status text,
    OUT value double precision,
    OUT threshold double precision,
    OUT detail text)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
WITH b AS MATERIALIZED (
  SELECT * FROM usher.health_sessions_internal()
),
idle_in_xact AS (
  SELECT * FROM b WHERE state LIKE 'idle in transaction%'
),
in_xact AS (
  SELECT * FROM b WHERE xact_age IS NOT NULL
),
lock_waits AS (
  SELECT l.pid, l.mode, l.locktype,
         pg_catalog.clock_timestamp() - l.waitstart AS waited,
         b.service, pg_catalog.pg_blocking_pids(l.pid) AS blockers
    FROM pg_catalog.pg_locks l JOIN b ON b.pid = l.pid
   WHERE NOT l.granted AND l.waitstart IS NOT NULL
     -- pg_locks copies the whole lock table; skip it when nobody waits for a lock.
     AND EXISTS (SELECT 1 FROM b WHERE b.wait_event_type = 'Lock')
),
repl AS MATERIALIZED (
  SELECT r.*,
         CASE WHEN r.role = 'standby'
              THEN pg_catalog.format('standby (%s%s): %s bytes received but not yet replayed%s',
                                     r.state,
                                     coalesce(', following ' || r.upstream_host || ':' || r.upstream_port, ''),
                                     r.lag_bytes,
                                     CASE WHEN r.replay_paused THEN '; replay is paused' ELSE '' END)
              WHEN r.state IS NULL THEN 'primary with no standby connected'
              ELSE pg_catalog.format('standby %s (%s, %s): replay lag %s, %s bytes behind',
                                     r.standby_name, coalesce(host(r.client_addr), 'local'), r.state,
                                     coalesce(r.replay_lag, '0'), coalesce(r.lag_bytes, 0)) END AS detail,
         CASE WHEN r.role = 'standby' THEN r.replay_paused OR r.state <> 'streaming'
              ELSE coalesce(r.state <> 'streaming', false) END AS stalled
    FROM usher.replication_status() r
),
measures AS (
  SELECT 1 AS ord, 'connection_saturation' AS "check",
         100.0 * n::numeric / s.max_connections::numeric AS value,
         pg_catalog.format('%s of %s connections in use (%s reserved for superusers)',
                           n, s.max_connections, s.reserved) AS detail
    FROM (SELECT coalesce(sum(sessions), 0) + 1 AS n FROM b) c,
         (SELECT max_connections, reserved FROM usher.capacity WHERE scope = 'server') s

  UNION ALL
  SELECT 2, 'idle_in_transaction',
         coalesce(extract(epoch FROM w.state_age), 0),
         CASE WHEN w.pid IS NULL THEN 'no session is idle in a transaction'
              ELSE pg_catalog.format(
                     'pid %s (service %s, role %s) %s for %s; %s session(s) idle in a transaction',
                     w.pid, w.service, w.role, w.state, w.state_age,
                     (SELECT count(*) FROM idle_in_xact)) END
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT * FROM idle_in_xact ORDER BY state_age DESC LIMIT 1) w ON true

  UNION ALL
  SELECT 3, 'long_transactions',
         coalesce(extract(epoch FROM t.xact_age), 0),
         CASE WHEN t.pid IS NULL THEN 'no other transaction is open'
              ELSE pg_catalog.format(
                     'pid %s (service %s, role %s, %s) has had a transaction open for %s',
                     t.pid, t.service, t.role, t.state, t.xact_age) END
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT * FROM in_xact ORDER BY xact_age DESC LIMIT 1) t ON true

  UNION ALL
  SELECT 4, 'lock_waits',
         coalesce(extract(epoch FROM w.waited), 0),
         CASE WHEN w.pid IS NULL THEN 'no session is waiting for a lock'
              ELSE pg_catalog.format(
                     'pid %s (service %s) has waited %s for %s on a %s, blocked by pid(s) %s; %s session(s) waiting',
                     w.pid, w.service, w.waited, w.mode, w.locktype,
                     pg_catalog.array_to_string(w.blockers, ', '),
                     (SELECT count(*) FROM lock_waits)) END
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT * FROM lock_waits ORDER BY waited DESC LIMIT 1) w ON true

  UNION ALL
  -- Replication, from usher.replication_status(): a standby's own row, or a primary's
  -- row per connected standby (one ok row when none is). Lag in seconds and in bytes,
  -- and a flag when replay is paused or WAL is not streaming.
  SELECT 5, 'replication_lag', coalesce(r.lag_seconds, 0), r.detail FROM repl r
  UNION ALL
  SELECT 6, 'replication_lag_bytes', coalesce(r.lag_bytes, 0), r.detail FROM repl r
  UNION ALL
  SELECT 7, 'replication_state', CASE WHEN r.stalled THEN 1 ELSE 0 END, r.detail FROM repl r

  UNION ALL
  SELECT 8, 'wraparound', a.age,
         pg_catalog.format('database %s: transaction ID age %s, multixact age %s (wraparound at 2^31)',
                           a.datname, a.xid_age, a.mxid_age)
    FROM (SELECT datname, age(datfrozenxid) AS xid_age, mxid_age(datminmxid) AS mxid_age,
                 greatest(age(datfrozenxid), mxid_age(datminmxid)) AS age
            FROM pg_catalog.pg_database
           ORDER BY 4 DESC LIMIT 1) a

  UNION ALL
  SELECT 9, 'prepared_transactions',
         coalesce(extract(epoch FROM pg_catalog.clock_timestamp() - p.prepared), 0),
         CASE WHEN p.gid IS NULL THEN 'no prepared transaction'
              ELSE pg_catalog.format('%s prepared transaction(s); the oldest, %L in database %s by %s, was prepared %s ago',
                                     (SELECT count(*) FROM pg_catalog.pg_prepared_xacts),
                                     p.gid, p.database, p.owner,
                                     pg_catalog.clock_timestamp() - p.prepared) END
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT * FROM pg_catalog.pg_prepared_xacts ORDER BY prepared LIMIT 1) p ON true
  UNION ALL
  SELECT 10, 'leases',
         coalesce(extract(epoch FROM l.lease_age), 0),
         CASE WHEN l.pid IS NULL THEN 'no idle backend holds a lease'
              ELSE pg_catalog.format(
                     'pid %s (service %s) is idle, lent to %L for %s; %s idle leased backend(s)',
                     l.pid, l.service, l.lease_holder, l.lease_age,
                     (SELECT count(*) FROM b WHERE lease_holder IS NOT NULL AND state LIKE 'idle%')) END
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT * FROM b WHERE lease_holder IS NOT NULL AND state LIKE 'idle%'
                        ORDER BY lease_age DESC LIMIT 1) l ON true
),
graded AS (
  SELECT m.ord, m."check", m.value::double precision AS value, m.detail,
         CASE WHEN t.critical IS NOT NULL AND m.value::double precision >= t.critical THEN 'critical'
              WHEN t.warning IS NOT NULL AND m.value::double precision >= t.warning THEN 'warning'
              ELSE 'ok' END AS status,
         t.warning, t.critical
    FROM measures m JOIN usher.health_thresholds() t USING ("check")
)
SELECT g."check", g.status, g.value,
       CASE g.status WHEN 'critical' THEN g.critical ELSE coalesce(g.warning, g.critical) END,
       g.detail
  FROM graded g
 ORDER BY g.ord, g.detail;
END
$$;

COMMENT ON FUNCTION usher.health() IS
  'One row per health check: check, status (ok | warning | critical), value, threshold crossed or next, detail';

CREATE FUNCTION usher.ready()
RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT NOT EXISTS (SELECT 1 FROM usher.health() WHERE status = 'critical')
$$;

COMMENT ON FUNCTION usher.ready() IS
  'false when any health check is critical; for load-balancer probes';

CREATE FUNCTION usher.metrics()
RETURNS text
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_metrics';

COMMENT ON FUNCTION usher.metrics() IS
  'Connections, capacity and health in the Prometheus text exposition format';
