// Many threads at once: max_size holds, waiters are served in arrival order, the
// numbers add up. These tests also run under ThreadSanitizer.
#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

TEST(PoolConcurrencyTest, MaxSizeIsNeverExceededBy64Threads) {
  auto c = test_config("conc_max", {.min_idle = 2, .max_size = 4});
  Pool pool(c);
  std::atomic<int> out{0}, most_out{0}, failures{0};
  std::atomic<long> most_backends{0};
  std::atomic<bool> stop{false};
  std::thread watcher([&] {  // the server's view, from outside the pool
    Admin admin;
    while (!stop) {
      long n = admin.backends("usher/conc_max");
      long m = most_backends;
      while (n > m && !most_backends.compare_exchange_weak(m, n)) {}
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 64; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        try {
          auto lease = pool.acquire();
          int now = ++out;
          int m = most_out;
          while (now > m && !most_out.compare_exchange_weak(m, now)) {}
          lease->exec("SELECT $1::int", i);
          --out;
        } catch (const std::exception& e) {
          ++failures;
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  stop = true;
  watcher.join();
  EXPECT_EQ(failures, 0);
  EXPECT_LE(most_out, 4);
  EXPECT_GE(most_out, 2);  // it did run concurrently
  EXPECT_LE(most_backends, 4);
  auto s = pool.stats();
  EXPECT_LE(s.peak_total, 4u);
  EXPECT_EQ(s.acquired, 64u * 20u);
  EXPECT_EQ(s.usage.count, s.acquired);
  EXPECT_EQ(s.acquire_wait.count, s.acquired);
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.waiting, 0u);
  EXPECT_EQ(s.created - s.destroyed, s.total);
}

TEST(PoolConcurrencyTest, WaitersAreServedInArrivalOrder) {
  auto c = test_config("conc_fifo", {.max_size = 1});
  Pool pool(c);
  auto held = pool.acquire();
  constexpr int kWaiters = 12;
  std::mutex mu;
  std::vector<int> served;
  std::vector<std::thread> threads;
  for (int i = 0; i < kWaiters; ++i) {
    threads.emplace_back([&, i] {
      auto lease = pool.acquire();
      std::lock_guard lk(mu);
      served.push_back(i);
    });
    // The next thread starts only once this one is queued: arrival order is i.
    ASSERT_TRUE(eventually([&] { return pool.stats().waiting == static_cast<std::size_t>(i + 1); }));
  }
  held.release();
  for (auto& t : threads) t.join();
  std::vector<int> expected(kWaiters);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(served, expected);
}

TEST(PoolConcurrencyTest, StatisticsAddUpUnderLoad) {
  auto c = test_config("conc_stats", {.max_size = 3});
  c.validate_after_idle = 0ms;
  Pool pool(c);
  std::vector<std::thread> threads;
  std::atomic<int> discarded{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto lease = pool.acquire();
        if ((i + t) % 10 == 0) {
          lease.discard();
          ++discarded;
        }
        (void)pool.stats();  // readers race with writers
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(eventually([&] { return pool.stats().pending == 0; }));
  auto s = pool.stats();
  EXPECT_EQ(s.acquired, 200u);
  EXPECT_EQ(s.validations, 200u);
  EXPECT_EQ(s.destroyed, static_cast<std::uint64_t>(discarded.load()));
  EXPECT_EQ(s.created - s.destroyed, s.total);
  EXPECT_EQ(s.total, s.idle);
  EXPECT_EQ(s.acquire_wait.count, 200u);
  EXPECT_EQ(s.usage.count, 200u);
}

}  // namespace
}  // namespace usher::test
