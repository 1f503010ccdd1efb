-- pg_usher 1.0.0 -> 1.1.0 (ALTER EXTENSION pg_usher UPDATE TO '1.1.0').
-- The result must equal a fresh install of 1.1.0 (built from extension/sql/): every
-- change to an SQL object in extension/sql/ adds its step here, under a heading that
-- names the concern. tests/integration/upgrade.sh compares the two.
\echo Use "ALTER EXTENSION pg_usher UPDATE TO '1.1.0'" to load this file. \quit

-- ---------------------------------------------------------------------------------
-- Helper for the sections below: carrying the grants a DBA made across a re-created
-- object (docs/upgrading.md). An object that must be dropped and created again (a
-- function whose arguments or result columns change, a view over it) loses the
-- privileges granted on it since CREATE EXTENSION. Create the new object beside the
-- old one (rename the old one first when the name stays), give the new one what the
-- install script gives it (REVOKE ... FROM PUBLIC, GRANT ... TO pg_monitor), then
--   SELECT pg_temp.usher_copy_grants('function', 'usher.f(text)', 'usher.f(text, text)');
--   SELECT pg_temp.usher_copy_grants('view', 'usher.v_1_0_0', 'usher.v');
-- and drop the old one. It grants on the new object every privilege of the old one
-- that the extension did not give (its ACL minus pg_init_privs), by the same grantor,
-- with the same grant option, column privileges too; and it leaves the new object's
-- pg_init_privs as the extension's own grants made it, so that pg_dump still dumps the
-- DBA's grants. A temporary function, not a member of the extension: it disappears
-- with the session. (An update through several versions runs their scripts in one
-- session, each of which defines it again.)
-- ---------------------------------------------------------------------------------
DROP FUNCTION IF EXISTS pg_temp.usher_copy_grants(text, text, text);
CREATE FUNCTION pg_temp.usher_copy_grants(kind text, source text, target text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  catalog oid;
  keyword text;
  src oid;
  dst oid;
  dst_name text;
  dst_init_before jsonb;
  updater name := current_user;
  g record;
BEGIN
  IF kind = 'function' THEN
    catalog := 'pg_catalog.pg_proc'::regclass; keyword := 'FUNCTION';
    src := source::regprocedure; dst := target::regprocedure; dst_name := dst::regprocedure::text;
  ELSIF kind IN ('view', 'table') THEN
    catalog := 'pg_catalog.pg_class'::regclass; keyword := 'TABLE';
    src := source::regclass; dst := target::regclass; dst_name := dst::regclass::text;
  ELSE
    RAISE EXCEPTION 'usher_copy_grants: kind must be function, view or table, not "%"', kind;
  END IF;
  SELECT coalesce(jsonb_agg(to_jsonb(ip)), '[]') INTO dst_init_before FROM pg_init_privs ip
   WHERE ip.objoid = dst AND ip.classoid = catalog;
  -- (grantee, privilege, grantable, grantor, column) of the source, less its initial privileges;
  -- grants by the owner first, so that a grant option exists before it is used
  FOR g IN
    WITH acl(attnum, attname, items) AS (
      SELECT 0::int2, NULL::name, proacl FROM pg_proc WHERE catalog = 'pg_catalog.pg_proc'::regclass AND oid = src
      UNION ALL
      SELECT 0::int2, NULL::name, relacl FROM pg_class WHERE catalog = 'pg_catalog.pg_class'::regclass AND oid = src
      UNION ALL
      SELECT attnum, attname, attacl FROM pg_attribute
       WHERE catalog = 'pg_catalog.pg_class'::regclass AND attrelid = src AND attnum > 0 AND NOT attisdropped
    ),
    granted AS (
      SELECT acl.attname, a.grantor, a.grantee, a.privilege_type, a.is_grantable
        FROM acl, aclexplode(acl.items) a
      EXCEPT
      SELECT acl.attname, a.grantor, a.grantee, a.privilege_type, a.is_grantable
        FROM acl JOIN pg_init_privs ip ON ip.objoid = src AND ip.classoid = catalog AND ip.objsubid = acl.attnum,
             aclexplode(ip.initprivs) a
    )
    SELECT gr.*, grantor.rolname AS grantor_name,
           CASE WHEN gr.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(grantee.rolname) END AS grantee_name
      FROM granted gr JOIN pg_roles grantor ON grantor.oid = gr.grantor
      LEFT JOIN pg_roles grantee ON grantee.oid = gr.grantee
     ORDER BY gr.grantor = (SELECT CASE WHEN catalog = 'pg_catalog.pg_proc'::regclass
                                       THEN (SELECT proowner FROM pg_proc WHERE oid = src)
                                       ELSE (SELECT relowner FROM pg_class WHERE oid = src) END) DESC,
              gr.attname NULLS FIRST, gr.privilege_type, gr.grantee
  LOOP
    IF g.attname IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = dst AND attname = g.attname
                                                                          AND attnum > 0 AND NOT attisdropped) THEN
      CONTINUE;  -- a column the new relation no longer has
    END IF;
    EXECUTE format('SET LOCAL ROLE %I', g.grantor_name);
    EXECUTE format('GRANT %s%s ON %s %s TO %s%s', g.privilege_type,
                   coalesce(' (' || quote_ident(g.attname) || ')', ''), keyword, dst_name, g.grantee_name,
                   CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    EXECUTE format('SET LOCAL ROLE %I', updater);
  END LOOP;
  -- Granted inside the extension's script, these were recorded as the extension's
  -- initial privileges: give them back to the DBA.
  DELETE FROM pg_init_privs WHERE objoid = dst AND classoid = catalog;
  INSERT INTO pg_init_privs SELECT * FROM jsonb_populate_recordset(NULL::pg_init_privs, dst_init_before);
END
$$;
ALTER EXTENSION pg_usher DROP FUNCTION pg_temp.usher_copy_grants(text, text, text);

