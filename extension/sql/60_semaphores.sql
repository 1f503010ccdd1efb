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
LANGUAGE C
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_semaphores_changed';
CREATE TRIGGER publish_on_commit AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON usher.semaphore
  FOR EACH STATEMENT EXECUTE FUNCTION usher._semaphores_changed();
-- Publish "no semaphores" when this CREATE EXTENSION commits: a database dropped with
-- the extension in it can have left definitions behind in shared memory.
TRUNCATE usher.semaphore;

CREATE FUNCTION usher._check_semaphores_writable() RETURNS void
LANGUAGE C STRICT
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_check_semaphores_writable';

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
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_acquire';
COMMENT ON FUNCTION usher.acquire(text, integer, interval, text) IS
  'Takes permits of a semaphore, waiting in FIFO order up to timeout (false when it passes); scope transaction or session';

CREATE FUNCTION usher.release(name text, permits integer DEFAULT 1)
RETURNS void
LANGUAGE C VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_release';
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
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_semaphores';
CREATE VIEW usher.semaphores AS SELECT * FROM usher.semaphores_internal();
COMMENT ON VIEW usher.semaphores IS
  'Semaphores in shared memory: capacity, permits held and available, waiters, holders and their pids, totals';

GRANT SELECT ON usher.semaphores, usher.semaphore TO pg_monitor;
GRANT EXECUTE ON FUNCTION usher.semaphores_internal() TO pg_monitor;
