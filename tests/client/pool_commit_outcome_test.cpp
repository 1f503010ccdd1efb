// A connection lost after COMMIT was sent, resolved through pg_xact_status() on a fresh
// borrow. The COMMIT is held inside a deferred constraint trigger that waits on an
// advisory lock the test holds; the test sees it waiting in pg_locks, then either
// terminates the backend (the transaction aborts: retried) or cuts the client's socket
// and lets the COMMIT finish (it commits: success, the function ran once). A COMMIT that
// stays in progress past commit_resolution_timeout is CommitUnknown with its xid.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sys/socket.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

constexpr long kCommitLockKey = 712012;

// A table whose rows' COMMIT waits until the advisory lock kCommitLockKey is free.
PoolConfig table_with_waiting_commit(Admin& admin, const std::string& name) {
  auto& c = admin.conn();
  c.exec("DROP TABLE IF EXISTS " + name);
  c.exec("CREATE TABLE " + name + " (k int PRIMARY KEY)");
  c.exec("CREATE OR REPLACE FUNCTION commit_outcome_wait() RETURNS trigger LANGUAGE plpgsql AS "
         "$$BEGIN PERFORM pg_catalog.pg_advisory_xact_lock_shared(" +
         std::to_string(kCommitLockKey) + "); RETURN NULL; END$$");
  c.exec("CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON " + name +
         " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION commit_outcome_wait()");
  auto config = test_config(name);
  config.max_size = 1;  // the resolving borrow needs the broken connection's slot back
  return config;
}

// The backend of application `app` waiting for the advisory lock: its COMMIT is under way.
int await_commit_waiting(Admin& admin, const std::string& app) {
  int pid = 0;
  EXPECT_TRUE(eventually([&] {
    auto r = admin.conn().exec(
        "SELECT l.pid FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a USING (pid)"
        " WHERE l.locktype = 'advisory' AND NOT l.granted AND a.application_name = $1",
        app);
    if (r.rows() == 0) return false;
    pid = r.get<int>(0, 0);
    return true;
  }));
  return pid;
}

TransactionOptions quick(int max_attempts) {
  TransactionOptions o = fast_retries(max_attempts);
  o.commit_resolution_timeout = wait_limit();
  return o;
}

// Holds the lock the trigger's COMMIT waits on; the thread returned terminates the
// pool's backend once its COMMIT waits there, then frees the lock.
std::jthread kill_during_commit(Admin& holder, const PoolConfig& config) {
  holder.conn().exec("SELECT pg_advisory_lock($1::bigint)", kCommitLockKey);
  return std::jthread([&holder, app = config.effective_application_name()] {
    Admin own;  // this thread's own connection
    own.terminate(await_commit_waiting(own, app));
    holder.conn().exec("SELECT pg_advisory_unlock($1::bigint)", kCommitLockKey);
  });
}

