// Prepared statements and the automatic statement cache against the real server (and
// through a real PgBouncer 1.18 in transaction mode when USHER_TEST_PGBOUNCER names one:
// tests/suites/client.sh starts it), and streaming a result row by row.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <malloc.h>

#include <unistd.h>

#include <cstdlib>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

// Statements prepared in the session, counted outside the cache (native(): not exec()).
long server_statements(Connection& conn) {
  PGresult* r = PQexec(conn.native(), "SELECT count(*) FROM pg_catalog.pg_prepared_statements");
  long n = PQresultStatus(r) == PGRES_TUPLES_OK ? std::atol(PQgetvalue(r, 0, 0)) : -1;
  PQclear(r);
  return n;
}

using PreparedTest = ConnectionFixture;
using StreamTest = ConnectionFixture;

class StatementCacheTest : public ConnectionFixture {
 protected:
  void SetUp() override { conn.set_statement_cache({StatementCaching::automatic, 2}); }
};

TEST_F(StatementCacheTest, PreparesOnceThenBindsAndKeepsTheLeastRecentlyUsed) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(conn.exec("SELECT $1::int + 1", i).scalar<int>(), i + 1);
  auto s = conn.statement_cache_stats();
  EXPECT_EQ(s.misses, 1u);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(server_statements(conn), 1);
  // The same text with another parameter type is another statement.
  EXPECT_EQ(conn.exec("SELECT $1::int + 1", std::int64_t{5}).scalar<int>(), 6);
  EXPECT_EQ(conn.statement_cache_stats().misses, 2u);
  // Capacity 2: A (int) used last, so the int8 one goes when a third comes.
  conn.exec("SELECT $1::int + 1", 7);
  conn.exec("SELECT 'c'");
  s = conn.statement_cache_stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.cached, 2u);
  conn.exec("SELECT $1::int + 1", 8);
  EXPECT_EQ(conn.statement_cache_stats().hits, s.hits + 1);
  conn.exec("SELECT 'd'");  // a miss: the int8 one is deallocated first, 'c' evicted
  EXPECT_EQ(conn.statement_cache_stats().evictions, 2u);
  EXPECT_EQ(server_statements(conn), 3);  // int, 'd', and 'c' until the next miss
  // Statements that are not queries are never prepared.
  conn.exec("SET application_name = 'x'");
  conn.exec("BEGIN");
  conn.exec("COMMIT");
  EXPECT_EQ(conn.statement_cache_stats().misses, 4u);
  // A statement that cannot be prepared throws and leaves nothing behind.
  EXPECT_THROW(conn.exec("SELECT * FROM no_such_table"), DatabaseError);
  EXPECT_EQ(conn.statement_cache_stats().cached, 2u);
}

TEST_F(StatementCacheTest, ReparesAfterAlterTableChangesTheResultType) {
  conn.exec("CREATE TEMP TABLE cache_alter (id int PRIMARY KEY, v int)");
  conn.exec("INSERT INTO cache_alter VALUES (1, 10)");
  const char* sql = "SELECT * FROM cache_alter WHERE id = $1";
  EXPECT_EQ(conn.exec(sql, 1).columns(), 2u);
  EXPECT_EQ(conn.exec(sql, 1).columns(), 2u);
  conn.exec("ALTER TABLE cache_alter ADD COLUMN note text DEFAULT 'n'");
  auto r = conn.exec(sql, 1);  // 0A000 cached plan must not change result type, then again
  EXPECT_EQ(r.columns(), 3u);
  EXPECT_EQ(r.get<std::string>(0, "note"), "n");
  EXPECT_EQ(conn.statement_cache_stats().reprepared, 1u);
  conn.exec("ALTER TABLE cache_alter ALTER COLUMN v TYPE bigint");
  r = conn.exec(sql, 1);
  EXPECT_EQ(r.column_type(1), type_oids::int8);
  EXPECT_EQ(r.get<std::int64_t>(0, "v"), 10);
  EXPECT_EQ(conn.statement_cache_stats().reprepared, 2u);
  // Inside a transaction block nothing can run after the error: it is thrown, the
  // statement dropped, and prepared again once the block is over.
  conn.exec("ALTER TABLE cache_alter DROP COLUMN note");
  conn.exec("BEGIN");
  try {
    conn.exec(sql, 1);
    ADD_FAILURE() << "a changed result type inside a transaction block";
  } catch (const Error& e) {
    EXPECT_EQ(e.sqlstate(), "0A000");
  }
  conn.exec("ROLLBACK");
  EXPECT_EQ(conn.exec(sql, 1).columns(), 2u);
}

