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
  gate_mode text NOT NULL DEFAULT 'statement' CHECK (gate_mode IN ('statement', 'transaction')),
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
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_registry_changed';
CREATE TRIGGER publish_on_commit AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usher.service
  FOR EACH STATEMENT EXECUTE FUNCTION usher._registry_changed();
CREATE TRIGGER publish_on_commit AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usher.role_service
  FOR EACH STATEMENT EXECUTE FUNCTION usher._registry_changed();

-- ERROR 55000 unless pg_usher is preloaded and this is the database named by
-- usher.database: a registry anywhere else would never be enforced.
CREATE FUNCTION usher._check_registry_writable() RETURNS void
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_check_registry_writable';

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
    OUT published_at timestamptz,
    OUT gate_mode text)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE
SET search_path = pg_catalog, pg_temp
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
