-- pg_usher 1.0.0: connection and health views.
\echo Use "CREATE EXTENSION pg_usher" to load this file. \quit

-- Every object lives in schema usher, created here (not through the control file's
-- `schema`) so that it belongs to the extension and DROP EXTENSION removes it with its
-- grants. Nothing is granted to PUBLIC; monitoring roles get read access through
-- pg_monitor at the end of this file.
CREATE SCHEMA usher;

CREATE FUNCTION usher.backends_internal(
    OUT pid integer,
    OUT service text,
    OUT database name,
    OUT role name,
    OUT client_addr inet,
    OUT client_port integer,
    OUT application_name text,
    OUT state text,
    OUT backend_age interval,
    OUT xact_age interval,
    OUT query_age interval,
    OUT state_age interval,
    OUT wait_event_type text,
    OUT wait_event text,
    OUT blocking_pids integer[],
    OUT query text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'usher_backends';

COMMENT ON FUNCTION usher.backends_internal() IS
  'One row per client backend, read from the backend status array; use the view usher.backends';

CREATE VIEW usher.backends AS
  SELECT * FROM usher.backends_internal();

COMMENT ON VIEW usher.backends IS
  'One row per client backend: service, state and ages, wait event, blockers';

CREATE VIEW usher.connections AS
  SELECT service, database, role, state,
         count(*)::integer AS count,
         max(state_age) AS oldest_state_age,
         max(xact_age) AS oldest_xact_age
    FROM usher.backends
   GROUP BY service, database, role, state;

COMMENT ON VIEW usher.connections IS
  'Client backends counted per service, database, role and state';

-- Server capacity and every CONNECTION LIMIT that is set, with its current use.
-- For the server row, reserved is superuser_reserved_connections (plus
-- reserved_connections on PostgreSQL 16+), and free is what ordinary roles can still
-- open.
CREATE VIEW usher.capacity AS
  WITH used AS MATERIALIZED (SELECT database, role FROM usher.backends),
  server AS (
    SELECT current_setting('max_connections')::integer AS max_connections,
           current_setting('superuser_reserved_connections')::integer
             + coalesce(current_setting('reserved_connections', true)::integer, 0) AS reserved,
           (SELECT count(*)::integer FROM used) AS used
  ),
  limits AS (
    SELECT 'server'::text AS scope, NULL::name AS name,
           max_connections, reserved, used,
           greatest(max_connections - reserved - used, 0) AS free
      FROM server
    UNION ALL
    SELECT 'database', d.datname, d.datconnlimit, 0,
           (SELECT count(*)::integer FROM used u WHERE u.database = d.datname),
           NULL
      FROM pg_catalog.pg_database d
     WHERE d.datconnlimit >= 0
    UNION ALL
    SELECT 'role', r.rolname, r.rolconnlimit, 0,
           (SELECT count(*)::integer FROM used u WHERE u.role = r.rolname),
           NULL
      FROM pg_catalog.pg_roles r
     WHERE r.rolconnlimit >= 0 AND r.rolcanlogin
  )
  SELECT scope, name, max_connections, reserved, used,
         coalesce(free, greatest(max_connections - used, 0)) AS free,
         CASE WHEN max_connections - reserved > 0
              THEN round(100.0 * coalesce(free, greatest(max_connections - used, 0))
                         / (max_connections - reserved), 1)
              ELSE 0 END AS headroom_percent
    FROM limits;

COMMENT ON VIEW usher.capacity IS
  'Connection capacity of the server and of every database and role with a CONNECTION LIMIT';

CREATE FUNCTION usher.health_thresholds(
    OUT "check" text,
    OUT unit text,
    OUT warning double precision,
    OUT critical double precision)
RETURNS SETOF record
LANGUAGE C STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'usher_health_thresholds';

COMMENT ON FUNCTION usher.health_thresholds() IS
  'The warning and critical threshold of every health check (usher.* settings), NULL when disabled';

-- One row per check. Each measure below yields (check, value, detail); the grading
-- against the thresholds is done once, at the end. Values are in the unit that
-- health_thresholds() reports. The calling session itself is left out of the
-- per-session checks: a monitoring query must not report its own transaction.
CREATE FUNCTION usher.health(
    OUT "check" text,
    OUT status text,
    OUT value double precision,
    OUT threshold double precision,
    OUT detail text)
RETURNS SETOF record
LANGUAGE sql VOLATILE
AS $$
WITH b AS MATERIALIZED (
  SELECT * FROM usher.backends WHERE pid <> pg_catalog.pg_backend_pid()
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
),
measures AS (
  SELECT 1 AS ord, 'connection_saturation' AS "check",
         100.0 * n / s.max_connections AS value,
         pg_catalog.format('%s of %s connections in use (%s reserved for superusers)',
                           n, s.max_connections, s.reserved) AS detail
    FROM (SELECT count(*) + 1 AS n FROM b) c,
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
  -- A standby measures its own replay delay: zero while everything received is
  -- replayed, else the time since the last replayed commit (since server start when
  -- none has been replayed yet: an upper bound, not a zero).
  SELECT 5, 'replication_lag',
         CASE WHEN pg_catalog.pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_catalog.pg_last_wal_replay_lsn()
              THEN 0
              ELSE extract(epoch FROM pg_catalog.clock_timestamp()
                                      - coalesce(pg_catalog.pg_last_xact_replay_timestamp(),
                                                 pg_catalog.pg_postmaster_start_time())) END,
         pg_catalog.format('standby: %s bytes received but not yet replayed%s',
                           coalesce(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(),
                                                               pg_catalog.pg_last_wal_replay_lsn()), 0),
                           CASE WHEN pg_catalog.pg_is_wal_replay_paused() THEN '; replay is paused' ELSE '' END)
   WHERE pg_catalog.pg_is_in_recovery()

  UNION ALL
  -- A primary reports one row per connected standby.
  SELECT 5, 'replication_lag',
         coalesce(extract(epoch FROM r.replay_lag), 0),
         pg_catalog.format('standby %s (%s, %s): replay lag %s, %s bytes behind',
                           r.application_name, coalesce(host(r.client_addr), 'local'), r.state,
                           coalesce(r.replay_lag, '0'),
                           coalesce(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.replay_lsn), 0))
    FROM pg_catalog.pg_stat_replication r
   WHERE NOT pg_catalog.pg_is_in_recovery()

  UNION ALL
  SELECT 5, 'replication_lag', 0, 'primary with no standby connected'
   WHERE NOT pg_catalog.pg_is_in_recovery()
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_replication)

  UNION ALL
  SELECT 6, 'wraparound', a.age,
         pg_catalog.format('database %s: transaction ID age %s, multixact age %s (wraparound at 2^31)',
                           a.datname, a.xid_age, a.mxid_age)
    FROM (SELECT datname, age(datfrozenxid) AS xid_age, mxid_age(datminmxid) AS mxid_age,
                 greatest(age(datfrozenxid), mxid_age(datminmxid)) AS age
            FROM pg_catalog.pg_database
           ORDER BY 4 DESC LIMIT 1) a

  UNION ALL
  SELECT 7, 'prepared_transactions',
         coalesce(extract(epoch FROM pg_catalog.clock_timestamp() - p.prepared), 0),
         CASE WHEN p.gid IS NULL THEN 'no prepared transaction'
              ELSE pg_catalog.format('%s prepared transaction(s); the oldest, %L in database %s by %s, was prepared %s ago',
                                     (SELECT count(*) FROM pg_catalog.pg_prepared_xacts),
                                     p.gid, p.database, p.owner,
                                     pg_catalog.clock_timestamp() - p.prepared) END
    FROM (SELECT 1) one
    LEFT JOIN LATERAL (SELECT * FROM pg_catalog.pg_prepared_xacts ORDER BY prepared LIMIT 1) p ON true
),
graded AS (
  SELECT m.ord, m."check", m.value::double precision AS value, m.detail,
         CASE WHEN t.critical IS NOT NULL AND m.value >= t.critical THEN 'critical'
              WHEN t.warning IS NOT NULL AND m.value >= t.warning THEN 'warning'
              ELSE 'ok' END AS status,
         t.warning, t.critical
    FROM measures m JOIN usher.health_thresholds() t USING ("check")
)
SELECT "check", status, value,
       CASE status WHEN 'critical' THEN critical ELSE coalesce(warning, critical) END,
       detail
  FROM graded
 ORDER BY ord, detail;
$$;

COMMENT ON FUNCTION usher.health() IS
  'One row per health check: check, status (ok | warning | critical), value, threshold crossed or next, detail';

CREATE FUNCTION usher.ready()
RETURNS boolean
LANGUAGE sql VOLATILE
AS $$
  SELECT NOT EXISTS (SELECT 1 FROM usher.health() WHERE status = 'critical')
$$;

COMMENT ON FUNCTION usher.ready() IS
  'false when any health check is critical; for load-balancer probes';

CREATE FUNCTION usher.metrics()
RETURNS text
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'usher_metrics';

COMMENT ON FUNCTION usher.metrics() IS
  'Connections, capacity and health in the Prometheus text exposition format';

-- Least privilege: nothing for PUBLIC, read access for pg_monitor.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA usher FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA usher FROM PUBLIC;
GRANT USAGE ON SCHEMA usher TO pg_monitor;
GRANT SELECT ON usher.backends, usher.connections, usher.capacity TO pg_monitor;
GRANT EXECUTE ON FUNCTION usher.backends_internal(), usher.health_thresholds(), usher.health(),
  usher.ready(), usher.metrics() TO pg_monitor;
