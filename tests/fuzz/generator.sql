-- The fuzz suite's call generator (tests/suites/fuzz.sh). It reads pg_proc for every
-- function of schema usher, so a function added, or an argument added to one, is fuzzed
-- without touching this file. For each argument type it has a set of hostile values;
-- each function is called with all NULLs, with its defaults, with every value of every
-- argument in turn (the others at a harmless base value), and with random combinations
-- (seeded: setseed), and each call is wrapped in every transaction context of
-- fuzz.contexts. fuzz.script() returns the statements as text, one per row, for psql.
CREATE SCHEMA fuzz;

-- Values for one argument, as SQL expressions of its type. Names that pg_usher treats
-- as services, semaphores, roles or lease holders get the names the suite created, the
-- built-in ones and hostile spellings. Unknown types get NULL (and their base value).
CREATE FUNCTION fuzz.values_for(t regtype) RETURNS SETOF text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog AS $$
DECLARE
  elem regtype;
BEGIN
  RETURN NEXT 'NULL';
  CASE t
  WHEN 'smallint'::regtype THEN
    RETURN QUERY VALUES ('0'), ('1'), ('-1'), ('32767'), ('-32768');
  WHEN 'integer'::regtype THEN
    RETURN QUERY VALUES ('0'), ('1'), ('-1'), ('2'), ('1500000000'), ('2147483647'), ('-2147483648');
  WHEN 'bigint'::regtype THEN
    RETURN QUERY VALUES ('0'), ('-1'), ('2147483648'), ('9223372036854775807'), ('-9223372036854775808');
  WHEN 'oid'::regtype, 'regrole'::regtype, 'regclass'::regtype, 'regprocedure'::regtype THEN
    RETURN QUERY VALUES ('0'), ('4294967295'), ('10');
  WHEN 'real'::regtype, 'double precision'::regtype THEN
    RETURN QUERY VALUES ('0'), ('-0'), ('''NaN'''), ('''Infinity'''), ('''-Infinity'''), ('1e308'), ('1e-308');
  WHEN 'numeric'::regtype THEN
    RETURN QUERY VALUES ('0'), ('''NaN'''), ('''Infinity'''), ('''-Infinity'''), ('1e1000'), ('-1e1000');
  WHEN 'boolean'::regtype THEN
    RETURN QUERY VALUES ('true'), ('false');
  WHEN 'text'::regtype, 'name'::regtype, 'character varying'::regtype, 'cstring'::regtype THEN
    RETURN QUERY VALUES
      (''''''), (''' '''), ('''fuzzgate'''), ('''fuzzsem'''), ('''default'''), ('''postgres'''),
      ('''pg_monitor'''), ('''fuzz_plain'''), ('''transaction'''), ('''session'''), ('''statement'''),
      ('''a/b'''), ('''Ünïcødé'''), ($q$E'quote''"\\'$q$), ($q$E'tab\tnew\nline'$q$), ('''NULL'''),
      ('repeat(''n'', 63)'), ('repeat(''n'', 64)'), ('repeat(''é'', 40)'), ('repeat(''x'', 10000)');
  WHEN 'interval'::regtype THEN
    RETURN QUERY VALUES
      ('''0'''), ('''1ms'''), ('''-1s'''), ('''100ms'''), ('''1 day'''), ('''1 day 1 microsecond'''),
      ('''1 month'''), ('''1000 years'''), ('''178000000 years'''), ('''-178000000 years'''),
      ('''2147483647 days 2147483647 months'''), ('''infinity'''), ('''garbage''');
  WHEN 'jsonb'::regtype, 'json'::regtype THEN
    RETURN QUERY VALUES
      ('''{}'''), ('''[]'''), ('''null'''), ('''1'''), ('''"x"'''), ('''{'''), ('''{"a":}'''),
      ('''{"default": 1}'''), ('''{"fuzzgate": 100000}'''), ('''{"fuzzgate": 100001}'''),
      ('''{"default": 1.5}'''), ('''{"default": 1e1000}'''), ('''{"default": -1}'''),
      ('''{"default": "2"}'''), ('''{"default": null}'''), ('''{"": 1}'''), ('''{"nosuch": 1}'''),
      ('repeat(''['', 5000) || repeat('']'', 5000)'),
      ('repeat(''{"a":'', 2000) || ''1'' || repeat(''}'', 2000)'),
      ('(SELECT jsonb_object_agg(''s'' || g, g)::text FROM generate_series(1, 10000) g)');
  ELSE
    SELECT typelem::regtype INTO elem FROM pg_type WHERE oid = t AND typcategory = 'A';
    IF elem IS NOT NULL THEN
      RETURN QUERY VALUES ('''{}'''), ('ARRAY[NULL]'), ('''{NULL,NULL}''');
      RETURN QUERY SELECT 'ARRAY[' || v || ']' FROM fuzz.values_for(elem) v WHERE v <> 'NULL' LIMIT 3;
    END IF;
  END CASE;
