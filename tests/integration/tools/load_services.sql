-- The registry of the 7 services for the load generators (after load_schema.sql, in the
-- database pg_usher publishes from): quotas 4-10, orders and payments first, reporting
-- gated to 2 statements at once (with a queue long enough for a loaded 2-core machine).
CREATE EXTENSION pg_usher;
SELECT usher.set_service('auth', max_connections => 8, priority => 50);
SELECT usher.set_service('orders', max_connections => 10, priority => 100);
SELECT usher.set_service('payments', max_connections => 8, priority => 100);
SELECT usher.set_service('inventory', max_connections => 8);
SELECT usher.set_service('search', max_connections => 8);
SELECT usher.set_service('notifications', max_connections => 4);
SELECT usher.set_service('reporting', max_connections => 4, max_active => 2, queue_timeout => '30s');
