-- pg_usher 1.0.0 install script, kept exactly as shipped so that databases can be
-- created at 1.0.0 and updated (extension/versions/pg_usher--1.0.0--1.1.0.sql). Do not edit.
\echo Use "CREATE EXTENSION pg_usher" to load this file. \quit

-- Every object lives in schema usher, created here (not through the control file's
-- `schema`) so that it belongs to the extension and DROP EXTENSION removes it with its
-- grants. Nothing is granted to PUBLIC; monitoring roles get read access through
-- pg_monitor at the end of this file.
CREATE SCHEMA usher;
-- Connection views: usher.backends, usher.connections, usher.capacity.

CREATE FUNCTION usher.backends_internal(
    OUT pid integer,
    OUT service text,
    OUT service_enforced text,
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
    OUT query text,
    OUT lease_holder text,
    OUT lease_age interval,
    OUT admission_state text,
    OUT queued_since timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'usher_backends';

COMMENT ON FUNCTION usher.backends_internal() IS
  'One row per client backend, read from the backend status array; use the view usher.backends';

CREATE VIEW usher.backends AS
  SELECT * FROM usher.backends_internal();

COMMENT ON VIEW usher.backends IS
  'One row per client backend: service, state and ages, wait event, blockers, lease';

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
-- ---------------------------------------------------------------------------------
-- The service registry (enforced only with shared_preload_libraries).
-- ---------------------------------------------------------------------------------

-- Defence in depth: usher.set_service validates every value with a clear message;
-- these constraints hold even for direct DML by the owner.
CREATE TABLE usher.service (
  name text PRIMARY KEY
    CHECK (octet_length(name) BETWEEN 1 AND 63 AND name ~ '^[A-Za-z_][A-Za-z0-9_.-]*$'),
  max_connections integer NOT NULL DEFAULT 0 CHECK (max_connections >= 0),
  reserved_connections integer NOT NULL DEFAULT 0 CHECK (reserved_connections >= 0),
  max_active integer NOT NULL DEFAULT 0 CHECK (max_active >= 0),
  queue_timeout interval NOT NULL DEFAULT '5s'
    CHECK (queue_timeout >= interval '0' AND queue_timeout <= interval '1 day'),
  priority integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 1000),
  enabled boolean NOT NULL DEFAULT true,
  comment text,
  CHECK (max_connections = 0 OR reserved_connections <= max_connections),
  CHECK (name <> 'default' OR enabled)
);
COMMENT ON TABLE usher.service IS
  'Services and their limits; change through usher.set_service / usher.drop_service';
INSERT INTO usher.service (name, comment) VALUES ('default', 'sessions of no other service');

CREATE TABLE usher.role_service (
  role_name name PRIMARY KEY,
  service text NOT NULL REFERENCES usher.service (name) ON UPDATE CASCADE ON DELETE CASCADE
);
COMMENT ON TABLE usher.role_service IS
  'Roles whose sessions belong to a service whatever their application_name';

-- pg_dump keeps the registry. The 'default' row is created by CREATE EXTENSION, so it
-- is not dumped (its limits, if changed, must be set again after a restore).
SELECT pg_catalog.pg_extension_config_dump('usher.service', 'WHERE name <> ''default''');
SELECT pg_catalog.pg_extension_config_dump('usher.role_service', '');

-- Any change to the registry is published to shared memory when its transaction
-- commits (never on rollback).
CREATE FUNCTION usher._registry_changed() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'usher_registry_changed';
CREATE TRIGGER publish_on_commit AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usher.service
  FOR EACH STATEMENT EXECUTE FUNCTION usher._registry_changed();
CREATE TRIGGER publish_on_commit AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usher.role_service
  FOR EACH STATEMENT EXECUTE FUNCTION usher._registry_changed();

-- ERROR 55000 unless pg_usher is preloaded and this is the database named by
-- usher.database: a registry anywhere else would never be enforced.
CREATE FUNCTION usher._check_registry_writable() RETURNS void
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_check_registry_writable';

CREATE FUNCTION usher.set_service(
    name text,
    max_connections integer DEFAULT NULL,
    reserved_connections integer DEFAULT NULL,
    max_active integer DEFAULT NULL,
    queue_timeout interval DEFAULT NULL,
    priority integer DEFAULT NULL,
    enabled boolean DEFAULT NULL,
    comment text DEFAULT NULL)
