#pragma once
// Internal: everything a pool counts, in one type (PoolCore::statistics_). The counters
// move with decisions taken under PoolCore's lock and are changed only under it; the
// histograms and the validation count are recorded without a lock, on the acquire and
// return paths. PoolCore::stats() adds the lending bag's counts and the sizes in force.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "histogram.hpp"
#include "usher/pool_stats.hpp"

namespace usher::detail {

struct PoolStatistics {
  // Under PoolCore::mu_.
  std::size_t peak_total = 0;  // the most connections open + being opened at once
  std::uint64_t created = 0, destroyed = 0, timeouts = 0;
  std::uint64_t validation_failures = 0, connect_failures = 0, leaks = 0;
  std::uint64_t keepalives = 0, maintenance_runs = 0;

  // Without a lock. Validation and checkout round trips made on borrow (RoundTrips).
  std::atomic<std::uint64_t> validations{0};
  // acquire() calls the open breaker refused (slow path only).
  std::atomic<std::uint64_t> circuit_open{0};
  // Sharded per thread: recording moves no shared cache line. The number of acquires
  // is acquire_wait's count.
  Histogram acquire_wait, usage;

  // The counters into `out`; the caller holds PoolCore::mu_.
  void counters_into(PoolStats& out) const noexcept {
    out.peak_total = peak_total;
    out.created = created;
    out.destroyed = destroyed;
    out.timeouts = timeouts;
    out.validation_failures = validation_failures;
    out.connect_failures = connect_failures;
    out.leaks = leaks;
    out.validations = validations.load(std::memory_order_relaxed);
    out.circuit_open = circuit_open.load(std::memory_order_relaxed);
    out.keepalives = keepalives;
    out.maintenance_runs = maintenance_runs;
  }
  // The histograms into `out`, without a lock.
  void histograms_into(PoolStats& out) const {
    out.acquire_wait = acquire_wait.snapshot();
    out.acquired = out.acquire_wait.count;  // one record per successful acquire
    out.usage = usage.snapshot();
  }
};

}  // namespace usher::detail
