// The server stops and starts while 16 threads work. The pool must recover by itself,
// hand out no dead connection once the server is back, and leak nothing.
//
// Needs a server of its own: tests/suites/client.sh runs this test against a separate
// cluster and sets USHER_TEST_SERVER_STOP / USHER_TEST_SERVER_START to the harness
// commands that stop it and start it again on the same port.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

TEST(PoolRestartTest, RecoversFromAServerRestartUnder16Threads) {
  const char* stop_cmd = std::getenv("USHER_TEST_SERVER_STOP");
  const char* start_cmd = std::getenv("USHER_TEST_SERVER_START");
  if (!stop_cmd || !start_cmd)
    GTEST_SKIP() << "USHER_TEST_SERVER_STOP/START not set (tests/suites/client.sh sets them)";

  auto c = test_config("restart", {.min_idle = 4, .max_size = 8});
  c.acquire_timeout = 300ms;
  c.connect_timeout = 2s;
  EventRecorder events(c);
  Pool pool(c);

  // Phase 0: before the stop, 1: server down and coming back, 2: recovered. Errors are
  // charged to the phase in which the connection was acquired.
  std::atomic<int> phase{0};
  std::atomic<long> ok{0}, errors_before_recovery{0}, errors_after_recovery{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> late_errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      while (!stop) {
        int acquired_in = phase;
        try {
          auto lease = pool.acquire();
          acquired_in = phase;
          if (lease->exec("SELECT $1::int", t).scalar<int>() != t) throw std::logic_error("wrong answer");
          ++ok;
        } catch (const std::exception& e) {
          if (acquired_in == 2) {
            ++errors_after_recovery;
            std::lock_guard lk(mu);
            late_errors.emplace_back(e.what());
          } else {
            ++errors_before_recovery;
          }
          std::this_thread::sleep_for(5ms);
        }
      }
    });
  }
  ASSERT_TRUE(eventually([&] { return ok >= 200; }));
  phase = 1;
  ASSERT_EQ(std::system(stop_cmd), 0);
  ASSERT_TRUE(eventually([&] { return errors_before_recovery > 0; }));
  ASSERT_EQ(std::system(start_cmd), 0);
  // Recovered: queries succeed again, without anyone resetting the pool.
  long at_start = ok;
  ASSERT_TRUE(eventually([&] { return ok >= at_start + 100; }));
  phase = 2;
  long at_recovery = ok;
  ASSERT_TRUE(eventually([&] { return ok >= at_recovery + 500; }));
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(errors_after_recovery, 0);
  for (const auto& e : late_errors) ADD_FAILURE() << "after recovery: " << e;
  EXPECT_GT(events.count(PoolEventType::connect_failure), 0u);  // the outage was seen

  // Nothing leaked: every connection is back, the books balance, the server agrees.
  auto s = pool.stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.waiting, 0u);
  EXPECT_EQ(s.created - s.destroyed, s.total);
  EXPECT_LE(s.peak_total, 8u);
  Admin admin;
  EXPECT_TRUE(eventually([&] {
    return admin.backends("usher/restart") == static_cast<long>(pool.stats().total);
  }));
  EXPECT_TRUE(pool.close(1s).clean());
}

}  // namespace
}  // namespace usher::test
