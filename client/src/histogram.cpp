// Histogram bucketing, quantiles and the cumulative view Prometheus wants.
#include "histogram.hpp"

#include <bit>
#include <cmath>
#include <vector>

namespace usher::detail {

// Values below 8 get a bucket each; above, the octave (bit width) picks 8 buckets and
// the three bits after the leading one pick the sub-bucket.
int Histogram::index(std::uint64_t ns) noexcept {
  if (ns < (1u << kSubBits)) return static_cast<int>(ns);
  int width = std::bit_width(ns);  // >= 4
  int shift = width - 1 - kSubBits;
  auto sub = static_cast<int>((ns >> shift) & ((1u << kSubBits) - 1));
  return ((width - kSubBits) << kSubBits) + sub;
}

std::uint64_t Histogram::upper_bound(int index) noexcept {
  if (index < (1 << kSubBits)) return static_cast<std::uint64_t>(index);
  int octave = index >> kSubBits;  // width - kSubBits
  int sub = index & ((1 << kSubBits) - 1);
  int shift = octave - 1;          // width - 1 - kSubBits
  if (octave + kSubBits > 64) return UINT64_MAX;
  std::uint64_t base = (std::uint64_t{1} << kSubBits | static_cast<std::uint64_t>(sub)) << shift;
  return base + ((std::uint64_t{1} << shift) - 1);
}

unsigned Histogram::shard_index() noexcept {
  static std::atomic<unsigned> next{0};
  thread_local unsigned mine = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return mine;
}

HistogramSnapshot Histogram::snapshot() const {
  std::vector<std::uint64_t> counts(kBuckets);
  HistogramSnapshot s;
  std::uint64_t sum = 0;
  for (const Shard& shard : shards_) {
    for (int i = 0; i < kBuckets; ++i) counts[i] += shard.buckets[i].load(std::memory_order_relaxed);
    sum += shard.sum.load(std::memory_order_relaxed);
  }
  for (auto c : counts) s.count += c;
  s.sum = std::chrono::nanoseconds(sum);

  auto quantile = [&](double q) {
    if (s.count == 0) return std::chrono::nanoseconds(0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(s.count)));
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts[i];
      if (seen >= rank) return std::chrono::nanoseconds(upper_bound(i));
    }
    return std::chrono::nanoseconds(upper_bound(kBuckets - 1));
  };
  s.p50 = quantile(0.50);
  s.p99 = quantile(0.99);
  s.p999 = quantile(0.999);
  s.max = quantile(1.0);

  // Power-of-two bounds from 2^10 ns (~1 us) to 2^36 ns (~69 s): bucket boundaries of
  // the fine histogram, so the cumulative counts are exact.
  std::uint64_t cumulative = 0;
  int i = 0;
  for (int k = 10; k <= 36; ++k) {
    std::uint64_t bound = (std::uint64_t{1} << k) - 1;  // largest value below 2^k
    while (i < kBuckets && upper_bound(i) <= bound) cumulative += counts[i++];
    s.cumulative.emplace_back(std::ldexp(1.0, k) / 1e9, cumulative);
  }
  return s;
}

}  // namespace usher::detail
