// What a borrower leaves in its session does not reach the next one: the pool resets a
// used connection when it comes back (PoolConfig::session_reset), and after_connect runs
// once per new connection. A pool of one, so the next borrower gets the same backend.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

PoolConfig one_connection(const std::string& name, SessionReset reset) {
  auto c = test_config(name);
  c.min_idle = c.max_size = 1;
  c.session_reset = reset;
  return c;
}

std::string show(Pool& pool, const char* setting) {
  auto lease = pool.acquire();
  return lease->exec(std::string("SELECT current_setting('") + setting + "')").scalar<std::string>();
}

TEST(PoolSessionTest, DiscardAllByDefaultLeavesNothingForTheNextBorrower) {
  Admin admin;
  admin.conn().exec("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'usher_session_role') "
                    "THEN CREATE ROLE usher_session_role; END IF; END $$");
  PoolConfig c = test_config("session_discard");
  c.min_idle = c.max_size = 1;
  EXPECT_EQ(c.session_reset, SessionReset::discard_all);
  Pool pool(c);
  int pid;
  {
    auto lease = pool.acquire();
    pid = lease->backend_pid();
    lease->exec("SET statement_timeout = '1234ms'");
    lease->exec("CREATE TEMP TABLE left_behind (n int)");
    lease->exec("PREPARE left_plan AS SELECT 1");
    lease->exec("SELECT pg_advisory_lock(4242)");
    lease->exec("LISTEN left_channel");
    lease->exec("SET ROLE usher_session_role");
  }
  auto lease = pool.acquire();
  ASSERT_EQ(lease->backend_pid(), pid);  // the same session
  EXPECT_EQ(lease->exec("SELECT current_setting('statement_timeout')").scalar<std::string>(), "0");
  EXPECT_EQ(lease->exec("SELECT current_user::text").scalar<std::string>(), "postgres");
  EXPECT_FALSE(lease->exec("SELECT to_regclass('pg_temp.left_behind') IS NOT NULL").scalar<bool>());
  EXPECT_EQ(lease->exec("SELECT count(*) FROM pg_prepared_statements").scalar<long>(), 0);
  EXPECT_EQ(lease->exec("SELECT count(*) FROM pg_listening_channels()").scalar<long>(), 0);
  EXPECT_EQ(admin.conn().exec("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1::int", pid)
                .scalar<long>(), 0);
}

TEST(PoolSessionTest, ResetAllResetsSettingsAndKeepsPreparedStatements) {
  Pool pool(one_connection("session_reset_all", SessionReset::reset_all));
  {
    auto lease = pool.acquire();
    lease->exec("SET statement_timeout = '1234ms'");
    lease->exec("PREPARE kept_plan AS SELECT 1");
  }
  auto lease = pool.acquire();
  EXPECT_EQ(lease->exec("SELECT current_setting('statement_timeout')").scalar<std::string>(), "0");
  EXPECT_EQ(lease->exec("SELECT count(*) FROM pg_prepared_statements").scalar<long>(), 1);
}

TEST(PoolSessionTest, NoneLeavesTheSessionAsItWas) {
  Pool pool(one_connection("session_none", SessionReset::none));
  pool.acquire()->exec("SET statement_timeout = '1234ms'");
  EXPECT_EQ(show(pool, "statement_timeout"), "1234ms");
}

TEST(PoolSessionTest, WorkThroughNativeCountsAsUse) {
  Pool pool(one_connection("session_native", SessionReset::discard_all));
  {
    auto lease = pool.acquire();
    PQclear(PQexec(lease->native(), "SET statement_timeout = '1234ms'"));
  }
  EXPECT_EQ(show(pool, "statement_timeout"), "0");
}

TEST(PoolSessionTest, SettingsInOptionsAreWhatTheResetReturnsTo) {
  auto c = one_connection("session_options", SessionReset::discard_all);
  c.options = {{"options", "-c statement_timeout=4321"}};
  Pool pool(c);
  pool.acquire()->exec("SET statement_timeout = '1s'");
  EXPECT_EQ(show(pool, "statement_timeout"), "4321ms");
}

TEST(PoolSessionTest, AfterConnectRunsOncePerNewConnection) {
  auto c = one_connection("session_after_connect", SessionReset::none);
  std::atomic<int> runs{0};
  c.after_connect = [&](Connection& conn) {
    ++runs;
    conn.exec("SET application_name = 'after_connect_ran'");
  };
  EventRecorder events(c);
  Pool pool(c);
  EXPECT_EQ(show(pool, "application_name"), "after_connect_ran");
  EXPECT_EQ(show(pool, "application_name"), "after_connect_ran");
  EXPECT_EQ(runs.load(), 1);
  pool.acquire().discard();  // a new connection: the hook runs again
  EXPECT_EQ(show(pool, "application_name"), "after_connect_ran");
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(events.count(PoolEventType::connect), 2u);
}

