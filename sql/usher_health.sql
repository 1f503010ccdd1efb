-- usher.health(), usher.health_thresholds(), usher.ready(), usher.metrics() and the
-- usher.* threshold settings. Conditions that need a second session are in pgTAP.
CREATE EXTENSION pg_usher;

SELECT "check", unit, warning, critical FROM usher.health_thresholds();
SELECT name, setting, unit, context, min_val, max_val
  FROM pg_settings WHERE name ~ '^usher\..*_(warning|critical)$' ORDER BY name;

-- Every check reports, in a fixed order; on a quiet server all are ok.
SELECT "check", status, threshold FROM usher.health();
SELECT usher.ready();

-- Thresholds are settings: lowering one moves the check.
SET usher.wraparound_warning = 1;
SELECT "check", status, threshold, value >= 1 AS value_reached
  FROM usher.health() WHERE "check" = 'wraparound';
SET usher.wraparound_critical = 1;
SELECT "check", status, threshold FROM usher.health() WHERE "check" = 'wraparound';
SELECT usher.ready();
-- 0 disables a threshold.
SET usher.wraparound_warning = 0;
SET usher.wraparound_critical = 0;
SELECT "check", status, threshold FROM usher.health() WHERE "check" = 'wraparound';
SELECT "check", warning, critical FROM usher.health_thresholds() WHERE "check" = 'wraparound';
RESET usher.wraparound_warning;
RESET usher.wraparound_critical;

-- Time thresholds take units and report seconds.
SET usher.lock_waits_warning = '1min';
SET usher.lock_waits_critical = 90000;  -- milliseconds
SELECT "check", warning, critical FROM usher.health_thresholds() WHERE "check" = 'lock_waits';
RESET usher.lock_waits_warning;
RESET usher.lock_waits_critical;

-- Bad values are refused with the setting's name and range.
SET usher.connection_saturation_warning = 101;
SET usher.connection_saturation_critical = -5;
SET usher.idle_in_transaction_warning = '-1s';
SET usher.idle_in_transaction_warning = 'soon';
SET usher.long_transactions_critical = '5 parsecs';
SET usher.no_such_setting = 1;

-- Ordinary roles cannot change thresholds (a probe must not hide a problem).
CREATE ROLE usher_plain_role;
SET ROLE usher_plain_role;
SET usher.lock_waits_warning = '1h';
RESET ROLE;
DROP ROLE usher_plain_role;

-- metrics(): Prometheus text with HELP and TYPE for every family, label values escaped.
SELECT count(*) FILTER (WHERE line LIKE '# HELP %') AS help_lines,
       count(*) FILTER (WHERE line LIKE '# TYPE % gauge') AS gauge_families
  FROM regexp_split_to_table(usher.metrics(), E'\n') AS line;
SELECT line FROM regexp_split_to_table(usher.metrics(), E'\n') AS line
 WHERE line LIKE 'usher_health_status%' OR line LIKE 'usher_ready%';
SET application_name = 'we"ird\svc/1';
SELECT line ~ '^usher_connections\{service="we\\"ird\\\\svc",' AS escaped
  FROM regexp_split_to_table(usher.metrics(), E'\n') AS line
 WHERE line LIKE 'usher_connections{service="we%';
RESET application_name;
DROP EXTENSION pg_usher;
