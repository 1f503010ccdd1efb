// The pool's circuit breaker (PoolConfig::breaker): what feeds it, what it refuses, and
// what the pool does when it changes state. The calls are the pool's attempts to reach
// its server: connection attempts (pool_opener.cpp), validations on borrow
// (pool_core.cpp) and keepalives (pool_maintenance.cpp). See docs/client.md.
#include <fmt/format.h>

#include "pool_core.hpp"
#include "usher/errors.hpp"

namespace usher::detail {

void PoolCore::check_breaker() {
  // The time-based transitions due now happen here (OPEN -> HALF_OPEN after
  // wait_in_open). HALF_OPEN lets borrowers in: they wait in line for what the probes
  // (the opener's connection attempts, validations) bring, within their deadline.
  if (breaker_.state() != BreakerState::open) return;
  statistics_.circuit_open.fetch_add(1, std::memory_order_relaxed);
  auto m = breaker_.metrics();
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(m.next_transition - Clock::now());
  std::string message;
  {
    std::lock_guard lk(mu_);
    message = circuit_open_message_locked(
        fmt::format("open, no connection attempted (retry in {} ms)", std::max<long long>(0, left.count())));
  }
  throw CircuitOpen(message);
}

std::string PoolCore::circuit_open_message_locked(std::string_view what) const {
  std::string s = fmt::format("pool \"{}\": circuit breaker {}", config_.name, what);
  if (connect_failing_) s += fmt::format("; last connect error: {}", last_connect_error_);
  return s;
}

void PoolCore::refuse_locked() {
  bag_.refuse(connect_refusal_ ? connect_refusal_ : breaker_refusal_);
}

void PoolCore::breaker_outcome(bool ok, Clock::duration took) {
  if (!config_.breaker_enabled) return;
  ok ? breaker_.on_success(took) : breaker_.on_failure(took);
}

void PoolCore::on_breaker_transition(const BreakerTransition& t) {
  std::string reason = fmt::format("{} -> {}: {}", to_string(t.from), to_string(t.to), t.reason);
  {
    std::lock_guard lk(mu_);
    if (t.to == BreakerState::open) {
      // Borrowers already in line get CircuitOpen too, when nothing is open to wait for
      // (LendingBag::refuse); the opener's permanent error, if any, comes first.
      breaker_refusal_ = std::make_exception_ptr(CircuitOpen(
          circuit_open_message_locked(fmt::format("opened while waiting ({})", t.reason))));
      // The connections still idle are suspect: validated before they are lent again.
      round_trips_.mark_suspect();
    } else {
      breaker_refusal_ = nullptr;
    }
    refuse_locked();
    opener_cv_.notify_all();  // its wait for the breaker ends, or starts
  }
  emit(PoolEventType::breaker, 0, reason, nullptr, nullptr, &t);
  log(t.to == BreakerState::closed ? LogLevel::info : LogLevel::warning,
      fmt::format("pool \"{}\": circuit breaker {}", config_.name, reason));
}

}  // namespace usher::detail
