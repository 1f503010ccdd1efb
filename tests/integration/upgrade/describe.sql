-- Describes every object of extension pg_usher in the current database as text: one
-- line per fact, each prefixed by the object it belongs to, in a stable order and with
-- no OIDs, so that the descriptions of two databases can be diffed
-- (tests/integration/upgrade.sh: a database updated from 1.0.0 against a fresh install).
--
-- Covered: the extension row (version, schema, required extensions, configuration
-- tables and their dump conditions); the list of member objects (pg_depend deptype
-- 'e'); for each member schema (with its default privileges), function, relation
-- (table, view, sequence), type, cast and operator: its definition, settings, owner,
-- privileges and comment; a relation's columns (order, type, NOT NULL, default,
-- collation, column privileges and comments), view query, constraints, indexes,
-- triggers, rules, policies and storage options; the initial privileges pg_dump starts
-- from (pg_init_privs); objects in the extension's schemas that are not members of it.
-- Privileges are listed sorted (their order is not meaningful).
WITH ext AS (
  SELECT e.* FROM pg_catalog.pg_extension e WHERE e.extname = 'pg_usher'
),
members AS (
  SELECT d.classid, d.objid, d.objsubid,
         pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) AS obj
    FROM pg_catalog.pg_depend d, ext
   WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
