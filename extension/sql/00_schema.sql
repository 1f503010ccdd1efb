-- pg_usher install script, built by the Makefile from extension/sql/*.sql in name
-- order: edit those parts, not the built file.
\echo Use "CREATE EXTENSION pg_usher" to load this file. \quit

-- Nothing below may resolve to an object of a schema other roles can create in: CREATE
-- EXTENSION searches the target schema (the first schema of the caller's search_path,
-- e.g. public) and a view binds its functions and operators when it is created. Every
-- object here is schema-qualified, so only pg_catalog is searched. LOCAL: CREATE
-- EXTENSION restores the caller's search_path when the script ends (a plain SET would
-- outlive it). See docs/security.md.
SET LOCAL search_path = pg_catalog, pg_temp;

-- Every object lives in schema usher, created here (not through the control file's
-- `schema`) so that it belongs to the extension and DROP EXTENSION removes it with its
-- grants. Nothing is granted to PUBLIC; monitoring roles get read access through
-- pg_monitor at the end of this file.
CREATE SCHEMA usher;
