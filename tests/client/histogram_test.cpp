// The latency histogram: bucket bounds, quantiles, the cumulative view; and the
// lifetime jitter. Pure functions: no server needed.
#include <gtest/gtest.h>

#include <random>
#include <source_location>
#include <thread>

#include "histogram.hpp"
#include "pool_core.hpp"

namespace usher::detail {
namespace {

TEST(HistogramTest, EveryValueFallsInsideItsBucket) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) {
    std::uint64_t v = rng() >> (rng() % 64);
    int idx = Histogram::index(v);
    ASSERT_LT(idx, Histogram::kBuckets);
    ASSERT_LE(v, Histogram::upper_bound(idx)) << v;
    if (idx > 0) ASSERT_GT(v, Histogram::upper_bound(idx - 1)) << v;
  }
  EXPECT_EQ(Histogram::index(0), 0);
  EXPECT_EQ(Histogram::index(UINT64_MAX), Histogram::kBuckets - 1);
}

TEST(HistogramTest, ResolutionIsAnEighthOfAnOctave) {
  for (std::uint64_t v : {100ull, 12345ull, 1000000ull, 987654321ull}) {
    auto bound = Histogram::upper_bound(Histogram::index(v));
    EXPECT_LE(static_cast<double>(bound), static_cast<double>(v) * 1.125 + 1) << v;
  }
}

TEST(HistogramTest, QuantilesOfAKnownDistribution) {
  Histogram h;
  for (int i = 1; i <= 1000; ++i) h.record(std::chrono::microseconds(i));  // 1..1000 us
  auto s = h.snapshot();
  EXPECT_EQ(s.count, 1000u);
  EXPECT_EQ(s.sum, std::chrono::microseconds(500500));
  auto within = [](std::chrono::nanoseconds got, double want_us) {
    double us = static_cast<double>(got.count()) / 1000.0;
    return us >= want_us && us <= want_us * 1.125 + 0.001;
  };
  EXPECT_TRUE(within(s.p50, 500)) << s.p50.count();
  EXPECT_TRUE(within(s.p99, 990)) << s.p99.count();
  EXPECT_TRUE(within(s.p999, 999)) << s.p999.count();
  EXPECT_TRUE(within(s.max, 1000)) << s.max.count();
}

TEST(HistogramTest, CumulativeBucketsAreMonotoneAndComplete) {
  Histogram h;
  h.record_zero();
  h.record(std::chrono::microseconds(3));
  h.record(std::chrono::milliseconds(20));
  h.record(std::chrono::seconds(2));
  auto s = h.snapshot();
  std::uint64_t prev = 0;
  double prev_le = 0;
  for (auto [le, n] : s.cumulative) {
    EXPECT_GE(n, prev);
    EXPECT_GT(le, prev_le);
    prev = n;
    prev_le = le;
  }
  EXPECT_EQ(s.cumulative.front().second, 1u);  // only the zero is below ~1 us
  EXPECT_EQ(prev, 4u);
}

TEST(ExpiryTest, JitterTakesAtMostAQuarter) {
  std::mt19937_64 rng(1);
  auto created = Clock::now();
  auto lifetime = std::chrono::milliseconds(60000);
  Clock::time_point earliest = Clock::time_point::max(), latest = Clock::time_point::min();
  for (int i = 0; i < 10000; ++i) {
    auto e = expiry(created, lifetime, rng);
    ASSERT_LE(e, created + lifetime);
    ASSERT_GE(e, created + lifetime * 3 / 4);
    earliest = std::min(earliest, e);
    latest = std::max(latest, e);
  }
  // Spread over (almost) the whole quarter, not a constant.
  EXPECT_LT(earliest - created, lifetime * 76 / 100);
  EXPECT_GT(latest - created, lifetime * 99 / 100);
  EXPECT_EQ(expiry(created, std::chrono::milliseconds(0), rng), Clock::time_point::max());
}

}  // namespace
}  // namespace usher::detail

namespace usher::detail {
namespace {

TEST(HolderTextTest, FitsPgUshersSixtyFourBytesKeepingTheCallSite) {
  auto here = std::source_location::current();
  auto tid = std::this_thread::get_id();
  std::string short_name = holder_text("orders", here, tid);
  EXPECT_TRUE(short_name.starts_with("orders/histogram_test.cpp:" + std::to_string(here.line()) + " thread "))
      << short_name;
  std::string long_name = holder_text(std::string(100, 'p'), here, tid);
  EXPECT_LE(long_name.size(), 63u);
  EXPECT_NE(long_name.find("histogram_test.cpp:" + std::to_string(here.line())), std::string::npos) << long_name;
}

}  // namespace
}  // namespace usher::detail