RETURNS usher.service
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  svc usher.service;
  usable integer := current_setting('max_connections')::integer
                    - current_setting('superuser_reserved_connections')::integer
                    - coalesce(current_setting('reserved_connections', true)::integer, 0);
  others_reserved bigint;
  service_count bigint;
BEGIN
  PERFORM usher._check_registry_writable();
  IF set_service.name IS NULL THEN
    RAISE EXCEPTION 'service name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF octet_length(set_service.name) NOT BETWEEN 1 AND 63 OR set_service.name !~ '^[A-Za-z_][A-Za-z0-9_.-]*$' THEN
    RAISE EXCEPTION 'invalid service name "%"', set_service.name
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = 'A service name is 1 to 63 bytes of letters, digits, "_", "-" and ".", starting with a letter or "_".',
            HINT = 'Sessions belong to the service named by their application_name up to the first "/", e.g. "orders/worker-3".';
  END IF;

  -- One registry writer at a time, so each commit publishes a registry that includes
  -- every change committed before it.
  LOCK TABLE usher.service IN SHARE ROW EXCLUSIVE MODE;
  SELECT * INTO svc FROM usher.service s WHERE s.name = set_service.name;
  IF NOT FOUND THEN
    svc := ROW(set_service.name, 0, 0, 0, interval '5s', 0, true, NULL)::usher.service;
    SELECT count(*) INTO service_count FROM usher.service;
    IF service_count >= current_setting('usher.max_services')::integer THEN
      RAISE EXCEPTION 'cannot add service "%": the registry already holds % services, the limit of usher.max_services',
                      set_service.name, service_count
        USING ERRCODE = 'program_limit_exceeded',
              HINT = 'Drop unused services, or raise usher.max_services and restart the server.';
    END IF;
  END IF;
  svc.max_connections := coalesce(set_service.max_connections, svc.max_connections);
  svc.reserved_connections := coalesce(set_service.reserved_connections, svc.reserved_connections);
  svc.max_active := coalesce(set_service.max_active, svc.max_active);
  svc.queue_timeout := coalesce(set_service.queue_timeout, svc.queue_timeout);
  svc.priority := coalesce(set_service.priority, svc.priority);
  svc.enabled := coalesce(set_service.enabled, svc.enabled);
  svc.comment := coalesce(set_service.comment, svc.comment);

  IF svc.max_connections < 0 THEN
    RAISE EXCEPTION 'max_connections of service "%" must be 0 (unlimited) or more, not %', svc.name, svc.max_connections
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF svc.max_connections > usable THEN
    RAISE EXCEPTION 'max_connections % of service "%" exceeds the % connections the server allows ordinary roles',
                    svc.max_connections, svc.name, usable
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Use 0 for no limit of its own, or raise the server''s max_connections.';
  END IF;
  IF svc.reserved_connections < 0 THEN
    RAISE EXCEPTION 'reserved_connections of service "%" must be 0 or more, not %', svc.name, svc.reserved_connections
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF svc.max_connections > 0 AND svc.reserved_connections > svc.max_connections THEN
    RAISE EXCEPTION 'reserved_connections % of service "%" exceeds its max_connections %',
                    svc.reserved_connections, svc.name, svc.max_connections
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Raise max_connections, or lower reserved_connections.';
  END IF;
  SELECT coalesce(sum(s.reserved_connections), 0) INTO others_reserved
    FROM usher.service s WHERE s.name <> svc.name AND s.enabled;
  IF svc.enabled AND others_reserved + svc.reserved_connections > usable THEN
    RAISE EXCEPTION 'reservations would total % connections, more than the % the server allows ordinary roles',
                    others_reserved + svc.reserved_connections, usable
      USING ERRCODE = 'invalid_parameter_value',
            DETAIL = format('max_connections %s minus %s reserved for superusers leaves %s; other services reserve %s.',
                            current_setting('max_connections'), current_setting('max_connections')::integer - usable,
                            usable, others_reserved),
            HINT = 'Lower this or other services'' reserved_connections, or raise max_connections.';
  END IF;
  IF svc.max_active < 0 THEN
    RAISE EXCEPTION 'max_active of service "%" must be 0 (unlimited) or more, not %', svc.name, svc.max_active
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF svc.queue_timeout < interval '0' OR svc.queue_timeout > interval '1 day' THEN
    RAISE EXCEPTION 'queue_timeout of service "%" must be between 0 and 1 day, not %', svc.name, svc.queue_timeout
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  IF svc.priority NOT BETWEEN 0 AND 1000 THEN
    RAISE EXCEPTION 'priority of service "%" must be between 0 and 1000, not %', svc.name, svc.priority
      USING ERRCODE = 'invalid_parameter_value', HINT = 'Higher priorities are admitted first.';
  END IF;
  IF svc.name = 'default' AND NOT svc.enabled THEN
    RAISE EXCEPTION 'service "default" cannot be disabled'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Sessions of no other service count as "default"; give it a max_connections instead.';
  END IF;

  INSERT INTO usher.service AS s VALUES (svc.*)
    ON CONFLICT (name) DO UPDATE
       SET max_connections = EXCLUDED.max_connections,
           reserved_connections = EXCLUDED.reserved_connections,
           max_active = EXCLUDED.max_active,
           queue_timeout = EXCLUDED.queue_timeout,
           priority = EXCLUDED.priority,
           enabled = EXCLUDED.enabled,
           comment = EXCLUDED.comment;
  RETURN svc;
