#pragma once
// A snapshot of a pool's counters and latency histograms.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "usher/circuit_breaker.hpp"

namespace usher {

struct HistogramSnapshot {
  std::uint64_t count = 0;
  std::chrono::nanoseconds sum{};
  // Upper bounds of the buckets that hold the quantile (resolution: 1/8 of a power of two).
  std::chrono::nanoseconds p50{}, p99{}, p999{}, max{};
  // Cumulative counts at power-of-two bounds (seconds), for Prometheus `le` buckets.
  std::vector<std::pair<double, std::uint64_t>> cumulative;
};

struct PoolStats {
  // Gauges. total == idle + in_use; pending are connections being opened. max_size and
  // min_idle are those in force: the configured ones, or those from usher.pool_advice().
  std::size_t total = 0, idle = 0, in_use = 0, waiting = 0, pending = 0, max_size = 0;
  std::size_t min_idle = 0;
  std::size_t peak_total = 0;  // the most connections ever open + being opened at once
  // Totals since the pool started.
  std::uint64_t created = 0, destroyed = 0, acquired = 0, timeouts = 0;
  std::uint64_t validation_failures = 0, connect_failures = 0, leaks = 0;
  std::uint64_t validations = 0, keepalives = 0, maintenance_runs = 0;
  HistogramSnapshot acquire_wait;  // from acquire() call to lease in hand
  HistogramSnapshot usage;         // from lease in hand to its return
  // The circuit breaker of the pool's server: state, window, totals.
  BreakerMetrics breaker;
  std::uint64_t circuit_open = 0;  // acquire() calls refused with CircuitOpen
};

}  // namespace usher