TEST_F(StatementCacheTest, DiscardAllAndDeallocateEmptyTheCache) {
  const char* sql = "SELECT $1::text";
  conn.exec(sql, "a");
  conn.exec("DISCARD ALL");
  EXPECT_EQ(conn.exec(sql, "b").scalar<std::string>(), "b");
  auto s = conn.statement_cache_stats();
  EXPECT_EQ(s.invalidations, 1u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.reprepared, 0u);  // forgotten on DISCARD ALL, not found missing
  conn.exec("  deallocate ALL");
  conn.exec(sql, "c");
  EXPECT_EQ(conn.statement_cache_stats().reprepared, 0u);
  // Behind the cache's back (native()): the server's 26000 makes it prepare once more.
  PQclear(PQexec(conn.native(), "DEALLOCATE ALL"));
  EXPECT_EQ(conn.exec(sql, "d").scalar<std::string>(), "d");
  EXPECT_EQ(conn.statement_cache_stats().reprepared, 1u);
  conn.exec("/* after a comment */ discard\n all");
  conn.exec("DISCARD PLANS");  // keeps prepared statements
  EXPECT_EQ(conn.statement_cache_stats().invalidations, 3u);
  EXPECT_EQ(conn.exec(sql, "e").scalar<std::string>(), "e");
  EXPECT_EQ(conn.statement_cache_stats().reprepared, 1u);
}

TEST_F(PreparedTest, PrepareAndExecPreparedByName) {
  conn.prepare("add_one", "SELECT $1::int + 1 AS n");
  EXPECT_EQ(conn.exec_prepared("add_one", 41).scalar<int>(), 42);
  EXPECT_EQ(server_statements(conn), 1);
  conn.exec("DISCARD ALL");
  EXPECT_EQ(conn.exec_prepared("add_one", 1).scalar<int>(), 2);  // prepared again
  PQclear(PQexec(conn.native(), "DEALLOCATE add_one"));
  EXPECT_EQ(conn.exec_prepared("add_one", 2).scalar<int>(), 3);  // 26000, prepared again
  try {
    conn.exec_prepared("never", 1);
    ADD_FAILURE();
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.sqlstate(), "26000");
    EXPECT_THAT(e.what(), HasSubstr("never"));
  }
  EXPECT_THROW(conn.prepare("bad", "SELEC 1"), DatabaseError);
  EXPECT_THROW(conn.exec_prepared("bad"), DatabaseError);
}

TEST_F(PreparedTest, UnnamedModeMakesNothingNamedOnTheServer) {
  conn.set_statement_cache({StatementCaching::unnamed});
  conn.prepare("q", "SELECT $1::int * 2");
  conn.exec("SELECT $1::int", 1);
  EXPECT_EQ(conn.exec_prepared("q", 21).scalar<int>(), 42);
  EXPECT_EQ(server_statements(conn), 0);
  EXPECT_THROW(conn.prepare("bad", "SELEC 1"), DatabaseError);  // still checked
}

TEST(StatementCachePoolTest, SessionResetEmptiesTheCacheAndNoResetKeepsIt) {
  for (SessionReset reset : {SessionReset::discard_all, SessionReset::none}) {
    auto config = test_config("stmt_cache_pool", {.min_idle = 0, .max_size = 1});
    config.use_extension = false;
    config.session_reset = reset;
    config.statement_cache = {StatementCaching::automatic, 16};
    Pool pool(config);
    { pool.acquire()->exec("SELECT $1::int", 1); }
    auto lease = pool.acquire();
    EXPECT_EQ(lease->exec("SELECT $1::int", 2).scalar<int>(), 2);
    auto s = lease->statement_cache_stats();
    EXPECT_EQ(s.reprepared, 0u);  // never found missing on the server
    if (reset == SessionReset::discard_all) {
      EXPECT_EQ(s.misses, 2u);
      EXPECT_GE(s.invalidations, 1u);
    } else {
      EXPECT_EQ(s.misses, 1u);
      EXPECT_EQ(s.hits, 1u);
    }
  }
}

