-- ---------------------------------------------------------------------------------
-- Leases: a pool marks which of its clients holds a connection.
-- ---------------------------------------------------------------------------------
CREATE FUNCTION usher.checkout(holder text) RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_checkout';
COMMENT ON FUNCTION usher.checkout(text) IS
  'Records that this connection is lent to holder (cut to 64 bytes; NULL clears) and returns true';
CREATE FUNCTION usher.checkin() RETURNS boolean
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_checkin';
COMMENT ON FUNCTION usher.checkin() IS 'Clears this connection''s lease; returns true';
