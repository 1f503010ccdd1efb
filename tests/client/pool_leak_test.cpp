// Leak detection: a lease held past leak_detection_threshold is reported once, with
// the acquire() call site and the borrowing thread.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

TEST(PoolLeakTest, ReportsTheBorrowerOnceWithSourceLocationAndThread) {
  auto c = test_config("leak");
  c.leak_detection_threshold = 50ms;
  EventRecorder events(c);
  std::mutex log_mu;
  std::vector<std::string> warnings;
  c.logger = [&](LogLevel level, std::string_view m) {
    std::lock_guard lk(log_mu);
    if (level == LogLevel::warning) warnings.emplace_back(m);
  };
  Pool pool(c);

  auto quick = pool.acquire();  // returned well within the threshold: never reported
  quick.release();

  unsigned line = __LINE__ + 1;
  auto leaked = pool.acquire();
  // The maintenance thread emits the event, then logs the warning: await both.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lk(log_mu);
    return events.count(PoolEventType::leak) == 1 && !warnings.empty();
  }));
  auto leak_event = events.events();
  auto it = std::find_if(leak_event.begin(), leak_event.end(),
                         [](const auto& e) { return e.type == PoolEventType::leak; });
  ASSERT_TRUE(it->leak.has_value());
  const LeakInfo& info = *it->leak;
  EXPECT_EQ(info.where.line(), line);
  EXPECT_THAT(info.where.file_name(), ::testing::EndsWith("pool_leak_test.cpp"));
  EXPECT_EQ(info.thread, std::this_thread::get_id());
  EXPECT_GE(info.held, 50ms);
  EXPECT_EQ(info.connection_id, leaked.connection_id());
  EXPECT_EQ(info.backend_pid, leaked->backend_pid());
  EXPECT_THAT(info.holder, ::testing::HasSubstr("pool_leak_test.cpp:" + std::to_string(line)));

  {
    std::lock_guard lk(log_mu);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_THAT(warnings[0], ::testing::HasSubstr("pool_leak_test.cpp:" + std::to_string(line)));
  }

  // Reported once: many maintenance runs later, still one event; leaks() lists it.
  auto runs = pool.stats().maintenance_runs;
  ASSERT_TRUE(eventually([&] { return pool.stats().maintenance_runs >= runs + 10; }));
  EXPECT_EQ(events.count(PoolEventType::leak), 1u);
  EXPECT_EQ(pool.stats().leaks, 1u);
  auto suspects = pool.leaks();
  ASSERT_EQ(suspects.size(), 1u);
  EXPECT_EQ(suspects[0].where.line(), line);

  leaked.release();
  EXPECT_TRUE(pool.leaks().empty());
}

TEST(PoolLeakTest, ALeaseFromAnotherThreadNamesThatThread) {
  auto c = test_config("leak_thread");
  c.leak_detection_threshold = 20ms;
  Pool pool(c);
  Lease leaked;
  std::thread::id borrower;
  std::thread t([&] {
    leaked = pool.acquire();
    borrower = std::this_thread::get_id();
  });
  t.join();
  ASSERT_TRUE(eventually([&] { return !pool.leaks().empty(); }));
  EXPECT_EQ(pool.leaks()[0].thread, borrower);
  EXPECT_NE(borrower, std::this_thread::get_id());
}

TEST(PoolLeakTest, OffByDefault) {
  auto c = test_config("leak_off");
  Pool pool(c);
  auto held = pool.acquire();
  auto runs = pool.stats().maintenance_runs;
  ASSERT_TRUE(eventually([&] { return pool.stats().maintenance_runs >= runs + 5; }));
  EXPECT_TRUE(pool.leaks().empty());
  EXPECT_EQ(pool.stats().leaks, 0u);
}

}  // namespace
}  // namespace usher::test
