\echo Use "CREATE EXTENSION pg_usher_test" to load this file. \quit

CREATE FUNCTION usher_test.throw_cpp_exception(message text) RETURNS void
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_test_throw_cpp_exception';

CREATE FUNCTION usher_test.throw_usher_error(value integer) RETURNS void
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_test_throw_usher_error';

CREATE FUNCTION usher_test.throw_bad_alloc() RETURNS void
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_test_throw_bad_alloc';

CREATE FUNCTION usher_test.divide_through_cpp(dividend integer, divisor integer) RETURNS integer
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_test_divide_through_cpp';

CREATE FUNCTION usher_test.destructors_run() RETURNS integer
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_test_destructors_run';

CREATE FUNCTION usher_test.plain_divide(divisor integer) RETURNS integer
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_test_plain_divide';

-- The backend ends at this transaction's COMMIT: 'after_answer' (COMMIT's answer,
-- then FATAL 57P01), 'before_answer' (committed, no answer) or 'before_commit' (FATAL,
-- rolled back). Client tests of the commit
-- outcome (tests/client/cluster_test.cpp, ClusterCommit*).
CREATE FUNCTION usher_test.die_at_commit(mode text) RETURNS void
LANGUAGE C STRICT AS 'MODULE_PATHNAME', 'usher_test_die_at_commit';
