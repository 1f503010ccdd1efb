// close(0ms) and ~Pool do not wait for a connection attempt in flight: the attempt is
// abandoned. The attempt goes to a host that accepts TCP and never answers, with a
// connect_timeout of 60 s, so a close that waited would take a minute.
#include <gtest/gtest.h>

#include <memory>

#include "test_support.hpp"

namespace usher::test {
namespace {

using Clock = std::chrono::steady_clock;

PoolConfig silent_pool(const std::string& name, const SilentServer& silent) {
  auto c = test_config(name);
  c.conninfo = "host=127.0.0.1 port=" + std::to_string(silent.port());
  c.min_idle = 1;  // the opener starts an attempt at once
  c.connect_timeout = 60s;
  return c;
}

TEST(PoolCloseTest, CloseAbandonsAConnectionAttemptInFlight) {
  SilentServer silent;
  Pool pool(silent_pool("close_silent", silent));
  ASSERT_TRUE(silent.wait_for_client());  // the attempt is under way
  ASSERT_EQ(pool.stats().pending, 1u);
  auto started = Clock::now();
  auto report = pool.close(0ms);
  EXPECT_LT(Clock::now() - started, 10s);  // a liveness bound, far from the 60 s
  EXPECT_EQ(report.outstanding, 0u);
  EXPECT_EQ(pool.stats().created, 0u);
}

TEST(PoolCloseTest, DestructorAbandonsAConnectionAttemptInFlight) {
  SilentServer silent;
  auto pool = std::make_unique<Pool>(silent_pool("close_silent_dtor", silent));
  ASSERT_TRUE(silent.wait_for_client());
  auto started = Clock::now();
  pool.reset();
  EXPECT_LT(Clock::now() - started, 10s);
}

// A borrower waiting for that attempt is told the pool closed.
TEST(PoolCloseTest, AWaiterOfTheAbandonedAttemptGetsPoolClosed) {
  SilentServer silent;
  auto c = silent_pool("close_silent_waiter", silent);
  Pool pool(c);
  ASSERT_TRUE(silent.wait_for_client());
  std::thread closer([&] {
    EXPECT_TRUE(eventually([&] { return pool.stats().waiting == 1; }));
    pool.close(0ms);
  });
  EXPECT_THROW(pool.acquire(), PoolClosed);
  closer.join();
}

}  // namespace
}  // namespace usher::test