-- The schemas the extension owns (extension pg_usher's line names the one it was
-- created in, whose other objects are the user's).
schemas AS (
  SELECT objid AS oid FROM members WHERE classid = 'pg_catalog.pg_namespace'::regclass
),
lines(obj, k1, k2, line) AS (
  -- the extension itself
  SELECT 'extension pg_usher', 0, 0, format('version %s, relocatable %s, schema %s, owner %s',
         extversion, extrelocatable, extnamespace::regnamespace, extowner::regrole)
    FROM ext
  UNION ALL
  SELECT 'extension pg_usher', 1, 0, format('configuration table %s dumped %s', c.tbl, coalesce(nullif(c.cond, ''), '(all rows)'))
    FROM ext, LATERAL unnest(ext.extconfig::regclass[], coalesce(ext.extcondition, '{}')) AS c(tbl, cond)
  UNION ALL
  SELECT 'extension pg_usher', 1, 1, 'requires extension ' || r.extname
    FROM ext JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_extension'::regclass AND d.objid = ext.oid
                                        AND d.refclassid = 'pg_catalog.pg_extension'::regclass
    JOIN pg_catalog.pg_extension r ON r.oid = d.refobjid
  UNION ALL
  -- every member, by its address
  SELECT 'extension pg_usher', 2, 0, 'member ' || obj FROM members
  UNION ALL
  -- schemas
  SELECT 'schema ' || n.nspname, 0, 0,
         format('owner %s, privileges %s, comment %s', n.nspowner::regrole,
                coalesce((SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(n.nspacl) a), '(default)'),
                coalesce(pg_catalog.obj_description(n.oid, 'pg_namespace'), '(none)'))
    FROM pg_catalog.pg_namespace n WHERE n.oid IN (SELECT oid FROM schemas)
  UNION ALL
  SELECT 'schema ' || n.nspname, 1, 0,
         format('default privileges for %s created by %s: %s', da.defaclobjtype, da.defaclrole::regrole,
                (SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(da.defaclacl) a))
    FROM pg_catalog.pg_default_acl da JOIN pg_catalog.pg_namespace n ON n.oid = da.defaclnamespace
   WHERE n.oid IN (SELECT oid FROM schemas)
  UNION ALL
  -- functions: attributes, one line each
  SELECT m.obj, 0, f.ord, f.line
    FROM members m JOIN pg_catalog.pg_proc p ON m.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = m.objid
    JOIN pg_catalog.pg_language l ON l.oid = p.prolang,
    LATERAL (VALUES
      (1, 'kind ' || p.prokind::text),
      (2, 'arguments ' || pg_catalog.pg_get_function_arguments(p.oid)),
      (3, 'returns ' || coalesce(pg_catalog.pg_get_function_result(p.oid), '(none)')),
      (4, 'language ' || l.lanname),
      (5, 'security ' || CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END),
      (6, 'config ' || coalesce(array_to_string(p.proconfig, '; '), '(none)')),
      (7, format('volatility %s, strict %s, parallel %s, leakproof %s, cost %s, rows %s, support %s',
                 p.provolatile, p.proisstrict, p.proparallel, p.proleakproof, p.procost, p.prorows, p.prosupport)),
      (8, 'owner ' || p.proowner::regrole),
      (9, 'privileges ' || coalesce((SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(p.proacl) a), '(default)')),
      (10, 'comment ' || coalesce(pg_catalog.obj_description(p.oid, 'pg_proc'), '(none)')),
      (11, 'object file ' || coalesce(p.probin, '(none)'))
    ) AS f(ord, line)
  UNION ALL
  -- functions: the body (or C symbol), line by line
  SELECT m.obj, 1, b.n::int, format('body %s: %s', b.n, b.text)
    FROM members m JOIN pg_catalog.pg_proc p ON m.classid = 'pg_catalog.pg_proc'::regclass AND p.oid = m.objid,
    LATERAL unnest(string_to_array(p.prosrc, E'\n')) WITH ORDINALITY AS b(text, n)
  UNION ALL
  -- relations: kind and options
  SELECT m.obj, 0, r.ord, r.line
    FROM members m JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::regclass AND c.oid = m.objid,
    LATERAL (VALUES
      (1, format('kind %s, persistence %s, row security %s (forced %s), replica identity %s, options %s',
                 c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
                 coalesce(array_to_string(c.reloptions, ', '), '(none)'))),
      (2, 'owner ' || c.relowner::regrole),
      (3, 'privileges ' || coalesce((SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(c.relacl) a), '(default)')),
      (4, 'comment ' || coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '(none)')),
      (5, 'row type ' || coalesce(c.reltype::regtype::text, '(none)'))
    ) AS r(ord, line)
  UNION ALL
  -- relations: columns in order (dropped columns left out)
  SELECT m.obj, 1, (row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::int,
         format('column %s: %s %s, not null %s, default %s, identity %s, generated %s, collation %s, privileges %s, comment %s',
                row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum), a.attname,
                pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
                coalesce(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), '(none)'),
                coalesce(nullif(a.attidentity::text, ''), '-'), coalesce(nullif(a.attgenerated::text, ''), '-'),
                CASE WHEN a.attcollation <> t.typcollation THEN (SELECT collname FROM pg_catalog.pg_collation WHERE oid = a.attcollation) ELSE '(type default)' END,
                coalesce((SELECT string_agg(x::text, ' ' ORDER BY x::text) FROM unnest(a.attacl) x), '(none)'),
                coalesce(pg_catalog.col_description(c.oid, a.attnum), '(none)'))
    FROM members m JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::regclass AND c.oid = m.objid
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
    LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
  UNION ALL
  -- views: the query, line by line
  SELECT m.obj, 2, v.n::int, format('query %s: %s', v.n, v.text)
    FROM members m JOIN pg_catalog.pg_class c ON m.classid = 'pg_catalog.pg_class'::regclass AND c.oid = m.objid
                                              AND c.relkind IN ('v', 'm'),
    LATERAL unnest(string_to_array(pg_catalog.pg_get_viewdef(c.oid), E'\n')) WITH ORDINALITY AS v(text, n)
  UNION ALL
  -- tables: constraints, indexes, triggers, rules, policies
  SELECT m.obj, 3, 0, format('constraint %s: %s%s', co.conname, pg_catalog.pg_get_constraintdef(co.oid),
                             coalesce(', comment ' || pg_catalog.obj_description(co.oid, 'pg_constraint'), ''))
    FROM members m JOIN pg_catalog.pg_constraint co ON m.classid = 'pg_catalog.pg_class'::regclass AND co.conrelid = m.objid
  UNION ALL
  SELECT m.obj, 4, 0, format('index %s, comment %s', pg_catalog.pg_get_indexdef(i.indexrelid),
                             coalesce(pg_catalog.obj_description(i.indexrelid, 'pg_class'), '(none)'))
    FROM members m JOIN pg_catalog.pg_index i ON m.classid = 'pg_catalog.pg_class'::regclass AND i.indrelid = m.objid
  UNION ALL
  SELECT m.obj, 5, 0, format('trigger %s, enabled %s, comment %s', pg_catalog.pg_get_triggerdef(tg.oid), tg.tgenabled,
                             coalesce(pg_catalog.obj_description(tg.oid, 'pg_trigger'), '(none)'))
    FROM members m JOIN pg_catalog.pg_trigger tg ON m.classid = 'pg_catalog.pg_class'::regclass AND tg.tgrelid = m.objid
   WHERE NOT tg.tgisinternal
  UNION ALL
  SELECT m.obj, 6, 0, format('rule %s, enabled %s', pg_catalog.pg_get_ruledef(ru.oid), ru.ev_enabled)
    FROM members m JOIN pg_catalog.pg_rewrite ru ON m.classid = 'pg_catalog.pg_class'::regclass AND ru.ev_class = m.objid
   WHERE ru.rulename <> '_RETURN'
  UNION ALL
  SELECT m.obj, 7, 0, format('policy %s: %s for %s to %s using %s check %s', po.polname,
                             CASE WHEN po.polpermissive THEN 'permissive' ELSE 'restrictive' END, po.polcmd,
                             (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END, ',' ORDER BY 1) FROM unnest(po.polroles) r),
                             pg_catalog.pg_get_expr(po.polqual, po.polrelid), pg_catalog.pg_get_expr(po.polwithcheck, po.polrelid))
    FROM members m JOIN pg_catalog.pg_policy po ON m.classid = 'pg_catalog.pg_class'::regclass AND po.polrelid = m.objid
  UNION ALL
  -- sequences
  SELECT m.obj, 8, 0, format('sequence %s start %s increment %s min %s max %s cache %s cycle %s',
                             s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle)
    FROM members m JOIN pg_catalog.pg_sequence s ON m.classid = 'pg_catalog.pg_class'::regclass AND s.seqrelid = m.objid
  UNION ALL
  -- types of their own (not a relation's row type)
  SELECT m.obj, 0, 0, format('type %s, kind %s, base %s, not null %s, default %s, owner %s, privileges %s, comment %s',
                             t.oid::regtype, t.typtype, nullif(t.typbasetype, 0)::regtype, t.typnotnull,
                             coalesce(t.typdefault, '(none)'), t.typowner::regrole,
                             coalesce((SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(t.typacl) a), '(default)'),
                             coalesce(pg_catalog.obj_description(t.oid, 'pg_type'), '(none)'))
    FROM members m JOIN pg_catalog.pg_type t ON m.classid = 'pg_catalog.pg_type'::regclass AND t.oid = m.objid
  UNION ALL
  SELECT m.obj, 1, e.enumsortorder::int, 'label ' || e.enumlabel
    FROM members m JOIN pg_catalog.pg_enum e ON m.classid = 'pg_catalog.pg_type'::regclass AND e.enumtypid = m.objid
  UNION ALL
  SELECT m.obj, 2, a.attnum, format('attribute %s %s', a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod))
    FROM members m JOIN pg_catalog.pg_type t ON m.classid = 'pg_catalog.pg_type'::regclass AND t.oid = m.objid
    JOIN pg_catalog.pg_attribute a ON a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT m.obj, 3, 0, format('constraint %s: %s', co.conname, pg_catalog.pg_get_constraintdef(co.oid))
    FROM members m JOIN pg_catalog.pg_constraint co ON m.classid = 'pg_catalog.pg_type'::regclass AND co.contypid = m.objid
  UNION ALL
  -- casts and operators
  SELECT m.obj, 0, 0, format('function %s, context %s, method %s', nullif(ca.castfunc, 0)::regprocedure, ca.castcontext, ca.castmethod)
    FROM members m JOIN pg_catalog.pg_cast ca ON m.classid = 'pg_catalog.pg_cast'::regclass AND ca.oid = m.objid
  UNION ALL
  SELECT m.obj, 0, 0, format('function %s, commutator %s, negator %s, restrict %s, join %s, merges %s, hashes %s, comment %s',
                             o.oprcode::regprocedure, nullif(o.oprcom, 0)::regoperator, nullif(o.oprnegate, 0)::regoperator,
                             o.oprrest, o.oprjoin, o.oprcanmerge, o.oprcanhash,
                             coalesce(pg_catalog.obj_description(o.oid, 'pg_operator'), '(none)'))
    FROM members m JOIN pg_catalog.pg_operator o ON m.classid = 'pg_catalog.pg_operator'::regclass AND o.oid = m.objid
  UNION ALL
  -- the privileges pg_dump takes as the extension's own (it dumps only changes to them)
  SELECT pg_catalog.pg_describe_object(ip.classoid, ip.objoid, 0), 9, ip.objsubid,
         format('initial privileges%s (%s): %s',
                CASE WHEN ip.objsubid > 0 THEN ' of column ' || (SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = ip.objoid AND attnum = ip.objsubid) ELSE '' END,
                ip.privtype, (SELECT string_agg(a::text, ' ' ORDER BY a::text) FROM unnest(ip.initprivs) a))
    FROM pg_catalog.pg_init_privs ip
   WHERE (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM members)
  UNION ALL
  -- anything in the extension's schemas that is not a member of it (nor a member's part)
  SELECT 'not a member of the extension', 0, 0, x.obj
    FROM (SELECT pg_catalog.pg_describe_object('pg_catalog.pg_class'::regclass, c.oid, 0) AS obj
            FROM pg_catalog.pg_class c
           WHERE c.relnamespace IN (SELECT oid FROM schemas)
             AND c.relkind NOT IN ('i', 'I', 't')
             AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = c.oid)
          UNION ALL
          SELECT pg_catalog.pg_describe_object('pg_catalog.pg_proc'::regclass, p.oid, 0)
            FROM pg_catalog.pg_proc p
           WHERE p.pronamespace IN (SELECT oid FROM schemas)
             AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid)
          UNION ALL
          SELECT pg_catalog.pg_describe_object('pg_catalog.pg_type'::regclass, t.oid, 0)
            FROM pg_catalog.pg_type t
           WHERE t.typnamespace IN (SELECT oid FROM schemas) AND t.typrelid = 0 AND t.typelem = 0
             AND NOT EXISTS (SELECT 1 FROM members m WHERE m.classid = 'pg_catalog.pg_type'::regclass AND m.objid = t.oid)
         ) x
)
SELECT obj || ' | ' || line FROM lines ORDER BY obj, k1, k2, line;
