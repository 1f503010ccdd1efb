-- pg_usher 1.0.0 -> 1.1.0 (ALTER EXTENSION pg_usher UPDATE TO '1.1.0').
-- The result must equal a fresh install of 1.1.0 (built from extension/sql/): every
-- change to an SQL object in extension/sql/ adds its step here, under a heading that
-- names the concern. tests/integration/upgrade.sh compares the two.
\echo Use "ALTER EXTENSION pg_usher UPDATE TO '1.1.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------
-- Helper for the sections below: carrying the grants a DBA made across a re-created
-- object (docs/upgrading.md). An object that must be dropped and created again (a
-- function whose arguments or result columns change, a view over it) loses the
-- privileges granted on it since CREATE EXTENSION. Create the new object beside the
-- old one (rename the old one first when the name stays), give the new one what the
-- install script gives it (REVOKE ... FROM PUBLIC, GRANT ... TO pg_monitor), then
--   SELECT pg_temp.usher_copy_grants('function', 'usher.f(text)', 'usher.f(text, text)');
--   SELECT pg_temp.usher_copy_grants('view', 'usher.v_1_0_0', 'usher.v');
-- and drop the old one. It grants on the new object every privilege of the old one
-- that the extension did not give (its ACL minus pg_init_privs), by the same grantor,
-- with the same grant option, column privileges too; and it leaves the new object's
-- pg_init_privs as the extension's own grants made it, so that pg_dump still dumps the
-- DBA's grants. A temporary function, not a member of the extension: it disappears
-- with the session. (An update through several versions runs their scripts in one
-- session, each of which defines it again.)
-- ---------------------------------------------------------------------------------
DROP FUNCTION IF EXISTS pg_temp.usher_copy_grants(text, text, text);
CREATE FUNCTION pg_temp.usher_copy_grants(kind text, source text, target text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  catalog oid;
  keyword text;
  src oid;
  dst oid;
  dst_name text;
  dst_init_before jsonb;
  updater name := current_user;
  g record;
BEGIN
  IF kind = 'function' THEN
    catalog := 'pg_catalog.pg_proc'::regclass; keyword := 'FUNCTION';
    src := source::regprocedure; dst := target::regprocedure; dst_name := dst::regprocedure::text;
  ELSIF kind IN ('view', 'table') THEN
    catalog := 'pg_catalog.pg_class'::regclass; keyword := 'TABLE';
    src := source::regclass; dst := target::regclass; dst_name := dst::regclass::text;
  ELSE
    RAISE EXCEPTION 'usher_copy_grants: kind must be function, view or table, not "%"', kind;
  END IF;
  SELECT coalesce(jsonb_agg(to_jsonb(ip)), '[]') INTO dst_init_before FROM pg_init_privs ip
   WHERE ip.objoid = dst AND ip.classoid = catalog;
  -- (grantee, privilege, grantable, grantor, column) of the source, less its initial privileges;
  -- grants by the owner first, so that a grant option exists before it is used
  FOR g IN
    WITH acl(attnum, attname, items) AS (
      SELECT 0::int2, NULL::name, proacl FROM pg_proc WHERE catalog = 'pg_catalog.pg_proc'::regclass AND oid = src
      UNION ALL
      SELECT 0::int2, NULL::name, relacl FROM pg_class WHERE catalog = 'pg_catalog.pg_class'::regclass AND oid = src
      UNION ALL
      SELECT attnum, attname, attacl FROM pg_attribute
       WHERE catalog = 'pg_catalog.pg_class'::regclass AND attrelid = src AND attnum > 0 AND NOT attisdropped
    ),
    granted AS (
      SELECT acl.attname, a.grantor, a.grantee, a.privilege_type, a.is_grantable
        FROM acl, aclexplode(acl.items) a
      EXCEPT
      SELECT acl.attname, a.grantor, a.grantee, a.privilege_type, a.is_grantable
        FROM acl JOIN pg_init_privs ip ON ip.objoid = src AND ip.classoid = catalog AND ip.objsubid = acl.attnum,
             aclexplode(ip.initprivs) a
    )
    SELECT gr.*, grantor.rolname AS grantor_name,
           CASE WHEN gr.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(grantee.rolname) END AS grantee_name
      FROM granted gr JOIN pg_roles grantor ON grantor.oid = gr.grantor
      LEFT JOIN pg_roles grantee ON grantee.oid = gr.grantee
     ORDER BY gr.grantor = (SELECT CASE WHEN catalog = 'pg_catalog.pg_proc'::regclass
                                       THEN (SELECT proowner FROM pg_proc WHERE oid = src)
                                       ELSE (SELECT relowner FROM pg_class WHERE oid = src) END) DESC,
              gr.attname NULLS FIRST, gr.privilege_type, gr.grantee
  LOOP
    IF g.attname IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = dst AND attname = g.attname
                                                                          AND attnum > 0 AND NOT attisdropped) THEN
      CONTINUE;  -- a column the new relation no longer has
    END IF;
    EXECUTE format('SET LOCAL ROLE %I', g.grantor_name);
    EXECUTE format('GRANT %s%s ON %s %s TO %s%s', g.privilege_type,
                   coalesce(' (' || quote_ident(g.attname) || ')', ''), keyword, dst_name, g.grantee_name,
                   CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    EXECUTE format('SET LOCAL ROLE %I', updater);
  END LOOP;
  -- Granted inside the extension's script, these were recorded as the extension's
  -- initial privileges: give them back to the DBA.
  DELETE FROM pg_init_privs WHERE objoid = dst AND classoid = catalog;
  INSERT INTO pg_init_privs SELECT * FROM jsonb_populate_recordset(NULL::pg_init_privs, dst_init_before);
END
$$;
ALTER EXTENSION pg_usher DROP FUNCTION pg_temp.usher_copy_grants(text, text, text);


-- As in the install script: nothing below resolves in a schema other roles can create
-- in (views bind their operators here); ALTER EXTENSION restores the caller's path.
SET LOCAL search_path = pg_catalog, pg_temp;

-- search_path hijack (issue 9, item 1; docs/security.md)
-- Every function of schema usher pins search_path; health() also gets exact operators
-- (numeric * bigint and numeric >= double precision had none in pg_catalog), and so do
-- the views that had mixed-type operators: a view binds its operators when it is
-- (re)created, under the search_path pinned at the top of this script.
ALTER FUNCTION usher._check_registry_writable() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher._check_semaphores_writable() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher._registry_changed() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher._semaphores_changed() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.acquire(text,integer,interval,text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.activity_history_internal() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.backends_internal() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.checkin() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.checkout(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.cpu_cores_internal() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.health_thresholds() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.metrics() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.published_services_internal() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.ready() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.release(text,integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.semaphores_internal() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION usher.service_status_internal() SET search_path = pg_catalog, pg_temp;

-- health() (PL/pgSQL, exact operators) is defined whole by the section "health() speed"
-- at the end of this script, in its final form.

CREATE OR REPLACE VIEW usher.capacity AS
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
              THEN round(100.0 * coalesce(free, greatest(max_connections - used, 0))::numeric
                         / (max_connections - reserved)::numeric, 1)
              ELSE 0 END AS headroom_percent
    FROM limits;

CREATE OR REPLACE VIEW usher.leases AS
  SELECT b.pid, b.service, b.lease_holder AS holder, b.lease_age, b.state, b.state_age,
         b.application_name, b.role, b.database,
         (b.state LIKE 'idle%' AND t.warning IS NOT NULL
          AND extract(epoch FROM b.lease_age)::double precision >= t.warning) AS suspect
    FROM usher.backends b
   CROSS JOIN (SELECT warning FROM usher.health_thresholds() WHERE "check" = 'leases') t
   WHERE b.lease_holder IS NOT NULL;

CREATE OR REPLACE VIEW usher.activity_summary AS
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
            THEN coalesce(sum(h.statements), 0)::double precision
                 / extract(epoch FROM max(h.sampled_at) - min(h.sampled_at))::double precision
       END AS statements_per_second,
       CASE WHEN sum(h.statements) > 0::numeric
            THEN sum(h.busy_seconds) / sum(h.statements)::double precision END AS mean_busy_seconds,
       CASE WHEN max(h.sampled_at) > min(h.sampled_at)
            THEN coalesce(sum(h.busy_seconds), 0)
                 / extract(epoch FROM max(h.sampled_at) - min(h.sampled_at))::double precision
       END AS mean_active
  FROM usher.activity_history h
 GROUP BY h.service;

-- gate_mode (issue 9, item 3): a service's gate holds a slot per statement (as in
-- 1.0.0) or per transaction. A column of usher.service (last), a parameter of
-- set_service (a new signature: created beside the old one, which hands its grants
-- over), a column of published_services and of service_status.
ALTER TABLE usher.service
  ADD COLUMN gate_mode text NOT NULL DEFAULT 'statement' CHECK (gate_mode IN ('statement', 'transaction'));

CREATE FUNCTION usher.set_service(
    name text,
    max_connections integer DEFAULT NULL,
    reserved_connections integer DEFAULT NULL,
    max_active integer DEFAULT NULL,
    queue_timeout interval DEFAULT NULL,
    priority integer DEFAULT NULL,
    enabled boolean DEFAULT NULL,
    comment text DEFAULT NULL,
    gate_mode text DEFAULT NULL)
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
    svc := ROW(set_service.name, 0, 0, 0, interval '5s', 0, true, NULL, 'statement')::usher.service;
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
  svc.gate_mode := coalesce(set_service.gate_mode, svc.gate_mode);

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
  IF svc.gate_mode NOT IN ('statement', 'transaction') THEN
    RAISE EXCEPTION 'invalid gate_mode "%" for service "%"', svc.gate_mode, svc.name
      USING ERRCODE = 'invalid_parameter_value',
            HINT = 'gate_mode is ''statement'' (a gate slot per statement, the default) or ''transaction'' '
                   '(a slot per transaction, from its first statement until it ends).';
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
           comment = EXCLUDED.comment,
           gate_mode = EXCLUDED.gate_mode;
  RETURN svc;
END
$$;
COMMENT ON FUNCTION usher.set_service(text, integer, integer, integer, interval, integer, boolean, text, text) IS
  'Creates or changes a service; arguments left out keep their value (a new service starts unlimited)';
REVOKE ALL ON FUNCTION usher.set_service(text, integer, integer, integer, interval, integer, boolean, text, text) FROM PUBLIC;
SELECT pg_temp.usher_copy_grants('function', 'usher.set_service(text, integer, integer, integer, interval, integer, boolean, text)', 'usher.set_service(text, integer, integer, integer, interval, integer, boolean, text, text)');
DROP FUNCTION usher.set_service(text, integer, integer, integer, interval, integer, boolean, text);

ALTER VIEW usher.published_services RENAME TO published_services_1_0_0;
ALTER FUNCTION usher.published_services_internal() RENAME TO published_services_internal_1_0_0;
CREATE FUNCTION usher.published_services_internal(
    OUT name text,
    OUT max_connections integer,
    OUT reserved_connections integer,
    OUT max_active integer,
    OUT queue_timeout interval,
    OUT priority integer,
    OUT enabled boolean,
    OUT roles text[],
    OUT published_at timestamptz,
    OUT gate_mode text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_published_services';
CREATE VIEW usher.published_services AS SELECT * FROM usher.published_services_internal();
COMMENT ON VIEW usher.published_services IS
  'The registry the server enforces now (shared memory), with the roles mapped to each service';
REVOKE ALL ON FUNCTION usher.published_services_internal() FROM PUBLIC;
REVOKE ALL ON usher.published_services FROM PUBLIC;
GRANT EXECUTE ON FUNCTION usher.published_services_internal() TO pg_monitor;
GRANT SELECT ON usher.published_services TO pg_monitor;
SELECT pg_temp.usher_copy_grants('function', 'usher.published_services_internal_1_0_0()', 'usher.published_services_internal()');
SELECT pg_temp.usher_copy_grants('view', 'usher.published_services_1_0_0', 'usher.published_services');
DROP VIEW usher.published_services_1_0_0;
DROP FUNCTION usher.published_services_internal_1_0_0();

-- service_status columns
-- rejected_full_total (admission): logins refused because every connection slot for
-- ordinary roles was in use, a reason of its own (before 1.1.0 they were counted, and
-- reported, as reservation refusals; rejected_total now includes it); gate_mode and
-- statements_past_limit_total (the gate). Appended as the last columns: a server that
-- runs this module before the update fills only the declared ones. The view is
-- rebuilt on the new function, with its grants.
ALTER VIEW usher.service_status RENAME TO service_status_1_0_0;
ALTER FUNCTION usher.service_status_internal() RENAME TO service_status_internal_1_0_0;
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
    OUT busy_seconds_sum double precision,
    OUT rejected_full_total bigint,
    OUT gate_mode text,
    OUT statements_past_limit_total bigint)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_service_status';
CREATE VIEW usher.service_status AS SELECT * FROM usher.service_status_internal();
COMMENT ON VIEW usher.service_status IS
  'Per service: limits, sessions now, peak, reservations in use, admitted and refused logins, and its statement gate';
REVOKE ALL ON FUNCTION usher.service_status_internal() FROM PUBLIC;
REVOKE ALL ON usher.service_status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION usher.service_status_internal() TO pg_monitor;
GRANT SELECT ON usher.service_status TO pg_monitor;
SELECT pg_temp.usher_copy_grants('function', 'usher.service_status_internal_1_0_0()', 'usher.service_status_internal()');
SELECT pg_temp.usher_copy_grants('view', 'usher.service_status_1_0_0', 'usher.service_status');
DROP VIEW usher.service_status_1_0_0;
DROP FUNCTION usher.service_status_internal_1_0_0();

-- health() speed (issue 11)
-- usher.health() reads usher.health_sessions_internal(), a row only for the sessions a
-- per-session check can report on and one row counting the others, instead of
-- usher.backends, a full row for every session. Same checks, values and details.
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
REVOKE ALL ON FUNCTION usher.health_sessions_internal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION usher.health_sessions_internal() TO pg_monitor;
CREATE OR REPLACE FUNCTION usher.health(
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

-- replication status (issue 13)
-- usher.replication_status(): the node's role and its replication figures, with the
-- standby's replay catch-up time it reads (usher.replay_caught_up_internal()); health()
-- reads it for its checks replication_lag (now also on an idle primary's standby),
-- replication_lag_bytes and replication_state (new thresholds, settings only).

CREATE FUNCTION usher.replay_caught_up_internal()
RETURNS timestamptz
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_replay_caught_up';

COMMENT ON FUNCTION usher.replay_caught_up_internal() IS
  'For usher.replication_status(): on a standby, the last time (sampled every usher.sample_interval) replay had caught up with the WAL received; NULL if never seen';

-- On a standby: one row, the standby itself. On a primary: one row per WAL sender
-- streaming to a standby (base backups left out), or one row with the standby columns
-- NULL when none is connected. WAL senders are joined to their own activity row:
-- pg_stat_replication would build a row for every backend to find them.
-- Lag on a standby: 0 while everything received is replayed; else the time since the
-- later of the last replayed commit and the last moment replay was seen caught up
-- (an idle primary's quiet time is not lag). On a primary: replay_lag as PostgreSQL
-- measures it, 0 when the standby has replayed everything written.
-- PL/pgSQL, not SQL, so that the session keeps the plan of this query (health() and
-- the client's health thread call it often): a third of the time of a SQL function.
CREATE FUNCTION usher.replication_status(
    OUT role text,
    OUT standby_name text,
    OUT client_addr inet,
    OUT upstream_host text,
    OUT upstream_port integer,
    OUT state text,
    OUT sync_state text,
    OUT sent_lsn pg_lsn,
    OUT write_lsn pg_lsn,
    OUT flush_lsn pg_lsn,
    OUT received_lsn pg_lsn,
    OUT replay_lsn pg_lsn,
    OUT write_lag interval,
    OUT flush_lag interval,
    OUT replay_lag interval,
    OUT lag_bytes bigint,
    OUT lag_seconds double precision,
    OUT replay_paused boolean,
    OUT last_replay_time timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
  SELECT 'standby'::text, NULL::text, NULL::inet, r.sender_host, r.sender_port,
         coalesce(r.status, 'stopped'), NULL::text,
         NULL::pg_lsn, NULL::pg_lsn, NULL::pg_lsn, x.received, x.replayed,
         NULL::interval, NULL::interval, NULL::interval,
         CASE WHEN x.received IS NULL OR x.replayed OPERATOR(pg_catalog.>=) x.received THEN 0::bigint
              ELSE pg_catalog.pg_wal_lsn_diff(x.received, x.replayed)::bigint END,
         CASE WHEN x.received IS NULL OR x.replayed OPERATOR(pg_catalog.>=) x.received THEN 0::double precision
              ELSE greatest(0, extract(epoch FROM pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
                                 coalesce(greatest(x.replay_time, usher.replay_caught_up_internal()),
                                          pg_catalog.pg_postmaster_start_time())))::double precision END,
         pg_catalog.pg_get_wal_replay_pause_state() OPERATOR(pg_catalog.<>) 'not paused',
         x.replay_time
    FROM (SELECT pg_catalog.pg_last_wal_receive_lsn() AS received,
                 pg_catalog.pg_last_wal_replay_lsn() AS replayed,
                 pg_catalog.pg_last_xact_replay_timestamp() AS replay_time) x
    LEFT JOIN pg_catalog.pg_stat_get_wal_receiver() r ON r.pid IS NOT NULL
   WHERE pg_catalog.pg_is_in_recovery()

  UNION ALL
  SELECT 'primary', a.application_name, a.client_addr, NULL, NULL, w.state, w.sync_state,
         w.sent_lsn, w.write_lsn, w.flush_lsn, NULL, w.replay_lsn,
         w.write_lag, w.flush_lag, w.replay_lag,
         pg_catalog.pg_wal_lsn_diff(c.lsn, w.replay_lsn)::bigint,
         CASE WHEN w.replay_lsn OPERATOR(pg_catalog.>=) c.lsn THEN 0::double precision
              ELSE coalesce(extract(epoch FROM w.replay_lag)::double precision, 0) END,
         NULL, NULL
    FROM pg_catalog.pg_stat_get_wal_senders() w
   CROSS JOIN LATERAL pg_catalog.pg_stat_get_activity(w.pid) a
   -- (pg_current_wal_lsn() raises during recovery, and a volatile subquery is computed
   -- before the WHERE below.)
   CROSS JOIN (SELECT CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_current_wal_lsn() END AS lsn) c
   WHERE NOT pg_catalog.pg_is_in_recovery() AND w.state OPERATOR(pg_catalog.<>) 'backup'

  UNION ALL
  SELECT 'primary', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL
   WHERE NOT pg_catalog.pg_is_in_recovery()
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_wal_senders() w
                      WHERE w.state OPERATOR(pg_catalog.<>) 'backup');
END
$$;

COMMENT ON FUNCTION usher.replication_status() IS
  'This node''s role; on a standby its received and replayed WAL, lag in bytes and seconds, whether replay is paused and the primary it follows; on a primary one row per connected standby';
REVOKE ALL ON FUNCTION usher.replay_caught_up_internal(), usher.replication_status() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION usher.replay_caught_up_internal(), usher.replication_status() TO pg_monitor;
CREATE OR REPLACE FUNCTION usher.health(
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
