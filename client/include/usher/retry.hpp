#pragma once
// usher::RetryPolicy and usher::retry(): run an idempotent operation again after a
// transient error, with exponential backoff and full jitter. See docs/client.md, "Retry".
//
//   usher::RetryPolicy policy;              // 3 attempts, 50 ms doubling, up to 2 s
//   policy.max_elapsed = std::chrono::seconds(5);
//   auto n = usher::retry(policy, [&](int attempt) {
//     return pool.acquire()->exec("SELECT count(*) FROM t").scalar<long>();
//   });
//
// Before retry n (n = 1 for the second attempt) it sleeps a random duration in
// [0, min(max_delay, initial_delay * multiplier^(n-1))] ("full jitter"; without jitter,
// exactly that cap). It stops, rethrowing the last error, when the predicate says the
// error is not worth retrying, after max_attempts, or when the sleep would end after
// max_elapsed from the first attempt's start.

#include <chrono>
#include <exception>
#include <functional>
#include <string_view>
#include <type_traits>
#include <utility>

namespace usher {

struct RetryPolicy {
  using Clock = std::chrono::steady_clock;
  using ms = std::chrono::milliseconds;

  int max_attempts = 3;          // attempts in all, the first included; >= 1
  ms initial_delay{50};          // the cap before the first retry; >= 0
  double multiplier = 2.0;       // the cap grows by this per retry; >= 1
  ms max_delay{2000};            // no cap above this; >= initial_delay
  bool jitter = true;            // full jitter: uniform in [0, cap]; false: the cap itself
  ms max_elapsed = ms::zero();   // 0: no limit; else no retry would start after this
  // Whether an error is worth another attempt. Empty: the error is an usher::Error
  // whose is_transient() is true (a lost connection, 40001, 40P01, 55P03, class 53,
  // PoolTimeout). Exceptions that are not std::exception are never retried.
  std::function<bool(const std::exception&)> retry_on;
  // Called before each sleep with the error, the attempt that failed (1-based) and the
  // sleep to come: for logging.
  std::function<void(const std::exception&, int attempt, Clock::duration delay)> on_retry;

  // For tests: the clock, the sleep and the random source (uniform in [0, 1)).
  // Empty: steady_clock, std::this_thread::sleep_for, a per-thread generator.
  std::function<Clock::time_point()> now;
  std::function<void(Clock::duration)> sleep;
  std::function<double()> random;

  // The upper bound of the sleep before retry n >= 1: min(max_delay,
  // initial_delay * multiplier^(n-1)).
  Clock::duration delay_cap(int retry) const;
  // The sleep before retry n for a uniform `u` in [0, 1): u * cap with jitter, else the cap.
  Clock::duration delay(int retry, double u) const;
  // Whether `e` is worth retrying under this policy (retry_on, or the default).
  bool should_retry(const std::exception& e) const;
  // Throws std::invalid_argument("<prefix><field>: ...") naming the first bad value.
  void validate(std::string_view prefix = "RetryPolicy.") const;
};

namespace detail {

// The default predicate: an usher::Error that is transient.
bool default_is_transient(const std::exception& e) noexcept;

// The loop behind retry(): runs attempt(n) for n = 1, 2, ... until it returns, or
// rethrows when the policy stops.
class RetryLoop {
 public:
  explicit RetryLoop(const RetryPolicy& policy);
  // After attempt `attempt` failed with the exception being handled: sleeps and returns
  // when another attempt should run, else rethrows it.
  void failed(int attempt);

 private:
  RetryPolicy::Clock::time_point now() const;
  const RetryPolicy& policy_;
  RetryPolicy::Clock::time_point start_;
};

template <class Fn>
decltype(auto) invoke_attempt(Fn& fn, int attempt) {
  if constexpr (std::is_invocable_v<Fn&, int>)
    return fn(attempt);
  else
    return fn();
}

template <class Fn>
using attempt_result_t =
    decltype(invoke_attempt(std::declval<std::remove_reference_t<Fn>&>(), 1));

}  // namespace detail

// fn() or fn(attempt) (1-based) until it returns, under `policy`. Validates the policy
// (std::invalid_argument). fn must be safe to run again.
template <class Fn>
detail::attempt_result_t<Fn> retry(const RetryPolicy& policy, Fn&& fn) {
  policy.validate();
  detail::RetryLoop loop(policy);
  for (int attempt = 1;; ++attempt) {
    try {
      return detail::invoke_attempt(fn, attempt);
    } catch (...) {
      loop.failed(attempt);
    }
  }
}

}  // namespace usher
