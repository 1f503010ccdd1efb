// A connection comes back dirty: inside a transaction, in a failed transaction, with a
// statement still running, or broken. The next borrower must never see any of it.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "test_support.hpp"

namespace usher::test {
namespace {

class PoolDirtyTest : public ::testing::Test {
 protected:
  PoolDirtyTest() {
    auto c = test_config("dirty");
    c.max_size = 1;  // the next borrower gets the same connection, if it is kept
    c.validate_after_idle = 1h;
    // What is tested is the rollback of what was left open; a session reset would also
    // drop the temporary table the tests look into (pool_session_test.cpp tests that).
    c.session_reset = SessionReset::none;
    c.on_event = events.callback();
    pool.emplace(c);
  }
  EventRecorder events;
  std::optional<Pool> pool;
};

TEST_F(PoolDirtyTest, OpenTransactionIsRolledBack) {
  std::uint64_t id;
  {
    auto lease = pool->acquire();
    id = lease.connection_id();
    lease->exec("CREATE TEMP TABLE IF NOT EXISTS marks (n int)");
    lease->exec("BEGIN");
    lease->exec("INSERT INTO marks VALUES ($1)", 1);
  }
  auto lease = pool->acquire();
  EXPECT_EQ(lease.connection_id(), id);  // kept: rolled back, not discarded
  EXPECT_EQ(lease->transaction_status(), TransactionStatus::idle);
  EXPECT_EQ(lease->exec("SELECT count(*) FROM marks").scalar<long>(), 0);
}

TEST_F(PoolDirtyTest, FailedTransactionIsRolledBack) {
  {
    auto lease = pool->acquire();
    lease->exec("BEGIN");
    EXPECT_THROW(lease->exec("SELECT no_such_column"), DatabaseError);
    EXPECT_EQ(lease->transaction_status(), TransactionStatus::in_error);
  }
  auto lease = pool->acquire();
  EXPECT_EQ(lease->transaction_status(), TransactionStatus::idle);
  EXPECT_EQ(lease->exec("SELECT 1").scalar<int>(), 1);
}

TEST_F(PoolDirtyTest, RunningStatementIsCanceled) {
  {
    auto lease = pool->acquire();
    ASSERT_EQ(PQsendQuery(lease->native(), "SELECT pg_sleep(600)"), 1);
    EXPECT_EQ(lease->transaction_status(), TransactionStatus::active);
  }  // without the cancel, the next statement would wait ten minutes
  auto lease = pool->acquire();
  EXPECT_EQ(lease->transaction_status(), TransactionStatus::idle);
  EXPECT_EQ(lease->exec("SELECT 2").scalar<int>(), 2);
}

TEST_F(PoolDirtyTest, RunningStatementInsideTransactionIsCanceledAndRolledBack) {
  {
    auto lease = pool->acquire();
    lease->exec("BEGIN");
    ASSERT_EQ(PQsendQuery(lease->native(), "SELECT pg_sleep(600)"), 1);
  }
  auto lease = pool->acquire();
  EXPECT_EQ(lease->transaction_status(), TransactionStatus::idle);
  EXPECT_EQ(lease->exec("SELECT 3").scalar<int>(), 3);
}

TEST_F(PoolDirtyTest, BrokenConnectionIsDiscardedAndReplaced) {
  std::uint64_t id;
  {
    auto lease = pool->acquire();
    id = lease.connection_id();
    EXPECT_THROW(lease->exec("SELECT pg_terminate_backend(pg_backend_pid())"), ConnectionError);
  }
  EXPECT_EQ(events.count(PoolEventType::retire, "broken"), 1u);
  auto lease = pool->acquire();
  EXPECT_NE(lease.connection_id(), id);
  EXPECT_EQ(lease->exec("SELECT 4").scalar<int>(), 4);
  auto s = pool->stats();
  EXPECT_EQ(s.destroyed, 1u);
  EXPECT_EQ(s.created, 2u);
}

}  // namespace
}  // namespace usher::test
