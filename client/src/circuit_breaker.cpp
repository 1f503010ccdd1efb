// usher::CircuitBreaker: the state machine and its sliding windows (circuit_breaker.hpp).
#include "usher/circuit_breaker.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "usher/errors.hpp"

namespace usher {

std::string_view to_string(BreakerState state) noexcept {
  switch (state) {
    case BreakerState::closed: return "closed";
    case BreakerState::open: return "open";
    case BreakerState::half_open: return "half_open";
  }
  return "unknown";
}

void CircuitBreakerConfig::validate(std::string_view prefix) const {
  auto bad = [&](std::string_view field, const std::string& why) {
    throw std::invalid_argument(fmt::format("{}{}: {}", prefix, field, why));
  };
  if (window != SlidingWindow::count_based && window != SlidingWindow::time_based)
    bad("window", fmt::format("{} is not a SlidingWindow value", static_cast<int>(window)));
  if (window_size < 1 || window_size > 100000)
    bad("window_size", fmt::format("must be 1 to 100000 (got {})", window_size));
  if (minimum_calls < 1) bad("minimum_calls", "must be at least 1 (got 0)");
  auto percent = [&](std::string_view field, double v) {
    if (!(v > 0 && v <= 100)) bad(field, fmt::format("must be a percentage in (0, 100] (got {})", v));
  };
  percent("failure_rate_threshold", failure_rate_threshold);
  percent("slow_call_rate_threshold", slow_call_rate_threshold);
  auto positive = [&](std::string_view field, ms v) {
    if (v.count() <= 0) bad(field, fmt::format("must be greater than 0 (got {} ms)", v.count()));
  };
  positive("slow_call_duration", slow_call_duration);
  positive("wait_in_open", wait_in_open);
  if (permitted_calls_in_half_open < 1)
    bad("permitted_calls_in_half_open", "must be at least 1 (got 0)");
  positive("max_wait_in_half_open", max_wait_in_half_open);
}

CircuitBreaker::CircuitBreaker(CircuitBreakerConfig config, Listener listener, Now now)
    : config_((config.validate(), std::move(config))),
      listener_(std::move(listener)),
      now_(std::move(now)) {
  if (config_.window == SlidingWindow::count_based)
    ring_.resize(config_.window_size);
  else
    buckets_.resize(config_.window_size);
}

bool CircuitBreaker::try_acquire_slow() {
  std::vector<BreakerTransition> transitions;
  bool permitted = false;
  {
    std::lock_guard lk(mu_);
    advance_locked(now(), transitions);
    switch (state_.load(std::memory_order_relaxed)) {
      case BreakerState::closed:
        permitted = true;
        break;
      case BreakerState::open:
        break;
      case BreakerState::half_open:
        if (half_open_permits_ < config_.permitted_calls_in_half_open) {
          ++half_open_permits_;
          permitted = true;
        }
        break;
    }
    if (!permitted) ++totals_.not_permitted_total;
  }
  notify(transitions);
  return permitted;
}

void CircuitBreaker::on_success(Clock::duration duration) { record(false, duration); }
void CircuitBreaker::on_failure(Clock::duration duration) { record(true, duration); }

void CircuitBreaker::release() {
  std::lock_guard lk(mu_);
  if (state_.load(std::memory_order_relaxed) == BreakerState::half_open && half_open_permits_ > 0)
    --half_open_permits_;
}

void CircuitBreaker::record(bool failed, Clock::duration duration) {
  bool slow = duration >= config_.slow_call_duration;
  auto t = now();
  std::vector<BreakerTransition> transitions;
  {
    std::lock_guard lk(mu_);
    advance_locked(t, transitions);
    (failed ? totals_.failed_total : totals_.successful_total)++;
    if (slow) ++totals_.slow_total;
    auto rates = [&](std::size_t calls, std::size_t bad, std::size_t slow_calls) -> std::string {
      double failure = 100.0 * static_cast<double>(bad) / static_cast<double>(calls);
      double slowness = 100.0 * static_cast<double>(slow_calls) / static_cast<double>(calls);
      if (failure >= config_.failure_rate_threshold)
        return fmt::format("failure rate {:.1f}% >= {:.1f}% over {} calls", failure,
                           config_.failure_rate_threshold, calls);
      if (slowness >= config_.slow_call_rate_threshold)
        return fmt::format("slow-call rate {:.1f}% >= {:.1f}% over {} calls (slow: {} ms or more)",
                           slowness, config_.slow_call_rate_threshold, calls,
                           config_.slow_call_duration.count());
      return {};
    };
    switch (state_.load(std::memory_order_relaxed)) {
      case BreakerState::closed: {
        window_add_locked({failed, slow}, t);
        if (calls_ >= config_.minimum_calls) {
          auto why = rates(calls_, failed_, slow_);
          if (!why.empty()) transition_locked(BreakerState::open, std::move(why), t, transitions);
        }
        break;
      }
      case BreakerState::open:
        break;  // a call let through before it opened: too late to count
      case BreakerState::half_open: {
        ++half_open_calls_;
        if (failed) ++half_open_failed_;
        if (slow) ++half_open_slow_;
        if (half_open_calls_ >= config_.permitted_calls_in_half_open) {
          auto why = rates(half_open_calls_, half_open_failed_, half_open_slow_);
          if (why.empty())
            transition_locked(BreakerState::closed,
                              fmt::format("{} probe calls succeeded", half_open_calls_), t, transitions);
          else
            transition_locked(BreakerState::open, "probes: " + why, t, transitions);
        }
        break;
      }
    }
  }
  notify(transitions);
}

BreakerState CircuitBreaker::state() {
  if (state_.load(std::memory_order_acquire) == BreakerState::closed) return BreakerState::closed;
  poll();
  return state_.load(std::memory_order_acquire);
}

CircuitBreaker::Clock::time_point CircuitBreaker::poll() {
  std::vector<BreakerTransition> transitions;
  Clock::time_point next;
  {
    std::lock_guard lk(mu_);
    advance_locked(now(), transitions);
    next = next_transition_;
  }
  notify(transitions);
  return next;
}

BreakerMetrics CircuitBreaker::metrics() {
  std::vector<BreakerTransition> transitions;
  BreakerMetrics m;
  {
    std::lock_guard lk(mu_);
    auto t = now();
    advance_locked(t, transitions);
    m = totals_;
    m.state = state_.load(std::memory_order_relaxed);
    m.next_transition = next_transition_;
    if (m.state == BreakerState::half_open) {
      m.buffered_calls = half_open_calls_;
      m.failed_calls = half_open_failed_;
      m.slow_calls = half_open_slow_;
    } else {
      if (config_.window == SlidingWindow::time_based) window_expire_locked(t);
      m.buffered_calls = calls_;
      m.failed_calls = failed_;
      m.slow_calls = slow_;
    }
    std::size_t needed = m.state == BreakerState::half_open ? config_.permitted_calls_in_half_open
                                                            : config_.minimum_calls;
    if (m.buffered_calls > 0 && m.buffered_calls >= needed) {
      m.failure_rate = 100.0 * static_cast<double>(m.failed_calls) / static_cast<double>(m.buffered_calls);
      m.slow_call_rate = 100.0 * static_cast<double>(m.slow_calls) / static_cast<double>(m.buffered_calls);
    }
  }
  notify(transitions);
  return m;
}

void CircuitBreaker::reset() {
  std::vector<BreakerTransition> transitions;
  {
    std::lock_guard lk(mu_);
    if (state_.load(std::memory_order_relaxed) != BreakerState::closed)
      transition_locked(BreakerState::closed, "reset", now(), transitions);
    window_clear_locked();
  }
  notify(transitions);
}

void CircuitBreaker::force_open(std::string reason) {
  std::vector<BreakerTransition> transitions;
  {
    std::lock_guard lk(mu_);
    transition_locked(BreakerState::open, std::move(reason), now(), transitions);
  }
  notify(transitions);
}

void CircuitBreaker::advance_locked(Clock::time_point t, std::vector<BreakerTransition>& out) {
  // At most two steps: OPEN -> HALF_OPEN, and (after a long pause) HALF_OPEN -> OPEN is
  // left for the next look, so that a half-open turn is always offered.
  auto s = state_.load(std::memory_order_relaxed);
  if (s == BreakerState::open && t >= next_transition_) {
    transition_locked(BreakerState::half_open,
                      fmt::format("wait in open ({} ms) elapsed", config_.wait_in_open.count()), t, out);
  } else if (s == BreakerState::half_open && t >= next_transition_) {
    transition_locked(BreakerState::open,
                      fmt::format("max wait in half-open ({} ms) elapsed with {} of {} probe calls ended",
                                  config_.max_wait_in_half_open.count(), half_open_calls_,
                                  config_.permitted_calls_in_half_open),
                      t, out);
  }
}

void CircuitBreaker::transition_locked(BreakerState to, std::string reason, Clock::time_point t,
                                       std::vector<BreakerTransition>& out) {
  auto from = state_.load(std::memory_order_relaxed);
  half_open_permits_ = half_open_calls_ = half_open_failed_ = half_open_slow_ = 0;
  switch (to) {
    case BreakerState::closed:
      ++totals_.closed_total;
      next_transition_ = Clock::time_point::max();
      window_clear_locked();
      break;
    case BreakerState::open:
      ++totals_.opened_total;
      next_transition_ = t + config_.wait_in_open;
      break;
    case BreakerState::half_open:
      ++totals_.half_opened_total;
      next_transition_ = t + config_.max_wait_in_half_open;
      break;
  }
  state_.store(to, std::memory_order_release);
  if (from != to) out.push_back({from, to, std::move(reason)});
}

void CircuitBreaker::window_add_locked(Outcome o, Clock::time_point t) {
  if (config_.window == SlidingWindow::count_based) {
    if (ring_size_ == ring_.size()) {  // the oldest leaves
      const Outcome& old = ring_[ring_next_];
      --calls_;
      if (old.failed) --failed_;
      if (old.slow) --slow_;
    } else {
      ++ring_size_;
    }
    ring_[ring_next_] = o;
    ring_next_ = (ring_next_ + 1) % ring_.size();
  } else {
    window_expire_locked(t);
    auto epoch = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    Bucket& b = buckets_[static_cast<std::size_t>(epoch) % buckets_.size()];
    b.epoch = epoch;  // window_expire_locked emptied it if it held an older second
    ++b.calls;
    if (o.failed) ++b.failed;
    if (o.slow) ++b.slow;
  }
  ++calls_;
  if (o.failed) ++failed_;
  if (o.slow) ++slow_;
}

void CircuitBreaker::window_expire_locked(Clock::time_point t) {
  // Buckets of seconds more than window_size - 1 before `t` leave the window.
  auto epoch = std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
  auto oldest = epoch - static_cast<std::int64_t>(buckets_.size()) + 1;
  for (auto& b : buckets_) {
    if (b.epoch >= 0 && (b.epoch < oldest || b.epoch > epoch)) {
      calls_ -= b.calls;
      failed_ -= b.failed;
      slow_ -= b.slow;
      b = Bucket{};
    }
  }
}

void CircuitBreaker::window_clear_locked() {
  std::fill(ring_.begin(), ring_.end(), Outcome{false, false});
  ring_next_ = ring_size_ = 0;
  std::fill(buckets_.begin(), buckets_.end(), Bucket{});
  calls_ = failed_ = slow_ = 0;
}

void CircuitBreaker::notify(std::vector<BreakerTransition>& transitions) const {
  if (!listener_) return;
  for (const auto& t : transitions) {
    try {
      listener_(t);
    } catch (...) {
    }
  }
}

void CircuitBreaker::throw_open() {
  Clock::time_point next;
  BreakerState s;
  {
    std::lock_guard lk(mu_);
    next = next_transition_;
    s = state_.load(std::memory_order_relaxed);
  }
  detail::throw_circuit_open("circuit breaker", s,
                             std::chrono::duration_cast<std::chrono::milliseconds>(next - now()));
}

namespace detail {

void throw_circuit_open(std::string_view what, BreakerState state, std::chrono::milliseconds left) {
  if (state == BreakerState::half_open)
    throw CircuitOpen(fmt::format("{} is half-open and its probe calls are all taken", what));
  throw CircuitOpen(fmt::format("{} is open: calls are refused for another {} ms", what,
                                std::max<long long>(0, left.count())));
}

}  // namespace detail
}  // namespace usher
