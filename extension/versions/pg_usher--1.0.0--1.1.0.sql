-- pg_usher 1.0.0 -> 1.1.0 (ALTER EXTENSION pg_usher UPDATE TO '1.1.0').
-- The result must equal a fresh install of 1.1.0 (built from extension/sql/): every
-- change to an SQL object in extension/sql/ adds its step here, under a heading that
-- names the concern. tests/integration/upgrade.sh compares the two.
\echo Use "ALTER EXTENSION pg_usher UPDATE TO '1.1.0'" to load this file. \quit

-- service_status columns
-- rejected_full_total (admission): logins refused because every connection slot for
-- ordinary roles was in use, a reason of its own (before 1.1.0 they were counted, and
-- reported, as reservation refusals). Appended as the last column; rejected_total now
-- includes it. The view is rebuilt on the new function, with its grants.
DROP VIEW usher.service_status;
DROP FUNCTION usher.service_status_internal();
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
AS 'MODULE_PATHNAME', 'usher_service_status';
CREATE VIEW usher.service_status AS SELECT * FROM usher.service_status_internal();
COMMENT ON VIEW usher.service_status IS
  'Per service: limits, sessions now, peak, reservations in use, admitted and refused logins, and its statement gate';
REVOKE ALL ON FUNCTION usher.service_status_internal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION usher.service_status_internal() TO pg_monitor;
GRANT SELECT ON usher.service_status TO pg_monitor;
