-- Least privilege: nothing for PUBLIC, read access for pg_monitor. The registry is
-- changed only by the extension's owner and the roles it grants EXECUTE on
-- set_service / drop_service / set_role_service (SECURITY DEFINER, search_path pinned);
-- checkout / checkin are for the roles client pools log in as, granted by the owner.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA usher FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA usher FROM PUBLIC;
GRANT USAGE ON SCHEMA usher TO pg_monitor;
GRANT SELECT ON usher.backends, usher.connections, usher.capacity, usher.service, usher.role_service,
  usher.published_services, usher.service_status, usher.leases TO pg_monitor;
GRANT EXECUTE ON FUNCTION usher.backends_internal(), usher.health_sessions_internal(),
  usher.health_thresholds(), usher.health(),
  usher.ready(), usher.metrics(), usher.published_services_internal(), usher.service_status_internal(),
  usher.replay_caught_up_internal(), usher.replication_status()
  TO pg_monitor;
