-- pg_usher 1.0.0 -> 1.1.0 (ALTER EXTENSION pg_usher UPDATE TO '1.1.0').
-- The result must equal a fresh install of 1.1.0 (built from extension/sql/): every
-- change to an SQL object in extension/sql/ adds its step here, under a heading that
-- names the concern. tests/integration/upgrade.sh compares the two.
\echo Use "ALTER EXTENSION pg_usher UPDATE TO '1.1.0'" to load this file. \quit
