// The client's side of the lease protocol (checkout on borrow, checkin sent on return
// and read later), against recording SQL functions named usher.checkout/usher.checkin in a scratch
// database. It checks the pool's round trips; pool_extension_test.cpp checks the real
// pg_usher functions once they exist (issue 3).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

constexpr const char* kDatabase = "usher_client_lease_recording";
// checkout waits while a test holds this advisory lock: a slow validation.
constexpr long kSlowCheckoutKey = 712013;

class PoolLeaseProtocolTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    Admin admin;
    admin.conn().exec(std::string("DROP DATABASE IF EXISTS ") + kDatabase + " WITH (FORCE)");
    admin.conn().exec(std::string("CREATE DATABASE ") + kDatabase);
    auto c = Connection::open(std::string("dbname=") + kDatabase, 10s);
    c.exec("CREATE SCHEMA usher");
    c.exec("CREATE TABLE usher.leases (pid int PRIMARY KEY, holder text NOT NULL)");
    c.exec("CREATE TABLE usher.calls (n serial, pid int, call text)");
    c.exec("CREATE FUNCTION usher.checkout(holder text) RETURNS boolean LANGUAGE sql AS $$"
           " SELECT pg_catalog.pg_advisory_xact_lock_shared(" + std::to_string(kSlowCheckoutKey) + ");"
           " INSERT INTO usher.calls (pid, call) VALUES (pg_backend_pid(), 'checkout');"
           " INSERT INTO usher.leases VALUES (pg_backend_pid(), holder)"
           "   ON CONFLICT (pid) DO UPDATE SET holder = excluded.holder;"
           " SELECT true $$");
    c.exec("CREATE FUNCTION usher.checkin() RETURNS boolean LANGUAGE sql AS $$"
           " INSERT INTO usher.calls (pid, call) VALUES (pg_backend_pid(), 'checkin');"
           " DELETE FROM usher.leases WHERE pid = pg_backend_pid();"
           " SELECT true $$");
  }
  static void TearDownTestSuite() {
    Admin admin;
    admin.conn().exec(std::string("DROP DATABASE IF EXISTS ") + kDatabase + " WITH (FORCE)");
  }

  PoolConfig config(const std::string& name) {
    auto c = test_config(name);
    c.conninfo = std::string("dbname=") + kDatabase;
    return c;
  }
  long holders(int pid) {
    return recorder.exec("SELECT count(*) FROM usher.leases WHERE pid = $1::int", pid).scalar<long>();
  }
  long calls(int pid, const std::string& call) {
    return recorder.exec("SELECT count(*) FROM usher.calls WHERE pid = $1::int AND call = $2", pid, call)
        .scalar<long>();
  }

  Connection recorder = Connection::open(std::string("dbname=") + kDatabase, 10s);
};

TEST_F(PoolLeaseProtocolTest, CheckoutOnValidationCheckinOnReturn) {
  auto c = config("lease_protocol");
  c.validate_after_idle = 0ms;  // every borrow validates, so every borrow checks out
  Pool pool(c);
  int pid;
  {
    auto lease = pool.acquire();
    pid = lease->backend_pid();
    EXPECT_EQ(pool.extension_detected(), std::optional<bool>(true));
    auto holder = recorder.exec("SELECT holder FROM usher.leases WHERE pid = $1::int", pid);
    ASSERT_EQ(holder.rows(), 1u);
    // <pool>/<file>:<line> thread <id>, the pool name shortened to fit 63 bytes.
    EXPECT_THAT(holder.get<std::string>(0, 0),
                ::testing::AllOf(::testing::StartsWith("lease_"),
                                 ::testing::HasSubstr("/pool_lease_protocol_test.cpp:")));
  }
  // The checkin was sent on return; the server runs it without waiting for anyone.
  ASSERT_TRUE(eventually([&] { return holders(pid) == 0; }));
  {
    auto lease = pool.acquire();  // reads the checkin's answer, then checks out again
    EXPECT_EQ(lease->backend_pid(), pid);
    EXPECT_EQ(lease->exec("SELECT 1").scalar<int>(), 1);
    EXPECT_EQ(holders(pid), 1);
  }
  ASSERT_TRUE(eventually([&] { return holders(pid) == 0; }));
  EXPECT_EQ(calls(pid, "checkout"), 2);
  EXPECT_EQ(calls(pid, "checkin"), 2);
  EXPECT_EQ(pool.stats().validation_failures, 0u);
}

