-- The C++/PostgreSQL error boundary (extension/guard.hpp): a C++ exception thrown in a
-- function body becomes an ordinary ERROR with the right SQLSTATE, C++ destructors
-- run, the backend survives, and the same session goes on working.
CREATE EXTENSION pg_usher_test;
\set SHOW_CONTEXT never

-- The SQLSTATE, message, detail and hint a statement fails with.
CREATE FUNCTION pg_temp.error_of(statement text,
  OUT code text, OUT message text, OUT detail text, OUT hint text)
LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS code = RETURNED_SQLSTATE, message = MESSAGE_TEXT,
                          detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
END $$;

SELECT usher_test.destructors_run() AS destructors_before;

-- A std::exception: ERROR XX000 carrying what().
SELECT usher_test.throw_cpp_exception('boom from C++');
SELECT * FROM pg_temp.error_of($$SELECT usher_test.throw_cpp_exception('again')$$);
SELECT 1 AS session_still_works;

-- A usher::Error: its SQLSTATE, message, detail and hint.
SELECT * FROM pg_temp.error_of('SELECT usher_test.throw_usher_error(42)');

-- std::bad_alloc: out of memory (53200), not a crash.
DO $$
BEGIN
  PERFORM usher_test.throw_bad_alloc();
EXCEPTION WHEN out_of_memory THEN
  RAISE NOTICE 'caught out_of_memory: %', SQLERRM;
END $$;

-- A PostgreSQL error raised under C++ frames (through pg::call) keeps its SQLSTATE.
DO $$
BEGIN
  PERFORM usher_test.divide_through_cpp(1, 0);
EXCEPTION WHEN division_by_zero THEN
  RAISE NOTICE 'caught division_by_zero: %', SQLERRM;
END $$;
SELECT usher_test.divide_through_cpp(42, 2) AS quotient;

-- Every call above destroyed its C++ objects: five failing calls and one passing.
SELECT usher_test.destructors_run() AS destructors_after;

-- A plain-frame function (USHER_SQL_FUNCTION_PLAIN): a usher::Error of its check keeps
-- its SQLSTATE and message, a PostgreSQL error of its body (plain C frames) keeps its
-- own, and a check that passes hands its value to the body. Each check ran with a C++
-- object alive, and each was destroyed: three more.
SELECT usher_test.plain_divide(4) AS hundred_by_four;
SELECT * FROM pg_temp.error_of('SELECT usher_test.plain_divide(-1)');
SELECT * FROM pg_temp.error_of('SELECT usher_test.plain_divide(0)');
SELECT usher_test.destructors_run() AS destructors_after_plain;

-- Errors inside a transaction roll back to a savepoint like any other ERROR.
BEGIN;
CREATE TEMP TABLE kept (x int);
SAVEPOINT s;
SELECT usher_test.throw_cpp_exception('inside a savepoint');
ROLLBACK TO SAVEPOINT s;
INSERT INTO kept VALUES (1);
SELECT count(*) AS rows_kept FROM kept;
COMMIT;

DROP EXTENSION pg_usher_test;
