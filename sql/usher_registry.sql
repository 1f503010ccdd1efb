-- The service registry: usher.set_service / drop_service / set_role_service validate
-- every value, and what commits is published to shared memory (usher.published_services).
-- Runs in the database named by usher.database (the test harness sets usher_test).
CREATE EXTENSION pg_usher;
\set SHOW_CONTEXT never

SELECT name, max_connections, reserved_connections, max_active, queue_timeout, priority, enabled, comment
  FROM usher.service;

-- A new service: unspecified values take the defaults (unlimited).
SELECT * FROM usher.set_service('orders', max_connections => 40, reserved_connections => 5, comment => 'order API');
-- Changing one value keeps the others.
SELECT * FROM usher.set_service('orders', max_active => 8, queue_timeout => '2s');
SELECT * FROM usher.set_service('reporting', max_connections => 10, priority => 5);
SELECT * FROM usher.set_service('payments', reserved_connections => 5, enabled => false);

-- The gate mode: a slot per statement (the default) or per transaction.
SELECT name, gate_mode FROM usher.set_service('reporting', gate_mode => 'transaction');

-- Published when the transaction commits: what the server enforces now.
SELECT name, max_connections, reserved_connections, max_active, queue_timeout, priority, enabled, roles,
       published_at IS NOT NULL AS published, gate_mode
  FROM usher.published_services ORDER BY name;
SELECT service, gate_mode, statements_past_limit_total FROM usher.service_status ORDER BY service;

-- A rolled-back change is never published.
BEGIN;
SELECT max_connections FROM usher.set_service('orders', max_connections => 20);
SELECT max_connections AS still_enforced FROM usher.published_services WHERE name = 'orders';
ROLLBACK;
SELECT max_connections AS after_rollback FROM usher.published_services WHERE name = 'orders';
-- Nor is one that cannot be prepared: it would commit in another backend, unpublished.
BEGIN;
SELECT max_connections FROM usher.set_service('orders', max_connections => 20);
PREPARE TRANSACTION 'registry';
SELECT max_connections AS after_refused_prepare FROM usher.published_services WHERE name = 'orders';

-- Every invalid value is refused with a message naming it.
SELECT usher.set_service(NULL);
SELECT usher.set_service('');
SELECT usher.set_service('orders/api');
SELECT usher.set_service('9lives');
SELECT usher.set_service(repeat('x', 64));
SELECT usher.set_service('orders', max_connections => -1);
SELECT usher.set_service('orders', max_connections => 1000);
SELECT usher.set_service('orders', reserved_connections => -2);
SELECT usher.set_service('orders', reserved_connections => 41);
SELECT usher.set_service('bulk', reserved_connections => 95);
SELECT usher.set_service('orders', max_active => -1);
SELECT usher.set_service('orders', queue_timeout => '-1s');
SELECT usher.set_service('orders', queue_timeout => '2 days');
SELECT usher.set_service('orders', priority => 1001);
SELECT usher.set_service('default', enabled => false);
SELECT usher.set_service('orders', gate_mode => 'bogus');
SELECT usher.set_service('orders', gate_mode => 'Transaction');
SELECT usher.drop_service('default');
SELECT usher.drop_service('nosuch');
-- Nothing of the above changed the registry.
SELECT name, max_connections, reserved_connections, max_active, queue_timeout, priority, enabled
  FROM usher.service ORDER BY name;

-- The table constraints hold even for direct DML.
INSERT INTO usher.service (name, max_connections, reserved_connections) VALUES ('direct', 2, 3);
UPDATE usher.service SET priority = -1 WHERE name = 'orders';
UPDATE usher.service SET gate_mode = 'none' WHERE name = 'orders';

-- Role mappings.
CREATE ROLE usher_reg_batch LOGIN;
SELECT usher.set_role_service('usher_reg_batch', 'reporting');
SELECT usher.set_role_service('usher_reg_nosuch', 'reporting');
SELECT usher.set_role_service('usher_reg_batch', 'nosuch');
SELECT usher.set_role_service(NULL, 'reporting');
SELECT name, roles FROM usher.published_services WHERE cardinality(roles) > 0;
-- Dropping a service drops its mappings.
SELECT usher.drop_service('reporting');
SELECT * FROM usher.role_service;
SELECT name FROM usher.published_services ORDER BY name;
-- A NULL service removes a mapping.
SELECT usher.set_role_service('usher_reg_batch', 'orders');
SELECT usher.set_role_service('usher_reg_batch', NULL);
SELECT count(*) AS mappings FROM usher.role_service;
DROP ROLE usher_reg_batch;

-- Registry changes are accepted only in the database named by usher.database.
SELECT current_setting('usher.database') = current_database() AS this_is_the_registry_database;

-- Dropping the extension unpublishes the registry: only 'default' stays in force.
DROP EXTENSION pg_usher;
CREATE EXTENSION pg_usher;
\set SHOW_CONTEXT never
SELECT name, max_connections FROM usher.published_services ORDER BY name;
DROP EXTENSION pg_usher;
