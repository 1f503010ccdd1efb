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
         100.0 * n::numeric / s.max_connections::numeric AS value,
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

-- service_status columns
-- rejected_full_total (admission): logins refused because every connection slot for
-- ordinary roles was in use, a reason of its own (before 1.1.0 they were counted, and
-- reported, as reservation refusals). Appended as the last column; rejected_total now
-- includes it. The view is rebuilt on the new function, with its grants.
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
    OUT rejected_full_total bigint)
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
