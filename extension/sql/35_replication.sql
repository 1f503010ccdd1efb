-- Replication: this node's role, and its replication figures (docs/replicas.md).

CREATE FUNCTION usher.replay_caught_up_internal()
RETURNS timestamptz
LANGUAGE C STRICT VOLATILE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'usher_replay_caught_up';

COMMENT ON FUNCTION usher.replay_caught_up_internal() IS
  'For usher.replication_status(): on a standby, the last time (sampled every usher.sample_interval) replay had caught up with the WAL received; NULL if never seen';

-- On a standby: one row, the standby itself. On a primary: one row per WAL sender
-- streaming to a standby (base backups left out), or one row with the standby columns
-- NULL when none is connected. WAL senders are joined to their own activity row:
-- pg_stat_replication would build a row for every backend to find them.
-- Lag on a standby: 0 while everything received is replayed; else the time since the
-- later of the last replayed commit and the last moment replay was seen caught up
-- (an idle primary's quiet time is not lag). On a primary: replay_lag as PostgreSQL
-- measures it, 0 when the standby has replayed everything written.
-- PL/pgSQL, not SQL, so that the session keeps the plan of this query (health() and
-- the client's health thread call it often): a third of the time of a SQL function.
CREATE FUNCTION usher.replication_status(
    OUT role text,
    OUT standby_name text,
    OUT client_addr inet,
    OUT upstream_host text,
    OUT upstream_port integer,
    OUT state text,
    OUT sync_state text,
    OUT sent_lsn pg_lsn,
    OUT write_lsn pg_lsn,
    OUT flush_lsn pg_lsn,
    OUT received_lsn pg_lsn,
    OUT replay_lsn pg_lsn,
    OUT write_lag interval,
    OUT flush_lag interval,
    OUT replay_lag interval,
    OUT lag_bytes bigint,
    OUT lag_seconds double precision,
    OUT replay_paused boolean,
    OUT last_replay_time timestamptz)
RETURNS SETOF record
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
RETURN QUERY
  SELECT 'standby'::text, NULL::text, NULL::inet, r.sender_host, r.sender_port,
         coalesce(r.status, 'stopped'), NULL::text,
         NULL::pg_lsn, NULL::pg_lsn, NULL::pg_lsn, x.received, x.replayed,
         NULL::interval, NULL::interval, NULL::interval,
         CASE WHEN x.received IS NULL OR x.replayed OPERATOR(pg_catalog.>=) x.received THEN 0::bigint
              ELSE pg_catalog.pg_wal_lsn_diff(x.received, x.replayed)::bigint END,
         CASE WHEN x.received IS NULL OR x.replayed OPERATOR(pg_catalog.>=) x.received THEN 0::double precision
              ELSE greatest(0, extract(epoch FROM pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-)
                                 coalesce(greatest(x.replay_time, usher.replay_caught_up_internal()),
                                          pg_catalog.pg_postmaster_start_time())))::double precision END,
         pg_catalog.pg_get_wal_replay_pause_state() OPERATOR(pg_catalog.<>) 'not paused',
         x.replay_time
    FROM (SELECT pg_catalog.pg_last_wal_receive_lsn() AS received,
                 pg_catalog.pg_last_wal_replay_lsn() AS replayed,
                 pg_catalog.pg_last_xact_replay_timestamp() AS replay_time) x
    LEFT JOIN pg_catalog.pg_stat_get_wal_receiver() r ON r.pid IS NOT NULL
   WHERE pg_catalog.pg_is_in_recovery()

  UNION ALL
  SELECT 'primary', a.application_name, a.client_addr, NULL, NULL, w.state, w.sync_state,
         w.sent_lsn, w.write_lsn, w.flush_lsn, NULL, w.replay_lsn,
         w.write_lag, w.flush_lag, w.replay_lag,
         pg_catalog.pg_wal_lsn_diff(c.lsn, w.replay_lsn)::bigint,
         CASE WHEN w.replay_lsn OPERATOR(pg_catalog.>=) c.lsn THEN 0::double precision
              ELSE coalesce(extract(epoch FROM w.replay_lag)::double precision, 0) END,
         NULL, NULL
    FROM pg_catalog.pg_stat_get_wal_senders() w
   CROSS JOIN LATERAL pg_catalog.pg_stat_get_activity(w.pid) a
   -- (pg_current_wal_lsn() raises during recovery, and a volatile subquery is computed
   -- before the WHERE below.)
   CROSS JOIN (SELECT CASE WHEN NOT pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_current_wal_lsn() END AS lsn) c
   WHERE NOT pg_catalog.pg_is_in_recovery() AND w.state OPERATOR(pg_catalog.<>) 'backup'

  UNION ALL
  SELECT 'primary', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
         NULL, NULL, NULL, NULL, NULL, NULL, NULL
   WHERE NOT pg_catalog.pg_is_in_recovery()
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_get_wal_senders() w
                      WHERE w.state OPERATOR(pg_catalog.<>) 'backup');
END
$$;

COMMENT ON FUNCTION usher.replication_status() IS
  'This node''s role; on a standby its received and replayed WAL, lag in bytes and seconds, whether replay is paused and the primary it follows; on a primary one row per connected standby';
