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
    Shard& s = shards_[shard_index()];
    s.buckets[index(ns)].fetch_add(1, std::memory_order_relaxed);
    s.sum.fetch_add(ns, std::memory_order_relaxed);
  }
  // The hot path's "no wait at all": bucket 0, nothing added to the sum.
  void record_zero() noexcept {
    shards_[shard_index()].buckets[0].fetch_add(1, std::memory_order_relaxed);
  }

  HistogramSnapshot snapshot() const;

  // Bucket of a value, and the largest value a bucket holds (public for tests).
  static int index(std::uint64_t ns) noexcept;
  static std::uint64_t upper_bound(int index) noexcept;

 private:
  // Threads record into different shards (own cache lines), so that recording does
  // not bounce one cache line between cores on every acquire and return.
  static constexpr unsigned kShards = 8;
  struct alignas(64) Shard {
    std::array<std::atomic<std::uint64_t>, kBuckets> buckets{};
    std::atomic<std::uint64_t> sum{0};
  };
  static unsigned shard_index() noexcept;

  std::array<Shard, kShards> shards_{};
};

}  // namespace usher::detail