// Through PgBouncer 1.18, pool_mode = transaction, default_pool_size = 2, with the steps
// that move a client to another server connection deterministically: A's transaction
// holds one server (X), so B prepares on the other (Y); C's transaction then takes Y, A
// commits, and B's next statement can only run on X.
TEST(PgBouncerStatementTest, UnnamedModeNeverLosesAPreparedStatement) {
  const char* bouncer = pgbouncer_conninfo();
  if (!bouncer) GTEST_SKIP() << "USHER_TEST_PGBOUNCER not set (tests/suites/client.sh sets it)";
  auto open = [&] { return Connection::open(bouncer, std::chrono::seconds(10)); };
  // prepare_on_y runs on B while only Y is free; run_on_x while only X is.
  auto hop = [&](Connection& b, const std::function<void()>& prepare_on_y,
                 const std::function<void()>& run_on_x) {
    bouncer_hop(prepare_on_y, [&](int x) {
      EXPECT_EQ(b.exec("SELECT pg_backend_pid()").scalar<int>(), x);  // B is on X now
      run_on_x();
    });
  };
  Connection b = open();
  b.set_statement_cache({StatementCaching::unnamed, 16});
  for (int round = 0; round < 3; ++round) {
    std::string name = "by_id" + std::to_string(round);
    hop(b, [&] { b.prepare(name, "SELECT $1::int + 1"); b.exec("SELECT $1::int * 3", round); },
        [&] {
          EXPECT_EQ(b.exec_prepared(name, round).scalar<int>(), round + 1);
          EXPECT_EQ(b.exec("SELECT $1::int * 3", round).scalar<int>(), round * 3);
        });
  }
  // The control: a named statement (libpq's own calls) through the same steps is lost.
  // Its name is new to the bouncer's server connections, which outlive this test.
  std::string named = "named_" + std::to_string(::getpid()) + "_" +
                      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
  Connection raw = open();
  hop(raw,
      [&] {
        PGresult* prepared = PQprepare(raw.native(), named.c_str(), "SELECT 1", 0, nullptr);
        EXPECT_EQ(PQresultStatus(prepared), PGRES_COMMAND_OK);
        PQclear(prepared);
      },
      [&] {
        PGresult* executed = PQexecPrepared(raw.native(), named.c_str(), 0, nullptr, nullptr, nullptr, 0);
        const char* state = PQresultErrorField(executed, PG_DIAG_SQLSTATE);
        EXPECT_STREQ(state ? state : "", "26000") << "the named statement survived: the test proves nothing";
        PQclear(executed);
      });
}

// 1,000,000 rows counted as they come; the heap never holds more than a few of them
// (a whole result of these rows takes about 50 MB in libpq).
TEST_F(StreamTest, StreamsAMillionRowsInBoundedMemory) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const long total = 20000;  // sanitizer builds: fewer, and malloc is theirs (no heap figure)
  const bool measure = false;
#else
  const long total = 1000000;
  const bool measure = true;
#endif
  auto heap = [] { return static_cast<long>(mallinfo2().uordblks); };
  long base = heap(), peak = 0, sum = 0, count = 0;
  std::size_t n = conn.stream(
      "SELECT generate_series(1, $1)",
      [&](const Row& row) {
        sum += row.get<long>(0);
        if (row.result().rows() != 1) ADD_FAILURE() << "a chunk of " << row.result().rows();
        if (measure && ++count % 4096 == 0) peak = std::max(peak, heap() - base);
      },
      total);
  EXPECT_EQ(n, static_cast<std::size_t>(total));
  EXPECT_EQ(sum, total * (total + 1) / 2);
  if (measure) EXPECT_LT(peak, 8L << 20) << "heap grew by " << peak << " bytes";

  // A callback that throws: the statement is cancelled, the rest dropped, the
  // exception rethrown, and the connection usable.
  long seen = 0;
  EXPECT_THROW(conn.stream("SELECT generate_series(1, 100000000)",  // in the target list: streamed
                           [&](const Row&) {
                             if (++seen == 10) throw std::runtime_error("enough");
                           }),
               std::runtime_error);
  EXPECT_EQ(seen, 10);
  EXPECT_EQ(conn.exec("SELECT 7").scalar<int>(), 7);
  EXPECT_THROW(conn.stream("SELECT 1/0", [](const Row&) {}), DatabaseError);
  EXPECT_EQ(conn.stream("SELECT 1 WHERE false", [](const Row&) {}), 0u);
}

}  // namespace
}  // namespace usher::test
