// The client's side of the lease protocol (checkout on borrow, checkin sent on return
// and read later), against recording SQL functions named usher.checkout/usher.checkin in a scratch
// database. It checks the pool's round trips; pool_extension_test.cpp checks the real
// pg_usher functions once they exist (issue 3).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace usher::test {
namespace {

constexpr const char* kDatabase = "usher_client_lease_recording";

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