END
$$;
COMMENT ON FUNCTION usher.set_service(text, integer, integer, integer, interval, integer, boolean, text) IS
  'Creates or changes a service; arguments left out keep their value (a new service starts unlimited)';

CREATE FUNCTION usher.drop_service(name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  PERFORM usher._check_registry_writable();
  IF drop_service.name = 'default' THEN
    RAISE EXCEPTION 'service "default" cannot be dropped'
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'Sessions of no other service count as "default".';
  END IF;
  LOCK TABLE usher.service IN SHARE ROW EXCLUSIVE MODE;
  DELETE FROM usher.service s WHERE s.name = drop_service.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'service "%" does not exist', drop_service.name USING ERRCODE = 'undefined_object';
  END IF;
END
$$;
COMMENT ON FUNCTION usher.drop_service(text) IS
  'Removes a service and its role mappings; its sessions count as "default" from their next login';

CREATE FUNCTION usher.set_role_service(role_name name, service text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  mapping_count bigint;
BEGIN
  PERFORM usher._check_registry_writable();
  IF set_role_service.role_name IS NULL THEN
    RAISE EXCEPTION 'role name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  LOCK TABLE usher.service IN SHARE ROW EXCLUSIVE MODE;
  IF set_role_service.service IS NULL THEN
    DELETE FROM usher.role_service r WHERE r.role_name = set_role_service.role_name;
    RETURN;
  END IF;
  IF to_regrole(quote_ident(set_role_service.role_name)) IS NULL THEN
    RAISE EXCEPTION 'role "%" does not exist', set_role_service.role_name USING ERRCODE = 'undefined_object';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM usher.service s WHERE s.name = set_role_service.service) THEN
    RAISE EXCEPTION 'service "%" does not exist', set_role_service.service
      USING ERRCODE = 'undefined_object', HINT = 'Create it first with usher.set_service.';
  END IF;
  SELECT count(*) INTO mapping_count FROM usher.role_service r WHERE r.role_name <> set_role_service.role_name;
  IF mapping_count >= current_setting('usher.max_role_mappings')::integer THEN
    RAISE EXCEPTION 'cannot map role "%": % role mappings is the limit of usher.max_role_mappings',
                    set_role_service.role_name, mapping_count
      USING ERRCODE = 'program_limit_exceeded', HINT = 'Raise usher.max_role_mappings and restart the server.';
  END IF;
  INSERT INTO usher.role_service AS r VALUES (set_role_service.role_name, set_role_service.service)
    ON CONFLICT (role_name) DO UPDATE SET service = EXCLUDED.service;
END
$$;
COMMENT ON FUNCTION usher.set_role_service(name, text) IS
  'Makes every session of a role belong to a service (a NULL service removes the mapping)';

CREATE FUNCTION usher.published_services_internal(
    OUT name text,
    OUT max_connections integer,
    OUT reserved_connections integer,
    OUT max_active integer,
    OUT queue_timeout interval,
    OUT priority integer,
    OUT enabled boolean,
    OUT roles text[],
    OUT published_at timestamptz)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'usher_published_services';
CREATE VIEW usher.published_services AS SELECT * FROM usher.published_services_internal();
COMMENT ON VIEW usher.published_services IS
  'The registry the server enforces now (shared memory), with the roles mapped to each service';

CREATE FUNCTION usher.service_status_internal(
    OUT service text,
    OUT listed boolean,
    OUT enabled boolean,
    OUT max_connections integer,
    OUT reserved_connections integer,
    OUT max_active integer,
    OUT current integer,
    OUT current_superusers integer,
    OUT peak integer,
    OUT reserved_in_use integer,
    OUT admitted_total bigint,
    OUT rejected_quota_total bigint,
    OUT rejected_reservation_total bigint,
    OUT rejected_total bigint,
    OUT active integer,
    OUT queued integer,
    OUT peak_active integer,
    OUT statements_admitted_total bigint,
    OUT statements_waited_total bigint,
    OUT queue_timeouts_total bigint,
    OUT queue_cancels_total bigint,
    OUT wait_seconds_sum double precision,
    OUT wait_seconds_max double precision,
    OUT busy_seconds_sum double precision)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'usher_service_status';
CREATE VIEW usher.service_status AS SELECT * FROM usher.service_status_internal();
COMMENT ON VIEW usher.service_status IS
  'Per service: limits, sessions now, peak, reservations in use, admitted and refused logins, and its statement gate';
-- ---------------------------------------------------------------------------------
-- Leases: a pool marks which of its clients holds a connection.
-- ---------------------------------------------------------------------------------
CREATE FUNCTION usher.checkout(holder text) RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'usher_checkout';
COMMENT ON FUNCTION usher.checkout(text) IS
  'Records that this connection is lent to holder (cut to 64 bytes; NULL clears) and returns true';
CREATE FUNCTION usher.checkin() RETURNS boolean
LANGUAGE C VOLATILE AS 'MODULE_PATHNAME', 'usher_checkin';
COMMENT ON FUNCTION usher.checkin() IS 'Clears this connection''s lease; returns true';
-- Health: thresholds, the leases view, health(), ready(), metrics().

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

CREATE VIEW usher.leases AS
  SELECT b.pid, b.service, b.lease_holder AS holder, b.lease_age, b.state, b.state_age,
         b.application_name, b.role, b.database,
         (b.state LIKE 'idle%' AND t.warning IS NOT NULL
          AND extract(epoch FROM b.lease_age) >= t.warning) AS suspect
    FROM usher.backends b
   CROSS JOIN (SELECT warning FROM usher.health_thresholds() WHERE "check" = 'leases') t
   WHERE b.lease_holder IS NOT NULL;
COMMENT ON VIEW usher.leases IS
  'Leased backends (usher.checkout); suspect when idle with a lease older than usher.lease_warning';

-- One row per check. Each measure below yields (check, value, detail); the grading
-- against the thresholds is done once, at the end. Values are in the unit that
-- health_thresholds() reports. The calling session itself is left out of the
-- per-session checks: a monitoring query must not report its own transaction.
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
AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
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
     -- pg_locks copies the whole lock table; skip it when nobody waits for a lock.
     AND EXISTS (SELECT 1 FROM b WHERE b.wait_event_type = 'Lock')
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
  -- A primary reports one row per connected standby. (WAL senders joined to their
  -- own activity row: pg_stat_replication would build a row for every backend.)
  SELECT 5, 'replication_lag',
         coalesce(extract(epoch FROM w.replay_lag), 0),
         pg_catalog.format('standby %s (%s, %s): replay lag %s, %s bytes behind',
                           a.application_name, coalesce(host(a.client_addr), 'local'), w.state,
                           coalesce(w.replay_lag, '0'),
                           coalesce(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), w.replay_lsn), 0))
    FROM pg_catalog.pg_stat_get_wal_senders() w
   CROSS JOIN LATERAL pg_catalog.pg_stat_get_activity(w.pid) a
   WHERE NOT pg_catalog.pg_is_in_recovery()

  UNION ALL
  SELECT 5, 'replication_lag', 0, 'primary with no standby connected'
   WHERE NOT pg_catalog.pg_is_in_recovery()
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_wal_senders())

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
  UNION ALL
  SELECT 8, 'leases',
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
         CASE WHEN t.critical IS NOT NULL AND m.value >= t.critical THEN 'critical'
              WHEN t.warning IS NOT NULL AND m.value >= t.warning THEN 'warning'
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
-- ---------------------------------------------------------------------------------
-- Application semaphores (need shared_preload_libraries). See docs/semaphores.md.
-- ---------------------------------------------------------------------------------

