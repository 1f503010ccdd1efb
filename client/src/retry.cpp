// usher::RetryPolicy: the backoff arithmetic and the loop's decisions (retry.hpp).
#include "usher/retry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <thread>

#include "usher/errors.hpp"

namespace usher {

RetryPolicy::Clock::duration RetryPolicy::delay_cap(int retry) const {
  // In double nanoseconds, so that multiplier^n cannot overflow before the min.
  double cap_ns = std::chrono::duration<double, std::nano>(max_delay).count();
  double ns = std::chrono::duration<double, std::nano>(initial_delay).count() *
              std::pow(multiplier, std::max(0, retry - 1));
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::nano>(std::min(ns, cap_ns)));
}

RetryPolicy::Clock::duration RetryPolicy::delay(int retry, double u) const {
  auto cap = delay_cap(retry);
  if (!jitter) return cap;
  u = std::clamp(u, 0.0, 1.0);
  return std::chrono::duration_cast<Clock::duration>(cap * u);
}

bool RetryPolicy::should_retry(const std::exception& e) const {
  return retry_on ? retry_on(e) : detail::default_is_transient(e);
}

void RetryPolicy::validate(std::string_view prefix) const {
  auto bad = [&](std::string_view field, const std::string& why) {
    throw std::invalid_argument(fmt::format("{}{}: {}", prefix, field, why));
  };
  if (max_attempts < 1) bad("max_attempts", fmt::format("must be at least 1 (got {})", max_attempts));
  if (initial_delay.count() < 0)
    bad("initial_delay", fmt::format("must not be negative (got {} ms)", initial_delay.count()));
  if (!(multiplier >= 1.0) || !std::isfinite(multiplier))
    bad("multiplier", fmt::format("must be a finite number of at least 1 (got {})", multiplier));
  if (max_delay < initial_delay)
    bad("max_delay", fmt::format("must not be below initial_delay ({} ms) (got {} ms)",
                                 initial_delay.count(), max_delay.count()));
  if (max_elapsed.count() < 0)
    bad("max_elapsed", fmt::format("must not be negative (got {} ms)", max_elapsed.count()));
}

namespace detail {

bool default_is_transient(const std::exception& e) noexcept { return usher::is_transient(e); }

RetryLoop::RetryLoop(const RetryPolicy& policy) : policy_(policy), start_(now()) {}

RetryPolicy::Clock::time_point RetryLoop::now() const {
  return policy_.now ? policy_.now() : RetryPolicy::Clock::now();
}

void RetryLoop::failed(int attempt) {
  try {
    throw;
  } catch (const std::exception& e) {
    if (attempt >= policy_.max_attempts || !policy_.should_retry(e)) throw;
    double u;
    if (policy_.random) {
      u = policy_.random();
    } else {
      thread_local std::mt19937_64 rng{std::random_device{}()};
      u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    }
    auto pause = policy_.delay(attempt, u);
    if (policy_.max_elapsed.count() > 0 && now() + pause - start_ > policy_.max_elapsed) throw;
    if (policy_.on_retry) policy_.on_retry(e, attempt, pause);
    if (policy_.sleep)
      policy_.sleep(pause);
    else
      std::this_thread::sleep_for(pause);
  }
  // Not a std::exception: never retried.
}

}  // namespace detail
}  // namespace usher