// Killed while its COMMIT waits in the trigger: the server aborts it. pg_xact_status
// says so, and the transaction is run again (before: CommitUnknown, never retried).
TEST(PoolCommitOutcomeTest, ABackendKilledDuringCommitAbortsAndTheTransactionIsRetried) {
  Admin admin, holder;
  auto config = table_with_waiting_commit(admin, "commit_aborted");
  Pool pool(config);
  std::jthread killer = kill_during_commit(holder, config);
  std::atomic<int> attempts{0};
  int last = pool.transaction(
      [&](Connection& c, int attempt) {
        ++attempts;
        c.exec("INSERT INTO commit_aborted VALUES (1)");
        return attempt;
      },
      quick(3));
  killer.join();
  EXPECT_EQ(attempts.load(), 2);
  EXPECT_EQ(last, 2);
  EXPECT_EQ(admin.count_rows("commit_aborted"), 1);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// The same with no attempt left: the error is a (transient) ConnectionError saying the
// transaction aborted, not CommitUnknown.
TEST(PoolCommitOutcomeTest, AnAbortedCommitWithNoAttemptLeftIsAConnectionError) {
  Admin admin, holder;
  auto config = table_with_waiting_commit(admin, "commit_aborted_last");
  Pool pool(config);
  std::jthread killer = kill_during_commit(holder, config);
  try {
    pool.transaction([](Connection& c) { c.exec("INSERT INTO commit_aborted_last VALUES (1)"); },
                     quick(1));
    ADD_FAILURE() << "no exception";
  } catch (const CommitUnknown& e) {
    ADD_FAILURE() << "CommitUnknown: " << e.what();
  } catch (const ConnectionError& e) {
    EXPECT_TRUE(e.is_transient());
    EXPECT_NE(std::string(e.what()).find("aborted"), std::string::npos) << e.what();
  }
  killer.join();
  EXPECT_EQ(admin.count_rows("commit_aborted_last"), 0);
}

// The client's socket is cut while the COMMIT waits in the trigger; then the lock is
// freed and the COMMIT completes on the server, whose backend is then terminated. The
// client, which saw its connection break during COMMIT, asks pg_xact_status (polling
// while it says "in progress") and returns normally: committed, the function ran once.
TEST(PoolCommitOutcomeTest, ACommitThatCompletedAfterTheConnectionBrokeIsASuccess) {
  Admin admin, holder;
  auto config = table_with_waiting_commit(admin, "commit_committed");
  Pool pool(config);
  holder.conn().exec("SELECT pg_advisory_lock($1::bigint)", kCommitLockKey);
  std::atomic<int> socket{-1};
  std::jthread cutter([&] {
    Admin own;
    int pid = await_commit_waiting(own, config.effective_application_name());
    ::shutdown(socket.load(), SHUT_RDWR);  // the client sees its connection closed
    holder.conn().exec("SELECT pg_advisory_unlock($1::bigint)", kCommitLockKey);
    // The COMMIT finishes (the backend leaves its transaction), then the backend goes.
    EXPECT_TRUE(eventually([&] {
      return own.conn()
                 .exec("SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = $1::int"
                       " AND backend_xid IS NOT NULL", pid)
                 .scalar<long>() == 0;
    }));
    own.terminate(pid);
  });
  std::atomic<int> attempts{0};
  pool.transaction(
      [&](Connection& c) {
        ++attempts;
        socket = PQsocket(c.native());
        c.exec("INSERT INTO commit_committed VALUES (1)");
      },
      quick(3));
  cutter.join();
  EXPECT_EQ(attempts.load(), 1);
  EXPECT_EQ(admin.count_rows("commit_committed"), 1);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// The COMMIT stays in progress (the lock is held) for all of commit_resolution_timeout:
// CommitUnknown carrying the xid, which pg_xact_status later reports committed.
TEST(PoolCommitOutcomeTest, ACommitStillInProgressPastTheBoundIsCommitUnknownWithItsXid) {
  Admin admin, holder;
  auto config = table_with_waiting_commit(admin, "commit_unknown");
  config.min_idle = config.max_size = 2;  // the resolving borrow finds one open
  Pool pool(config);
  ASSERT_TRUE(wait_idle(pool, 2));
  holder.conn().exec("SELECT pg_advisory_lock($1::bigint)", kCommitLockKey);
  std::atomic<int> socket{-1};
  std::jthread cutter([&] {
    Admin own;
    await_commit_waiting(own, config.effective_application_name());
    ::shutdown(socket.load(), SHUT_RDWR);
  });
  TransactionOptions o = quick(3);
  o.commit_resolution_timeout = 300ms;
  std::uint64_t xid = 0;
  try {
    pool.transaction(
        [&](Connection& c) {
          socket = PQsocket(c.native());
          c.exec("INSERT INTO commit_unknown VALUES (1)");
        },
        o);
    ADD_FAILURE() << "no exception";
  } catch (const CommitUnknown& e) {
    EXPECT_FALSE(e.is_transient());
    xid = e.xid();  // "in progress" till the bound (or, on a slow machine, no answer in time)
    EXPECT_NE(std::string(e.what()).find(std::to_string(xid)), std::string::npos) << e.what();
  }
  cutter.join();
  ASSERT_NE(xid, 0u);
  auto status = [&] {
    return admin.conn()
        .exec("SELECT pg_catalog.pg_xact_status($1::text::pg_catalog.xid8)", std::to_string(xid))
        .scalar<std::string>();
  };
  EXPECT_EQ(status(), "in progress");  // the lock is still held
  holder.conn().exec("SELECT pg_advisory_unlock($1::bigint)", kCommitLockKey);
  EXPECT_TRUE(eventually([&] { return status() == "committed"; }));
  EXPECT_EQ(admin.count_rows("commit_unknown"), 1);
}

// A COMMIT that hangs (its deferred trigger waits on the lock the test holds till after
// the assertion) ends within the transaction's max_elapsed: the pipelined COMMIT is read
// by the one statement loop, which cancels it at the deadline (57014: rolled back). Were
// the cancel to reach the backend before it read the COMMIT (a very slow machine), the
// connection is closed cancel_wait later and the outcome resolved: CommitUnknown. Before,
// the COMMIT had a result loop of its own, with no deadline: it waited for the lock.
TEST(PoolCommitOutcomeTest, AHangingCommitEndsAtTheTransactionsMaxElapsed) {
  Admin admin, holder;
  auto config = table_with_waiting_commit(admin, "commit_hangs");
  Pool pool(config);
  holder.conn().exec("SELECT pg_advisory_lock($1::bigint)", kCommitLockKey);
  TransactionOptions o = quick(1);
  o.max_elapsed = 500ms;
  o.commit_resolution_timeout = 100ms;
  auto outcome = std::async(std::launch::async, [&]() -> std::string {
    try {
      pool.transaction([](Connection& c) { c.exec("INSERT INTO commit_hangs VALUES (1)"); }, o);
      return "committed";
    } catch (const QueryCanceled& e) {
      return "cancelled";
    } catch (const CommitUnknown& e) {
      return "unknown";
    } catch (const Error& e) {
      return std::string("other: ") + e.what();
    }
  });
  bool returned = outcome.wait_for(wait_limit()) == std::future_status::ready;
  holder.conn().exec("SELECT pg_advisory_unlock($1::bigint)", kCommitLockKey);
  ASSERT_TRUE(returned) << "the COMMIT was still waiting " << wait_limit().count()
                        << " ms later (max_elapsed 500 ms)";
  std::string how = outcome.get();
  EXPECT_TRUE(how == "cancelled" || how == "unknown") << how;
  if (how == "cancelled") EXPECT_EQ(admin.count_rows("commit_hangs"), 0);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

}  // namespace
}  // namespace usher::test