-- Definitions persist here, in the database named by usher.database, and are published
-- to shared memory when a change commits and at server start. Change them through
-- usher.set_semaphore / usher.drop_semaphore; the constraints hold for direct DML too.
CREATE TABLE usher.semaphore (
  name text PRIMARY KEY CHECK (octet_length(name) BETWEEN 1 AND 63),
  capacity integer NOT NULL CHECK (capacity >= 0),
  comment text
);
COMMENT ON TABLE usher.semaphore IS
  'Application semaphores and their capacity; change through usher.set_semaphore / usher.drop_semaphore';
SELECT pg_catalog.pg_extension_config_dump('usher.semaphore', '');

CREATE FUNCTION usher._semaphores_changed() RETURNS trigger
LANGUAGE C AS 'MODULE_PATHNAME', 'usher_semaphores_changed';
CREATE TRIGGER publish_on_commit AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usher.semaphore
  FOR EACH STATEMENT EXECUTE FUNCTION usher._semaphores_changed();
-- Publish "no semaphores" when this CREATE EXTENSION commits: a database dropped with
-- the extension in it can have left definitions behind in shared memory.
TRUNCATE usher.semaphore;

CREATE FUNCTION usher._check_semaphores_writable() RETURNS void
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_check_semaphores_writable';

CREATE FUNCTION usher.set_semaphore(name text, capacity integer, comment text DEFAULT NULL)
RETURNS usher.semaphore
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  result usher.semaphore;
  defined bigint;