TEST_F(PoolLeaseProtocolTest, HotPathDoesNotCheckOut) {
  auto c = config("lease_hot");
  c.validate_after_idle = 1h;
  Pool pool(c);
  int pid;
  {
    auto lease = pool.acquire();  // fresh connection, inside the window: no checkout
    pid = lease->backend_pid();
  }
  EXPECT_EQ(calls(pid, "checkout"), 0);
  EXPECT_EQ(calls(pid, "checkin"), 0);  // nothing was recorded, nothing to check in
  for (int i = 0; i < 3; ++i) EXPECT_EQ(pool.acquire()->exec("SELECT 2").scalar<int>(), 2);
  EXPECT_EQ(calls(pid, "checkout"), 0);
}

TEST_F(PoolLeaseProtocolTest, LeakDetectionRecordsEveryBorrower) {
  auto c = config("lease_leak");
  c.validate_after_idle = 1h;       // even on the hot path...
  c.leak_detection_threshold = 30ms;  // ...leak detection wants the holder on the server
  EventRecorder events(c);
  Pool pool(c);
  pool.acquire();  // first borrower, returned at once
  auto leaked = pool.acquire();
  int pid = leaked->backend_pid();
  // Await this lease's report, not the first event: under load the first borrower's
  // checkout round trip alone can outlast the 30 ms threshold and be reported too.
  ASSERT_TRUE(eventually([&] { return !pool.leaks().empty(); }));
  auto leak = pool.leaks().at(0);
  auto r = recorder.exec("SELECT holder FROM usher.leases WHERE pid = $1::int", pid);
  ASSERT_EQ(r.rows(), 1u);
  EXPECT_EQ(r.get<std::string>(0, 0), leak.holder);
  EXPECT_EQ(calls(pid, "checkout"), 2);
}

// A lease's held time starts when the borrower gets the connection, not before the
// pool's checkout round trip: a checkout held up (it waits on the advisory lock the
// test holds) for longer than the leak threshold is not the borrower's leak. Checked
// while the checkout still waits, after two maintenance runs that began once the
// threshold had passed. Before, the lease was published (stamped at the start of
// acquire) before the checkout, and reported as a leak there.
TEST_F(PoolLeaseProtocolTest, ASlowCheckoutIsNotTheBorrowersHoldTime) {
  auto c = config("lease_slow_checkout");
  c.min_idle = c.max_size = 1;
  c.leak_detection_threshold = 100ms;  // every borrow checks out
  Pool pool(c);
  ASSERT_TRUE(wait_idle(pool, 1));
  recorder.exec("SELECT pg_advisory_lock($1::bigint)", kSlowCheckoutKey);
  std::jthread borrower([&] { pool.acquire(); });  // returned at once
  Admin admin;
  ASSERT_TRUE(eventually([&] {  // the checkout waits for the lock
    return admin.conn()
               .exec("SELECT count(*) FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a"
                     " USING (pid) WHERE l.locktype = 'advisory' AND NOT l.granted"
                     " AND a.application_name = $1", c.effective_application_name())
               .scalar<long>() == 1;
  }));
  auto waiting_since = Pool::Clock::now();  // the acquire began before this
  ASSERT_TRUE(eventually([&] { return Pool::Clock::now() - waiting_since >= c.leak_detection_threshold; }));
  auto runs = pool.stats().maintenance_runs;
  ASSERT_TRUE(eventually([&] { return pool.stats().maintenance_runs >= runs + 2; }));
  EXPECT_EQ(pool.stats().leaks, 0u);
  EXPECT_TRUE(pool.leaks().empty());
  recorder.exec("SELECT pg_advisory_unlock($1::bigint)", kSlowCheckoutKey);
  borrower.join();
  EXPECT_EQ(pool.stats().validation_failures, 0u);
}

TEST_F(PoolLeaseProtocolTest, KeepaliveReadsAPendingCheckin) {
  auto c = config("lease_keepalive");
  c.validate_after_idle = 0ms;
  c.keepalive_interval = 20ms;
  c.min_idle = 1;
  c.max_size = 1;
  Pool pool(c);
  pool.acquire();  // checkout, then checkin sent on return
  auto before = pool.stats().keepalives;
  ASSERT_TRUE(eventually([&] { return pool.stats().keepalives >= before + 2; }));
  EXPECT_EQ(pool.stats().validation_failures, 0u);
  EXPECT_EQ(pool.acquire()->exec("SELECT 3").scalar<int>(), 3);
}

}  // namespace
}  // namespace usher::test
