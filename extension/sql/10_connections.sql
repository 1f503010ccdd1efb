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
SET search_path = pg_catalog, pg_temp
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
              THEN round(100.0 * coalesce(free, greatest(max_connections - used, 0))::numeric
                         / (max_connections - reserved)::numeric, 1)
              ELSE 0 END AS headroom_percent
    FROM limits;

COMMENT ON VIEW usher.capacity IS
  'Connection capacity of the server and of every database and role with a CONNECTION LIMIT';