BEGIN
  PERFORM usher._check_semaphores_writable();
  IF set_semaphore.name IS NULL THEN
    RAISE EXCEPTION 'semaphore name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF octet_length(set_semaphore.name) NOT BETWEEN 1 AND 63 THEN
    RAISE EXCEPTION 'invalid semaphore name "%"', set_semaphore.name
      USING ERRCODE = 'invalid_parameter_value', DETAIL = 'A semaphore name is 1 to 63 bytes long.';
  END IF;
  IF set_semaphore.capacity IS NULL THEN
    RAISE EXCEPTION 'capacity of semaphore "%" must not be NULL', set_semaphore.name
      USING ERRCODE = 'null_value_not_allowed';
  END IF;
  IF set_semaphore.capacity < 0 THEN
    RAISE EXCEPTION 'capacity of semaphore "%" must be 0 or more, not %', set_semaphore.name, set_semaphore.capacity
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'The capacity is how many permits can be held at once; 0 closes the semaphore (acquire waits).';
  END IF;
  -- One writer at a time, so each commit publishes every change committed before it.
  LOCK TABLE usher.semaphore IN SHARE ROW EXCLUSIVE MODE;
  IF NOT EXISTS (SELECT 1 FROM usher.semaphore s WHERE s.name = set_semaphore.name) THEN
    SELECT count(*) INTO defined FROM usher.semaphore;
    IF defined >= current_setting('usher.max_semaphores')::integer THEN
      RAISE EXCEPTION 'cannot add semaphore "%": % semaphores are defined, the limit of usher.max_semaphores',
                      set_semaphore.name, defined
        USING ERRCODE = 'program_limit_exceeded',
              HINT = 'Drop unused semaphores with usher.drop_semaphore, or raise usher.max_semaphores and restart the server.';
    END IF;
  END IF;
  INSERT INTO usher.semaphore AS s VALUES (set_semaphore.name, set_semaphore.capacity, set_semaphore.comment)
    ON CONFLICT (name) DO UPDATE
       SET capacity = EXCLUDED.capacity, comment = coalesce(EXCLUDED.comment, s.comment)
  RETURNING * INTO result;
  RETURN result;
END
$$;
COMMENT ON FUNCTION usher.set_semaphore(text, integer, text) IS
  'Creates a semaphore or changes its capacity (published when the transaction commits; permits held are kept)';

CREATE FUNCTION usher.drop_semaphore(name text)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  PERFORM usher._check_semaphores_writable();
  LOCK TABLE usher.semaphore IN SHARE ROW EXCLUSIVE MODE;
  DELETE FROM usher.semaphore s WHERE s.name = drop_semaphore.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'semaphore "%" does not exist', drop_semaphore.name USING ERRCODE = 'undefined_object';
  END IF;