END
$$;

-- A harmless value of a type, for the arguments not being varied.
CREATE FUNCTION fuzz.base_for(t regtype) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
  SELECT CASE t
    WHEN 'integer'::regtype THEN '1' WHEN 'smallint'::regtype THEN '1' WHEN 'bigint'::regtype THEN '1'
    WHEN 'boolean'::regtype THEN 'true'
    WHEN 'text'::regtype THEN '''fuzzgate''' WHEN 'name'::regtype THEN '''fuzz_plain'''
    WHEN 'interval'::regtype THEN '''100ms'''
    WHEN 'jsonb'::regtype THEN '''{}''' WHEN 'json'::regtype THEN '''{}'''
    WHEN 'double precision'::regtype THEN '1' WHEN 'real'::regtype THEN '1' WHEN 'numeric'::regtype THEN '1'
    ELSE 'NULL' END
$$;

-- One typed argument: (expression)::type.
CREATE FUNCTION fuzz.arg(v text, t regtype) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
  SELECT '(' || v || ')::' || format_type(t, NULL)
$$;

-- The calls of every function of schema usher: fn is the function, call its call
-- expression (usher.f(args)).
CREATE FUNCTION fuzz.calls(random_per_function integer DEFAULT 12, seed double precision DEFAULT 0.42)
RETURNS TABLE (fn regprocedure, call text)
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
  f record;
  types regtype[];
  n integer;
  i integer;
  k integer;
  args text[];
  bases text[];
  v text;
  candidate text;
  works boolean;
BEGIN
  FOR f IN SELECT p.oid, p.oid::regprocedure AS sig, quote_ident(n.nspname) || '.' || quote_ident(p.proname) AS qname,
                  p.pronargs, p.pronargdefaults, p.proargtypes::regtype[] AS argtypes
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'usher' AND p.prokind IN ('f', 'p')
            ORDER BY p.oid::regprocedure::text LOOP
    types := ARRAY(SELECT unnest(f.argtypes));  -- oidvector counts from 0
    n := f.pronargs;
    fn := f.sig;
    -- The harmless value of each argument: its default, else its type's base value;
    -- the first text argument without a default gets the first of the suite's names
    -- for which the call with every argument harmless succeeds (tried in a
    -- subtransaction that is rolled back), so that varying one argument reaches past
    -- the name lookup: acquire('fuzzsem', 1, '5s', 'transaction').
    bases := ARRAY(SELECT coalesce(nullif(pg_get_function_arg_default(f.oid, j), 'NULL::' || format_type(types[j], NULL)),
                                   fuzz.base_for(types[j]))
                     FROM generate_series(1, n) j ORDER BY j);
    i := array_position(ARRAY(SELECT types[j] = 'text'::regtype AND pg_get_function_arg_default(f.oid, j) IS NULL
                                FROM generate_series(1, n) j ORDER BY j), true);
    IF i IS NOT NULL THEN
      works := false;
      FOREACH candidate IN ARRAY ARRAY['''fuzzgate''', '''fuzzsem''', '''fuzz_plain'''] LOOP
        bases[i] := candidate;
        BEGIN
          SET LOCAL statement_timeout = '2s';
          EXECUTE format('SELECT %s(%s)', f.qname,
                         (SELECT string_agg(fuzz.arg(bases[j], types[j]), ', ' ORDER BY j) FROM generate_series(1, n) j));
          RAISE EXCEPTION USING ERRCODE = 'FZ002';
        EXCEPTION WHEN SQLSTATE 'FZ002' THEN works := true;
                  WHEN OTHERS THEN works := false;
        END;
        EXIT WHEN works;
      END LOOP;
      IF NOT works THEN bases[i] := fuzz.base_for('text'); END IF;
    END IF;
    PERFORM setseed(seed);
    -- no arguments or only the required ones (the others at their defaults)
    IF n - f.pronargdefaults >= 0 THEN
      SELECT coalesce(string_agg(fuzz.arg(bases[j], types[j]), ', ' ORDER BY j), '')
        INTO v FROM generate_series(1, n - f.pronargdefaults) j;
      call := f.qname || '(' || v || ')';
      RETURN NEXT;
    END IF;
    CONTINUE WHEN n = 0;
    -- all NULL
    SELECT string_agg(fuzz.arg('NULL', types[j]), ', ' ORDER BY j) INTO v FROM generate_series(1, n) j;
    call := f.qname || '(' || v || ')';
    RETURN NEXT;
    -- each value of each argument, the others at their base value
    FOR i IN 1 .. n LOOP
      FOR v IN SELECT x FROM fuzz.values_for(types[i]) x WHERE x <> 'NULL' LOOP
        SELECT string_agg(fuzz.arg(CASE WHEN j = i THEN v ELSE bases[j] END, types[j]), ', ' ORDER BY j)
          INTO call FROM generate_series(1, n) j;
        call := f.qname || '(' || call || ')';
        RETURN NEXT;
      END LOOP;
    END LOOP;
    -- random combinations
    FOR k IN 1 .. random_per_function LOOP
      args := '{}';
      FOR i IN 1 .. n LOOP
        SELECT x INTO v FROM fuzz.values_for(types[i]) x ORDER BY random() LIMIT 1;
        args := args || fuzz.arg(coalesce(v, 'NULL'), types[i]);
      END LOOP;
      call := f.qname || '(' || array_to_string(args, ', ') || ')';
      RETURN NEXT;
    END LOOP;
  END LOOP;
