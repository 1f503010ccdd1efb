-- pg_usher install script, built by the Makefile from extension/sql/*.sql in name
-- order: edit those parts, not the built file.
\echo Use "CREATE EXTENSION pg_usher" to load this file. \quit

-- Every object lives in schema usher, created here (not through the control file's
-- `schema`) so that it belongs to the extension and DROP EXTENSION removes it with its
-- grants. Nothing is granted to PUBLIC; monitoring roles get read access through
-- pg_monitor at the end of this file.
CREATE SCHEMA usher;
