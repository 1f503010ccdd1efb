// Connections leave the pool: idle ones above min_idle, old ones at max_lifetime,
// dead ones found by validation or keepalive. Borrowers never notice.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

TEST(PoolRetireTest, IdleConnectionsRetireOnlyAboveMinIdle) {
  auto c = test_config("retire_idle", {.min_idle = 1, .max_size = 4});
  c.idle_timeout = 100ms;
  EventRecorder events(c);
  Pool pool(c);
  {
    std::vector<Lease> leases;
    for (int i = 0; i < 4; ++i) leases.push_back(pool.acquire());
  }
  // Retire events are emitted just after the connections leave the books.
  ASSERT_TRUE(eventually([&] {
    return pool.stats().total == 1 && events.count(PoolEventType::retire, "idle") == 3;
  }));
  // min_idle stays: many more maintenance runs later, still one connection.
  auto runs = pool.stats().maintenance_runs;
  ASSERT_TRUE(eventually([&] { return pool.stats().maintenance_runs >= runs + 30; }));
  EXPECT_EQ(pool.stats().total, 1u);
  EXPECT_EQ(events.count(PoolEventType::retire, "idle"), 3u);
  Admin admin;
  EXPECT_EQ(admin.backends("usher/retire_idle"), 1);
}

TEST(PoolRetireTest, ConnectionsRetireAtMaxLifetimeAndAreReplaced) {
  auto c = test_config("retire_lifetime", {.min_idle = 2, .max_size = 2});
  c.max_lifetime = 200ms;
  c.validate_after_idle = 1h;
  EventRecorder events(c);
  Pool pool(c);
  // The first two backends, from two leases held at once: a lent connection is not
  // retired, so both are there whatever the machine's load (asking the server for the
  // pool's backends could meet one of them already replaced after 150-200 ms).
  std::vector<int> first_pids;
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    first_pids = {a->backend_pid(), b->backend_pid()};
  }
  ASSERT_NE(first_pids[0], first_pids[1]);
  Admin admin;
  ASSERT_TRUE(eventually([&] { return events.count(PoolEventType::retire, "lifetime") >= 2; }));
  ASSERT_TRUE(wait_idle(pool, 2));
  // A lease held past its connection's lifetime retires on return, not in the hand.
  {
    auto lease = pool.acquire();
    auto retired = events.count(PoolEventType::retire, "lifetime");
    std::this_thread::sleep_for(250ms);  // outlive max_lifetime while lent
    EXPECT_EQ(lease->exec("SELECT 1").scalar<int>(), 1);
    lease.release();
    EXPECT_GT(events.count(PoolEventType::retire, "lifetime"), retired);
  }
  auto s = pool.stats();
  EXPECT_LE(s.peak_total, 2u);
  EXPECT_EQ(s.created - s.destroyed, s.total);
  for (int pid : admin.backend_pids("usher/retire_lifetime"))
    EXPECT_EQ(std::count(first_pids.begin(), first_pids.end(), pid), 0) << pid;
}

TEST(PoolRetireTest, TerminatedIdleConnectionIsReplacedInvisibly) {
  auto c = test_config("retire_terminated", {.min_idle = 1, .max_size = 1});
  c.validate_after_idle = 20ms;
  c.keepalive_interval = 0ms;  // only the borrow-time validation can find it
  EventRecorder events(c);
  Pool pool(c);
  int pid;
  {
    auto lease = pool.acquire();
    pid = lease->backend_pid();
  }
  Admin admin;
  admin.terminate(pid);
  std::this_thread::sleep_for(40ms);  // past validate_after_idle: the borrow validates
  auto lease = pool.acquire();        // no exception: validation failed, replaced
  EXPECT_NE(lease->backend_pid(), pid);
  EXPECT_EQ(lease->exec("SELECT 5").scalar<int>(), 5);
  EXPECT_EQ(pool.stats().validation_failures, 1u);
  EXPECT_EQ(events.count(PoolEventType::validation_failure), 1u);
}

// Within validate_after_idle a connection is lent unchecked, so its borrower can meet a
// dead one. But one broken connection makes every other connection suspect: they are
// all validated before their next lending (a server restart kills them all at once).
TEST(PoolRetireTest, OneBrokenConnectionMakesTheOthersSuspect) {
  auto c = test_config("retire_suspect", {.min_idle = 2, .max_size = 2});
  c.validate_after_idle = 1h;
  c.keepalive_interval = 0ms;
  Pool pool(c);
  ASSERT_TRUE(wait_idle(pool, 2));
  Admin admin;
  for (int pid : admin.backend_pids("usher/retire_suspect")) admin.terminate(pid);
  {
    auto first = pool.acquire();  // unchecked: the price of the hot path
    EXPECT_THROW(first->exec("SELECT 1"), ConnectionError);
  }
  // Both connections of the pool lent at once: the other dead one is among them unless
  // it was validated, found dead and replaced on the way.
  auto a = pool.acquire();
  auto b = pool.acquire();
  EXPECT_EQ(a->exec("SELECT 6").scalar<int>(), 6);
  EXPECT_EQ(b->exec("SELECT 7").scalar<int>(), 7);
  EXPECT_EQ(pool.stats().validation_failures, 1u);
}

TEST(PoolRetireTest, KeepaliveFindsADeadIdleConnection) {
  auto c = test_config("retire_keepalive", {.min_idle = 1, .max_size = 1});
  c.keepalive_interval = 30ms;
  Pool pool(c);
  ASSERT_TRUE(wait_idle(pool, 1));
  ASSERT_TRUE(eventually([&] { return pool.stats().keepalives >= 2; }));
  EXPECT_EQ(pool.stats().validation_failures, 0u);
  Admin admin;
  auto pids = admin.backend_pids("usher/retire_keepalive");
  ASSERT_EQ(pids.size(), 1u);
  admin.terminate(pids[0]);
  // Nobody borrows: the keepalive alone notices and the opener replaces it.
  ASSERT_TRUE(eventually([&] { return pool.stats().validation_failures == 1 && pool.stats().idle == 1; }));
  ASSERT_TRUE(eventually([&] { return admin.backends("usher/retire_keepalive") == 1; }));
  EXPECT_NE(admin.backend_pids("usher/retire_keepalive")[0], pids[0]);
}

}  // namespace
}  // namespace usher::test