END
$$;

-- The transaction contexts a call runs in; %s is the call. Errors caught by a PL/pgSQL
-- exception block never reach the server log, so the block reports them as a WARNING
-- "fuzz caught <SQLSTATE>", which the suite reads there like the ERROR lines.
CREATE TABLE fuzz.contexts (name text PRIMARY KEY, template text NOT NULL);
INSERT INTO fuzz.contexts VALUES
  ('plain', 'SELECT %s;'),
  ('from', 'SELECT * FROM %s;'),
  ('aborted transaction',
   E'BEGIN;\nSELECT %s;\nSELECT 1/0;\nSELECT %s;\nROLLBACK;'),
  ('savepoint rolled back',
   E'BEGIN;\nSAVEPOINT fuzz;\nSELECT * FROM %s;\nROLLBACK TO SAVEPOINT fuzz;\nSAVEPOINT fuzz2;\nSELECT %s;\nRELEASE SAVEPOINT fuzz2;\nCOMMIT;'),
  ('exception block',
   E'DO $fuzz$ BEGIN\n  PERFORM %s;\n  RAISE EXCEPTION USING ERRCODE = ''FZ001'';\n'
   'EXCEPTION WHEN OTHERS THEN\n  IF SQLSTATE <> ''FZ001'' THEN RAISE WARNING ''fuzz caught %%: %%'', SQLSTATE, left(SQLERRM, 200); END IF;\nEND $fuzz$;'),
  ('cursor',
   E'BEGIN;\nDECLARE fuzz_c CURSOR FOR SELECT * FROM %s;\nFETCH 1 FROM fuzz_c;\nFETCH ALL FROM fuzz_c;\nCLOSE fuzz_c;\nCOMMIT;'),
  ('cursor with hold',
   E'BEGIN;\nDECLARE fuzz_h CURSOR WITH HOLD FOR SELECT * FROM %s;\nCOMMIT;\nFETCH ALL FROM fuzz_h;\nCLOSE fuzz_h;'),
  ('prepared transaction',
   E'BEGIN;\nSELECT * FROM %s;\nPREPARE TRANSACTION ''fuzz'';\nROLLBACK PREPARED ''fuzz'';'),
  ('commit inside DO',
   E'DO $fuzz$ BEGIN\n  PERFORM %s;\n  COMMIT;\n  PERFORM %s;\n  ROLLBACK;\nEND $fuzz$;');

-- The whole script: every call in every context. A comment line before each names the
-- call, so a finding in psql's output points at its statement.
CREATE FUNCTION fuzz.script(random_per_function integer DEFAULT 12, seed double precision DEFAULT 0.42)
RETURNS SETOF text
LANGUAGE sql SET search_path = pg_catalog AS $$
  SELECT format(E'\\echo fuzz: %s / %s\n', c.fn, x.name)
         || replace(replace(x.template, '%s', c.call), '%%', '%')
    FROM fuzz.calls(random_per_function, seed) c CROSS JOIN fuzz.contexts x
$$;