END
$$;
COMMENT ON FUNCTION usher.drop_semaphore(text) IS
  'Removes a semaphore: waiters get an error, holders keep their permits until they release them';

-- Not STRICT: a NULL name or permits is an error with a message, a NULL timeout waits
-- without a limit. PARALLEL UNSAFE: permits belong to the session that asked.
CREATE FUNCTION usher.acquire(name text, permits integer DEFAULT 1, timeout interval DEFAULT '5s',
                              scope text DEFAULT 'transaction')
RETURNS boolean
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'usher_acquire';
COMMENT ON FUNCTION usher.acquire(text, integer, interval, text) IS
  'Takes permits of a semaphore, waiting in FIFO order up to timeout (false when it passes); scope transaction or session';

CREATE FUNCTION usher.release(name text, permits integer DEFAULT 1)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'usher_release';
COMMENT ON FUNCTION usher.release(text, integer) IS
  'Gives back permits this session holds (the most recently acquired first)';

CREATE FUNCTION usher.semaphores_internal(
    OUT name text,
    OUT capacity integer,
    OUT held integer,
    OUT available integer,
    OUT waiters integer,
    OUT holders integer,
    OUT holder_pids integer[],
    OUT peak_held integer,
    OUT acquired_total bigint,
    OUT timeouts_total bigint,
    OUT defined boolean)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'usher_semaphores';
CREATE VIEW usher.semaphores AS SELECT * FROM usher.semaphores_internal();
COMMENT ON VIEW usher.semaphores IS
  'Semaphores in shared memory: capacity, permits held and available, waiters, holders and their pids, totals';

GRANT SELECT ON usher.semaphores, usher.semaphore TO pg_monitor;
GRANT EXECUTE ON FUNCTION usher.semaphores_internal() TO pg_monitor;
-- ---------------------------------------------------------------------------------
-- Activity history (the launcher's sampler) and pool-size advice.
-- See docs/pool-advice.md for the formula.
-- ---------------------------------------------------------------------------------

CREATE FUNCTION usher.activity_history_internal(
    OUT sampled_at timestamptz,
    OUT service text,
    OUT connected integer,
    OUT active integer,
    OUT queued integer,
    OUT statements bigint,
    OUT busy_seconds double precision)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'usher_activity_history';
CREATE VIEW usher.activity_history AS SELECT * FROM usher.activity_history_internal();
COMMENT ON VIEW usher.activity_history IS
  'Per sample (every usher.sample_interval) and service: sessions connected, statements active and queued at the gate, statements admitted and busy seconds since the previous sample';

-- Over the whole window the ring buffer holds (usher.history_samples samples).
-- Little's law: mean concurrency L = rate x mean busy time = busy seconds / window seconds.
CREATE VIEW usher.activity_summary AS
SELECT h.service,
       min(h.sampled_at) AS window_start,
       max(h.sampled_at) AS window_end,
       count(*) AS samples,
       max(h.connected) AS peak_connected,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY h.connected) AS p95_connected,
       max(h.active) AS peak_active,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY h.active) AS p95_active,
       max(h.queued) AS peak_queued,
       coalesce(sum(h.statements), 0)::bigint AS statements,
       CASE WHEN max(h.sampled_at) > min(h.sampled_at)
            THEN coalesce(sum(h.statements), 0)
                 / extract(epoch FROM max(h.sampled_at) - min(h.sampled_at))::double precision
       END AS statements_per_second,
       CASE WHEN sum(h.statements) > 0 THEN sum(h.busy_seconds) / sum(h.statements) END AS mean_busy_seconds,
       CASE WHEN max(h.sampled_at) > min(h.sampled_at)
            THEN coalesce(sum(h.busy_seconds), 0)
                 / extract(epoch FROM max(h.sampled_at) - min(h.sampled_at))::double precision
       END AS mean_active
  FROM usher.activity_history h
 GROUP BY h.service;
COMMENT ON VIEW usher.activity_summary IS
  'Per service over the sampled window: peak and p95 of connected and active, statement rate, mean busy time and mean concurrency (Little''s law)';

CREATE FUNCTION usher.cpu_cores_internal(OUT cores integer, OUT source text)
LANGUAGE C STRICT VOLATILE
AS 'MODULE_PATHNAME', 'usher_cpu_cores';

