#pragma once
// Internal: a lock-free latency histogram. Buckets are log-linear: 8 per power of two,
// so a quantile is known to within 12.5%, recording is two relaxed atomic adds, and a
// snapshot can be taken while other threads record.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "usher/pool_stats.hpp"

namespace usher::detail {

class Histogram {
 public:
  static constexpr int kSubBits = 3;  // 8 sub-buckets per octave
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

  void record(std::chrono::nanoseconds d) noexcept {
    auto ns = static_cast<std::uint64_t>(d.count() < 0 ? 0 : d.count());
    buckets_[index(ns)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(ns, std::memory_order_relaxed);
  }
  // The hot path's "no wait at all": bucket 0, nothing added to the sum.
  void record_zero() noexcept { buckets_[0].fetch_add(1, std::memory_order_relaxed); }

  HistogramSnapshot snapshot() const;

  // Bucket of a value, and the largest value a bucket holds (public for tests).
  static int index(std::uint64_t ns) noexcept;
  static std::uint64_t upper_bound(int index) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> sum_{0};
};

}  // namespace usher::detail
