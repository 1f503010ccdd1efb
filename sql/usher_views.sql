-- The connection views: usher.backends, usher.connections, usher.capacity.
CREATE EXTENSION pg_usher;

-- The connection views' columns (other parts test their own objects), and that nothing
-- of the whole extension is granted to PUBLIC.
SELECT c.relname AS view, string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) AS columns
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE c.relnamespace = 'usher'::regnamespace AND c.relname IN ('backends', 'connections', 'capacity')
 GROUP BY c.relname ORDER BY 1;
SELECT count(*) AS public_grants
  FROM pg_class c, aclexplode(c.relacl) acl
 WHERE c.relnamespace = 'usher'::regnamespace AND acl.grantee = 0;
SELECT count(*) AS public_grants
  FROM pg_proc p, aclexplode(p.proacl) acl
 WHERE p.pronamespace = 'usher'::regnamespace AND acl.grantee = 0;

-- This session, as usher.backends sees it. pg_regress names its sessions
-- "pg_regress/<test>", so the service is the text before the slash.
SELECT service, database = current_database() AS this_database, role = current_user AS this_role,
       application_name, state, wait_event_type, blocking_pids,
       query LIKE 'SELECT service,%' AS own_query_visible,
       backend_age >= xact_age AND xact_age >= interval '0' AS ages_ordered,
       client_addr IS NULL AS unix_socket
  FROM usher.backends WHERE pid = pg_backend_pid();

-- The service is application_name up to the first '/', else 'default'.
SET application_name = 'orders/worker-3';
SELECT service FROM usher.backends WHERE pid = pg_backend_pid();
SET application_name = 'reporting';
SELECT service FROM usher.backends WHERE pid = pg_backend_pid();
SET application_name = '';
SELECT service FROM usher.backends WHERE pid = pg_backend_pid();
SET application_name = '/leading-slash';
SELECT service FROM usher.backends WHERE pid = pg_backend_pid();
RESET application_name;

-- Only client backends: no checkpointer, walwriter, autovacuum launcher.
SELECT count(*) = (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')
       AS same_client_backends_as_pg_stat_activity
  FROM usher.backends;

-- usher.connections groups by service, database, role and state.
SET application_name = 'billing/api-1';
SELECT service, database = current_database() AS this_database, state, count,
       oldest_state_age IS NOT NULL AS has_state_age
  FROM usher.connections WHERE service = 'billing';
RESET application_name;

-- usher.capacity: the server row, plus every database and role CONNECTION LIMIT.
SELECT scope, name, max_connections = current_setting('max_connections')::int AS is_max_connections,
       reserved = current_setting('superuser_reserved_connections')::int AS is_superuser_reserved,
       used >= 1 AS counts_this_session,
       free = max_connections - reserved - used AS free_adds_up,
       headroom_percent = round(100.0 * free / (max_connections - reserved), 1) AS headroom_adds_up
  FROM usher.capacity WHERE scope = 'server';
CREATE ROLE usher_capacity_role LOGIN CONNECTION LIMIT 2;
CREATE DATABASE usher_capacity_db CONNECTION LIMIT 7;
SELECT scope, name, max_connections, reserved, used, free, headroom_percent
  FROM usher.capacity WHERE name IN ('usher_capacity_role', 'usher_capacity_db') ORDER BY scope;
ALTER ROLE usher_capacity_role CONNECTION LIMIT 0;
SELECT scope, name, max_connections, used, free, headroom_percent
  FROM usher.capacity WHERE name = 'usher_capacity_role';
ALTER ROLE usher_capacity_role CONNECTION LIMIT -1;
SELECT count(*) AS unlimited_role_rows FROM usher.capacity WHERE name = 'usher_capacity_role';
DROP DATABASE usher_capacity_db;
DROP ROLE usher_capacity_role;
DROP EXTENSION pg_usher;