-- The formula is documented step by step in docs/pool-advice.md; keep the two in step.
CREATE FUNCTION usher.pool_advice(instances jsonb DEFAULT NULL)
RETURNS TABLE (service text, client_instances integer, max_pool_size integer, min_idle integer,
               basis text, rationale text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
  cores integer;
  cores_source text;
  max_conn integer := current_setting('max_connections')::integer;
  su_reserved integer := current_setting('superuser_reserved_connections')::integer;
  pg_reserved integer := coalesce(nullif(current_setting('reserved_connections', true), '')::integer, 0);
  usable integer;
  target integer;
  total_weight numeric;
  min_samples constant integer := 10;
  key text;
  value jsonb;
  known text;
  s record;
  h record;
  n integer;
  w numeric;
  others_reserved integer;
  available integer;
  share integer;
  little numeric;
  demand integer;
  wanted integer;
  cap integer;
  cap_text text;
  per_instance integer;
  idle integer;
  steady numeric;
  why text;
BEGIN
  SELECT c.cores, c.source INTO cores, cores_source FROM usher.cpu_cores_internal() c;  -- 55000 unless preloaded

  IF instances IS NOT NULL THEN
    IF jsonb_typeof(instances) <> 'object' THEN
      RAISE EXCEPTION 'instances must be a JSON object of service names and client process counts, not a JSON %',
        jsonb_typeof(instances)
        USING ERRCODE = '22023', HINT = 'For example: usher.pool_advice(''{"orders": 12, "billing": 3}'').';
    END IF;
    SELECT string_agg(quote_literal(p.name), ', ' ORDER BY p.name) INTO known
      FROM usher.published_services p WHERE p.enabled;
    FOR key, value IN SELECT e.key, e.value FROM jsonb_each(instances) e LOOP
      IF jsonb_typeof(value) <> 'number' OR value::text::numeric <> trunc(value::text::numeric)
         OR value::text::numeric < 1 OR value::text::numeric > 100000 THEN
        RAISE EXCEPTION 'instances of service "%" must be a whole number between 1 and 100000, not %', key, value::text
          USING ERRCODE = '22023';
      END IF;
      IF NOT EXISTS (SELECT 1 FROM usher.published_services p WHERE p.name = key AND p.enabled) THEN
        RAISE EXCEPTION 'instances names service "%", which is not an enabled service in the published registry', key
          USING ERRCODE = '22023', HINT = format('Services: %s.', known);
      END IF;
    END LOOP;
  END IF;

  usable := max_conn - su_reserved - pg_reserved;
  target := 2 * cores;
  SELECT sum(1 + p.priority / 100.0) INTO total_weight FROM usher.published_services p WHERE p.enabled;

  FOR s IN SELECT p.name, p.max_connections, p.reserved_connections, p.max_active, p.priority
             FROM usher.published_services p WHERE p.enabled ORDER BY p.name LOOP
    n := coalesce((instances ->> s.name)::numeric::integer, 1);
    w := 1 + s.priority / 100.0;
    SELECT coalesce(sum(p.reserved_connections), 0) INTO others_reserved
      FROM usher.published_services p WHERE p.enabled AND p.name <> s.name;
    available := greatest(usable - others_reserved, 0);
    share := greatest(ceil(target * w / total_weight), 1)::integer;

    why := format('server: %s cores (%s), target 2 x %s = %s active statements; '
                  'usable connections %s = max_connections %s - %s reserved by the server; '
                  'other services reserve %s, so %s are available; '
                  'service: max_connections %s, max_active %s, priority %s (weight %s of %s), %s instance(s); ',
                  cores, cores_source, cores, target, usable, max_conn, su_reserved + pg_reserved,
                  others_reserved, available,
                  CASE WHEN s.max_connections > 0 THEN s.max_connections::text ELSE 'unlimited' END,
                  CASE WHEN s.max_active > 0 THEN s.max_active::text ELSE 'unlimited' END,
                  s.priority, round(w, 2), round(total_weight, 2), n);

    SELECT * INTO h FROM usher.activity_summary a WHERE a.service = s.name;
    IF h.samples >= min_samples AND (h.statements > 0 OR h.peak_active > 0) THEN
      basis := 'observed';
      little := coalesce(h.mean_active, 0)::numeric;
      steady := CASE WHEN h.statements > 0 THEN little ELSE h.p95_active END;
      demand := greatest(ceil(little), h.p95_active, 1)::integer;
      wanted := greatest(ceil(1.25 * demand), h.peak_active)::integer;
      why := why || format('history: %s samples over %s s, peak active %s, p95 active %s, peak queued %s, '
                           'rate %s/s x mean busy %s s = L %s (Little''s law); '
                           'demand D = max(ceil(L), p95 active, 1) = %s; wanted N = max(ceil(1.25 x D), peak active) = %s; ',
                           h.samples, round(extract(epoch FROM h.window_end - h.window_start)::numeric, 1),
                           h.peak_active, h.p95_active, h.peak_queued,
                           round(coalesce(h.statements_per_second, 0)::numeric, 2),
                           round(coalesce(h.mean_busy_seconds, 0)::numeric, 4), round(little, 2),
                           demand, wanted);
      IF demand > target THEN
        why := why || format('D exceeds 2 x cores (%s): statements mostly wait (I/O, locks, sleep); '
                             'a max_active near %s would protect the server; ', target, target);
      END IF;
    ELSE
      basis := 'default share';
      steady := NULL;
      demand := share;
      wanted := share;
      why := why || format('no usable history (%s samples, %s statements; needs %s samples with activity): '
                           'N = ceil(2 x cores x weight / total weight) = ceil(%s x %s / %s) = %s; ',
                           coalesce(h.samples, 0), coalesce(h.statements, 0), min_samples,
                           target, round(w, 2), round(total_weight, 2), share);
    END IF;

    cap := available;
    cap_text := format('available %s', available);
    IF s.max_connections > 0 AND s.max_connections < cap THEN
      cap := s.max_connections;
    END IF;
    IF s.max_connections > 0 THEN
      cap_text := cap_text || format(', max_connections %s', s.max_connections);
    END IF;
    IF s.max_active > 0 AND s.max_active < cap THEN
      cap := s.max_active;
    END IF;
    IF s.max_active > 0 THEN
      cap_text := cap_text || format(', max_active %s', s.max_active);
    END IF;
    per_instance := greatest(least(ceil(least(wanted, cap)::numeric / n), floor(cap::numeric / n)), 1)::integer;
    idle := least(per_instance,
                  CASE WHEN steady IS NULL THEN 1 ELSE greatest(ceil(steady / n), 1) END)::integer;
    why := why || format('cap C = min(%s) = %s; max pool per instance = max(1, min(ceil(min(N, C) / %s), floor(C / %s))) = %s; '
                         'min idle = %s',
                         cap_text, cap, n, n, per_instance,
                         CASE WHEN steady IS NULL THEN format('1 (no history) = %s', idle)
                              ELSE format('min(max pool, max(1, ceil(%s / %s))) = %s', round(steady, 2), n, idle) END);
    IF per_instance * n > cap THEN
      why := why || format('; note: %s instances x 1 exceed the cap %s: fewer instances, or a higher limit', n, cap);
    END IF;

    service := s.name;
    client_instances := n;
    max_pool_size := per_instance;
    min_idle := idle;
    rationale := why;
    RETURN NEXT;
  END LOOP;
END
$$;
COMMENT ON FUNCTION usher.pool_advice(jsonb) IS
  'Per service: recommended max pool size and min idle per client instance, with every input in the rationale (docs/pool-advice.md)';

GRANT SELECT ON usher.activity_history, usher.activity_summary TO pg_monitor;
GRANT EXECUTE ON FUNCTION usher.activity_history_internal(), usher.cpu_cores_internal(),
  usher.pool_advice(jsonb) TO pg_monitor;
-- Least privilege: nothing for PUBLIC, read access for pg_monitor. The registry is
-- changed only by the extension's owner and the roles it grants EXECUTE on
-- set_service / drop_service / set_role_service (SECURITY DEFINER, search_path pinned);
-- checkout / checkin are for the roles client pools log in as, granted by the owner.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA usher FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA usher FROM PUBLIC;
GRANT USAGE ON SCHEMA usher TO pg_monitor;
GRANT SELECT ON usher.backends, usher.connections, usher.capacity, usher.service, usher.role_service,
  usher.published_services, usher.service_status, usher.leases TO pg_monitor;
GRANT EXECUTE ON FUNCTION usher.backends_internal(), usher.health_thresholds(), usher.health(),
  usher.ready(), usher.metrics(), usher.published_services_internal(), usher.service_status_internal()
  TO pg_monitor;
