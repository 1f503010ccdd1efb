// Deferred BEGIN (owed_begin.cpp): Pool::transaction's BEGIN and SET LOCAL timeouts go
// to the server with the body's first statement, in one pipeline; a body that runs
// nothing sends nothing; every other way of reaching the server from a body (native(),
// COPY, prepare, savepoint) runs inside the transaction all the same; the first
// statement's own error is what the caller gets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <string>
#include <string_view>
#include <vector>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

// A pool of one connection, whose protocol trace the test reads, and an empty table.
class DeferredBeginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_.conn().exec("DROP TABLE IF EXISTS deferred_begin");
    admin_.conn().exec("CREATE TABLE deferred_begin (k int PRIMARY KEY)");
  }
  // The lines of the trace of what `run` sent and received on the pool's connection.
  template <class Run>
  std::vector<std::string> traced(Run&& run) {
    Lease lease = pool_.acquire();
    ProtocolTrace trace(lease->native());
    lease.release();
    run();
    lease = pool_.acquire();
    return trace.stop();
  }
  // Index of the first line at or after `from` with `text` sent by the client (F), or -1.
  static int sent(const std::vector<std::string>& lines, std::string_view text, int from = 0) {
    for (int i = from; i < static_cast<int>(lines.size()); ++i)
      if (lines[i].starts_with("F\t") && lines[i].find(text) != std::string::npos) return i;
    return -1;
  }
  static bool answered_between(const std::vector<std::string>& lines, int from, int to) {
    for (int i = from; i < to; ++i)
      if (lines[i].starts_with("B\t")) return true;
    return false;
  }

  Admin admin_;
  Pool pool_{test_config("deferred_begin", {.min_idle = 1, .max_size = 1})};
};

// BEGIN, the SET LOCAL timeouts and the first statement are sent before any answer comes:
// one round trip. Sequential (before this change): BEGIN's answer came first.
TEST_F(DeferredBeginTest, BeginAndTimeoutsTravelWithTheFirstStatement) {
  TransactionOptions o;
  o.statement_timeout = std::chrono::milliseconds(4321);
  auto lines = traced([&] {
    long n = pool_.transaction(
        [](Transaction& tx) {
          tx.exec("INSERT INTO deferred_begin VALUES (1)");
          return tx.exec("SHOW statement_timeout").scalar<std::string>() == "4321ms" ? 1L : 0L;
        },
        o);
    EXPECT_EQ(n, 1) << "the SET LOCAL statement_timeout applies inside the transaction";
  });
  int begin = sent(lines, "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE");
  ASSERT_GE(begin, 0) << "BEGIN sent";
  int timeouts = sent(lines, "set_config('statement_timeout'", begin);
  int insert = sent(lines, "INSERT INTO deferred_begin", begin);
  ASSERT_GT(timeouts, begin);
  ASSERT_GT(insert, timeouts);
  EXPECT_FALSE(answered_between(lines, begin, insert))
      << "an answer came between BEGIN and the first statement: two round trips";
  EXPECT_EQ(admin_.count_rows("deferred_begin"), 1);
}

// Nothing run: no BEGIN, no COMMIT, the connection not counted as used.
TEST_F(DeferredBeginTest, ABodyThatRunsNothingSendsNothing) {
  auto lines = traced([&] {
    EXPECT_EQ(pool_.transaction([](Transaction& tx) {
      EXPECT_EQ(tx->transaction_status(), TransactionStatus::in_transaction);
      return 7;
    }),
              7);
  });
  EXPECT_EQ(sent(lines, "BEGIN"), -1);
  EXPECT_EQ(sent(lines, "COMMIT"), -1);
  std::uint64_t uses_before = pool_.acquire()->uses();  // (native() above counted as one)
  pool_.transaction([](Transaction&) {});
  EXPECT_EQ(pool_.acquire()->uses(), uses_before);
  // ... and a body that throws before its first statement sends nothing either.
  lines = traced([&] {
    EXPECT_THROW(pool_.transaction([](Transaction&) { throw std::runtime_error("before"); }),
                 std::runtime_error);
  });
  EXPECT_EQ(sent(lines, "BEGIN"), -1);
  EXPECT_EQ(sent(lines, "ROLLBACK"), -1);
  EXPECT_EQ(pool_.acquire()->transaction_status(), TransactionStatus::idle);
}

// The first statement fails: its own typed error, with its fields, reaches the caller;
// caught inside the body, the transaction is not committed.
TEST_F(DeferredBeginTest, TheFirstStatementsErrorIsItsOwn) {
  try {
    pool_.transaction([](Transaction& tx) { tx.exec("SELECT 1 / 0"); });
    FAIL() << "no exception";
  } catch (const DivisionByZero& e) {
    EXPECT_EQ(e.sqlstate(), "22012");
  }
  try {
    pool_.transaction([](Transaction& tx) {
      try {
        tx.exec("INSERT INTO deferred_begin VALUES (1), (1)");
      } catch (const UniqueViolation& e) {
        EXPECT_EQ(e.constraint(), "deferred_begin_pkey");
      }
    });
    FAIL() << "a caught error was committed";
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.sqlstate(), "25P02");
  }
  EXPECT_EQ(admin_.count_rows("deferred_begin"), 0);
  EXPECT_EQ(pool_.acquire()->transaction_status(), TransactionStatus::idle);
}

// What a body runs through libpq's own handle, as its first statement, is inside the
// transaction: native() sends the BEGIN first. Rolled back with the rest.
TEST_F(DeferredBeginTest, NativeFirstRunsInsideTheTransaction) {
  EXPECT_THROW(pool_.transaction([](Transaction& tx) {
    PGresult* r = PQexec(tx->native(), "INSERT INTO deferred_begin VALUES (1)");
    EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    throw std::runtime_error("roll it back");
  }),
               std::runtime_error);
  EXPECT_EQ(admin_.count_rows("deferred_begin"), 0) << "the native INSERT was committed on its own";
}

// COPY and a prepared statement as a body's first statement, and a savepoint first:
// each inside the transaction.
TEST_F(DeferredBeginTest, CopyPrepareAndASavepointFirstRunInsideTheTransaction) {
  EXPECT_THROW(pool_.transaction([](Transaction& tx) {
    tx->copy_from("COPY deferred_begin FROM STDIN", [](CopyWriter& w) { w.row(1); });
    throw std::runtime_error("roll it back");
  }),
               std::runtime_error);
  EXPECT_EQ(admin_.count_rows("deferred_begin"), 0) << "the COPY was committed on its own";

  EXPECT_THROW(pool_.transaction([](Transaction& tx) {
    tx->prepare("deferred_insert", "INSERT INTO deferred_begin VALUES (2)");
    tx->exec_prepared("deferred_insert");
    throw std::runtime_error("roll it back");
  }),
               std::runtime_error);
  EXPECT_EQ(admin_.count_rows("deferred_begin"), 0) << "the prepared INSERT was committed on its own";

  pool_.transaction([](Transaction& tx) {
    try {
      tx.savepoint([](Transaction& inner) {
        inner.exec("INSERT INTO deferred_begin VALUES (3)");
        throw std::runtime_error("only the savepoint");
      });
    } catch (const std::runtime_error&) {
    }
    tx.exec("INSERT INTO deferred_begin VALUES (4)");
  });
  auto r = admin_.conn().exec("SELECT array_agg(k ORDER BY k)::text FROM deferred_begin");
  EXPECT_EQ(r.scalar<std::string>(), "{4}");
}

}  // namespace
}  // namespace usher::test
