-- What a DBA does with pg_usher once it is installed: registry rows with every kind of
-- limit, role mappings, semaphores, and the grants docs/admission.md,
-- docs/semaphores.md and docs/reference.md describe. tests/integration/upgrade.sh runs
-- it as the owner in a database created at an old version (before ALTER EXTENSION
-- UPDATE) and in a fresh install of the new one, in the database named by
-- usher.database, and compares the two. It uses only calls that every version accepts:
-- arguments by name, functions granted by name without their argument list (a later
-- version may add parameters). The roles are created by upgrade.sh (they are shared by
-- the cluster's databases).
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

-- services: the default row changed, limits of every kind, a disabled one, a service
-- created and dropped again, and a change in a rolled-back transaction
SELECT usher.set_service('default', max_connections => 60, max_active => 40, comment => 'everyone else');
SELECT usher.set_service('orders', max_connections => 20, reserved_connections => 4, max_active => 3,
                         queue_timeout => '2s', priority => 10, comment => 'orders API');
SELECT usher.set_service('reporting', max_connections => 10, max_active => 1, queue_timeout => '0',
                         enabled => false, comment => 'disabled for now');
SELECT usher.set_service('batch.nightly', queue_timeout => '1 day', priority => 1000);
SELECT usher.set_service('scratch', max_connections => 1);
SELECT usher.drop_service('scratch');
BEGIN;
SELECT usher.set_service('orders', max_active => 99);
ROLLBACK;
SELECT usher.set_role_service('usher_batch', 'batch.nightly');
SELECT usher.set_role_service('usher_app', 'orders');

-- semaphores
SELECT usher.set_semaphore('exports', 3, 'nightly CSV exports');
SELECT usher.set_semaphore('reindex', 1);
SELECT usher.set_semaphore('closed', 0, 'closed for maintenance');

-- delegation (docs/admission.md, docs/semaphores.md): an operator changes the registry
GRANT USAGE ON SCHEMA usher TO usher_operator, usher_app, usher_reader;
GRANT EXECUTE ON FUNCTION usher.set_service, usher.drop_service, usher.set_role_service,
                          usher.set_semaphore, usher.drop_semaphore TO usher_operator;
-- applications: semaphores, leases and pool advice (docs/semaphores.md, docs/admission.md,
-- docs/reference.md)
GRANT EXECUTE ON FUNCTION usher.acquire, usher.release, usher.checkout, usher.checkin TO usher_app;
GRANT EXECUTE ON FUNCTION usher.pool_advice, usher.activity_history_internal, usher.cpu_cores_internal
  TO usher_app;
GRANT SELECT ON usher.activity_history, usher.activity_summary TO usher_app;
-- a narrower reader than pg_monitor (docs/reference.md: SELECT on usher.backends alone),
-- with a column privilege on the registry and a grant it may pass on
GRANT SELECT ON usher.backends TO usher_reader;
GRANT EXECUTE ON FUNCTION usher.backends_internal TO usher_reader;
GRANT SELECT (name, max_connections, enabled) ON usher.service TO usher_reader;
GRANT SELECT ON usher.service_status TO usher_reader WITH GRANT OPTION;
GRANT EXECUTE ON FUNCTION usher.service_status_internal TO usher_reader;
SET ROLE usher_reader;
GRANT SELECT ON usher.service_status TO usher_app;
RESET ROLE;
