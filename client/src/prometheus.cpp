// Pool::prometheus(): the text exposition format, one `pool` label on every series,
// written with the writer usher.metrics() uses too (common/prometheus_text.hpp), which
// escapes label values and HELP text.
#include "common/prometheus_text.hpp"  // common/ before libpq (common/pure_cpp.hpp)

#include <fmt/format.h>

#include "pool_core.hpp"
#include "usher/pool.hpp"

namespace usher {
namespace {

using prometheus::TextWriter;

void histogram(TextWriter& out, std::string_view name, std::string_view help,
               std::string_view pool, const HistogramSnapshot& h) {
  out.family(name, "histogram", help);
  for (const auto& [le, count] : h.cumulative) {
    std::string bound = fmt::format("{:g}", le);
    out.sample_as("_bucket", {{"pool", pool}, {"le", bound}}, static_cast<double>(count));
  }
  out.sample_as("_bucket", {{"pool", pool}, {"le", "+Inf"}}, static_cast<double>(h.count));
  out.sample_as("_sum", {{"pool", pool}}, std::chrono::duration<double>(h.sum).count());
  out.sample_as("_count", {{"pool", pool}}, static_cast<double>(h.count));
}

}  // namespace

std::string Pool::prometheus() const {
  PoolStats s = stats();
  const std::string& pool = config().name;
  TextWriter out;

  out.family("usher_pool_connections", "gauge", "Open connections of the pool, by state.");
  out.sample({{"pool", pool}, {"state", "idle"}}, static_cast<double>(s.idle));
  out.sample({{"pool", pool}, {"state", "in_use"}}, static_cast<double>(s.in_use));
  out.sample({{"pool", pool}, {"state", "pending"}}, static_cast<double>(s.pending));

  auto one = [&](std::string_view name, std::string_view type, std::string_view help, std::uint64_t v) {
    out.family(name, type, help);
    out.sample({{"pool", pool}}, static_cast<double>(v));
  };
  one("usher_pool_max_connections", "gauge",
      "The pool's max_size in force (configured, or from usher.pool_advice()).", s.max_size);
  one("usher_pool_waiting_threads", "gauge", "Threads waiting in acquire().", s.waiting);
  one("usher_pool_connections_created_total", "counter", "Connections opened.", s.created);
  one("usher_pool_connections_destroyed_total", "counter", "Connections closed.", s.destroyed);
  one("usher_pool_acquires_total", "counter", "Leases handed out.", s.acquired);
  one("usher_pool_acquire_timeouts_total", "counter", "acquire() calls that timed out.", s.timeouts);
  one("usher_pool_validation_failures_total", "counter",
      "Connections that failed validation or keepalive and were replaced.", s.validation_failures);
  one("usher_pool_connect_failures_total", "counter", "Failed attempts to open a connection.",
      s.connect_failures);
  one("usher_pool_leaks_total", "counter", "Leases reported as possible leaks.", s.leaks);

  out.family("usher_pool_breaker_state", "gauge",
             "The circuit breaker of the pool's server: 1 for the state it is in.");
  for (auto state : {BreakerState::closed, BreakerState::open, BreakerState::half_open})
    out.sample({{"pool", pool}, {"state", to_string(state)}}, s.breaker.state == state ? 1.0 : 0.0);
  out.family("usher_pool_breaker_transitions_total", "counter",
             "Changes of state of the circuit breaker, by the state entered.");
  out.sample({{"pool", pool}, {"to", "open"}}, static_cast<double>(s.breaker.opened_total));
  out.sample({{"pool", pool}, {"to", "half_open"}}, static_cast<double>(s.breaker.half_opened_total));
  out.sample({{"pool", pool}, {"to", "closed"}}, static_cast<double>(s.breaker.closed_total));
  out.family("usher_pool_breaker_calls_total", "counter",
             "Attempts to reach the server (connects, validations, keepalives) the breaker "
             "counted, by outcome; slow ones are counted in either and again as slow.");
  out.sample({{"pool", pool}, {"outcome", "success"}}, static_cast<double>(s.breaker.successful_total));
  out.sample({{"pool", pool}, {"outcome", "failure"}}, static_cast<double>(s.breaker.failed_total));
  out.sample({{"pool", pool}, {"outcome", "slow"}}, static_cast<double>(s.breaker.slow_total));
  out.family("usher_pool_breaker_failure_rate_percent", "gauge",
             "Failure rate over the breaker's window (-1: fewer calls than minimum_calls).");
  out.sample({{"pool", pool}}, s.breaker.failure_rate);
  one("usher_pool_circuit_open_total", "counter",
      "acquire() calls refused with CircuitOpen while the breaker was open.", s.circuit_open);

  histogram(out, "usher_pool_acquire_wait_seconds", "Time from acquire() to a lease in hand.", pool,
            s.acquire_wait);
  histogram(out, "usher_pool_usage_seconds", "Time a lease was held.", pool, s.usage);
  return out.take();
}

}  // namespace usher