// A pool of one whose after_connect is `hook`: once an attempt has failed, a borrower
// that cannot wait sees why in its PoolTimeout; no connection was ever lent.
void expect_after_connect_refused(const std::string& name, std::function<void(Connection&)> hook,
                                  const std::vector<std::string>& reasons) {
  auto c = one_connection(name, SessionReset::none);
  c.after_connect = std::move(hook);
  EventRecorder events(c);
  Pool pool(c);
  ASSERT_TRUE(eventually([&] { return events.count(PoolEventType::connect_failure) >= 1; }));
  try {
    pool.acquire(Pool::Clock::now());
    FAIL() << "a connection whose after_connect failed was lent";
  } catch (const PoolTimeout& e) {
    for (const auto& reason : reasons) EXPECT_THAT(e.what(), HasSubstr(reason));
  }
  EXPECT_EQ(pool.stats().created, 0u);
}

TEST(PoolSessionTest, AfterConnectFailureIsAConnectFailureNamingIt) {
  expect_after_connect_refused(
      "session_after_connect_fails",
      [](Connection& conn) { conn.exec("SELECT no_such_column_anywhere"); },
      {"after_connect failed", "no_such_column_anywhere"});
}

TEST(PoolSessionTest, AfterConnectMustNotLeaveATransactionOpen) {
  expect_after_connect_refused("session_after_connect_txn",
                               [](Connection& conn) { conn.exec("BEGIN"); },
                               {"after_connect left the connection in a transaction"});
}

// A lease that ran nothing is not reset: what after_connect SET is still there after
// it (a reset would return application_name to the startup value). This is what keeps
// the lock-free hot path free of round trips.
TEST(PoolSessionTest, ALeaseThatRanNothingIsNotReset) {
  auto c = one_connection("session_unused", SessionReset::discard_all);
  c.after_connect = [](Connection& conn) { conn.exec("SET application_name = 'set_by_hook'"); };
  Pool pool(c);
  pool.acquire().release();  // borrowed and returned, nothing run
  EXPECT_EQ(show(pool, "application_name"), "set_by_hook");
  // The lease above ran a statement: now the reset returns it to the startup value.
  EXPECT_EQ(show(pool, "application_name"), c.effective_application_name());
}

// With pg_usher's leases the return sends usher.checkin() too: the reset is awaited
// first (DISCARD ALL will not share a query string), then the checkin.
// Named PoolExtension*: tests/suites/client.sh runs that family on a server with pg_usher,
// where a skip counts as a failure (the shared test cluster has no extension).
TEST(PoolExtensionSessionTest, ResetAndCheckinTogether) {
  Admin admin;
  if (!admin.has_extension_leases()) GTEST_SKIP() << "pg_usher's usher.checkout() not installed";
  auto c = one_connection("session_with_checkin", SessionReset::discard_all);
  c.leak_detection_threshold = 1h;  // every borrow checks out on the server
  Pool pool(c);
  int pid;
  {
    auto lease = pool.acquire();
    pid = lease->backend_pid();
    lease->exec("SET statement_timeout = '1234ms'");
  }
  EXPECT_TRUE(eventually([&] {
    return admin.conn().exec("SELECT count(*) FROM usher.leases WHERE pid = $1::int", pid).scalar<long>() == 0;
  }));
  EXPECT_EQ(show(pool, "statement_timeout"), "0");
}


// Behind PgBouncer in transaction mode (PoolConfig::transaction_pooler) no session is the
// pool's own: no usher.checkout on borrow, even with leak detection on (its checkin would
// land on another server session and leave a stale lease behind), and no session reset
// on return (DISCARD ALL would hit another client's server session). Without the option
// both happen (ResetAndCheckinTogether above).
TEST(PoolExtensionSessionTest, TransactionPoolerTakesNoLeaseAndSendsNoReset) {
  Admin admin;
  if (!admin.has_extension_leases()) GTEST_SKIP() << "pg_usher's usher.checkout() not installed";
  auto c = one_connection("session_tx_pooler", SessionReset::discard_all);
  c.leak_detection_threshold = 1h;  // would check out on every borrow
  c.transaction_pooler = true;
  Pool pool(c);
  {
    auto lease = pool.acquire();
    int pid = lease->backend_pid();
    EXPECT_EQ(admin.conn().exec("SELECT count(*) FROM usher.leases WHERE pid = $1::int", pid).scalar<long>(), 0);
    lease->exec("SET statement_timeout = '1234ms'");
  }
  EXPECT_EQ(show(pool, "statement_timeout"), "1234ms");  // not reset: only SET LOCAL is safe here
}

}  // namespace
}  // namespace usher::test
