#pragma once
// usher::CircuitBreaker: stops calling something that keeps failing, and tries it again
// now and then (resilience4j's model). See docs/client.md, "Circuit breaker".
//
//   CLOSED     calls pass; their outcomes fill a sliding window (the last window_size
//              calls, or the calls of the last window_size seconds). Once it holds at
//              least minimum_calls, a failure rate >= failure_rate_threshold or a
//              slow-call rate >= slow_call_rate_threshold opens the breaker.
//   OPEN       calls are refused (try_acquire() false; the pool throws CircuitOpen)
//              until wait_in_open has passed, then HALF_OPEN.
//   HALF_OPEN  permitted_calls_in_half_open calls pass as probes; once that many have
//              an outcome, the same two rates over them decide: CLOSED (window emptied)
//              or OPEN again. If they have not all ended within max_wait_in_half_open
//              (a probe that never reports), it opens again: it cannot stay half-open
//              forever.
//
// Time-based transitions happen when the breaker is looked at (try_acquire, state,
// metrics, poll), on the thread that looks. Thread-safe. try_acquire() while CLOSED is
// one atomic load; outcomes are recorded under a mutex.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace usher {

enum class BreakerState : std::uint8_t { closed, open, half_open };
std::string_view to_string(BreakerState state) noexcept;

enum class SlidingWindow : std::uint8_t {
  count_based,  // the last window_size calls
  time_based,   // the calls that ended in the last window_size seconds
};

struct CircuitBreakerConfig {
  using ms = std::chrono::milliseconds;
  SlidingWindow window = SlidingWindow::count_based;
  std::size_t window_size = 20;        // calls, or seconds (time_based); 1 to 100000
  std::size_t minimum_calls = 5;       // in the window before the rates count; >= 1
  double failure_rate_threshold = 50;  // percent, (0, 100]
  double slow_call_rate_threshold = 100;  // percent, (0, 100]; 100: only all-slow opens
  ms slow_call_duration = std::chrono::seconds(5);  // a call this long or longer is slow; > 0
  ms wait_in_open = std::chrono::seconds(5);        // > 0
  std::size_t permitted_calls_in_half_open = 2;     // >= 1
  ms max_wait_in_half_open = std::chrono::seconds(30);  // > 0: never half-open forever

  // Throws std::invalid_argument("<prefix><field>: ...") naming the first bad value.
  void validate(std::string_view prefix = "CircuitBreakerConfig.") const;
};

// One change of state, as given to the listener.
struct BreakerTransition {
  BreakerState from, to;
  std::string reason;  // e.g. "failure rate 60.0% >= 50.0% over 5 calls", "wait in open elapsed"
};

struct BreakerMetrics {
  BreakerState state = BreakerState::closed;
  // Over the calls now in the window (CLOSED) or the probes so far (HALF_OPEN); -1 while
  // fewer than minimum_calls (CLOSED) or not all probes ended (HALF_OPEN).
  double failure_rate = -1, slow_call_rate = -1;
  std::size_t buffered_calls = 0, failed_calls = 0, slow_calls = 0;
  // Totals since construction.
  std::uint64_t successful_total = 0, failed_total = 0, slow_total = 0;
  std::uint64_t not_permitted_total = 0;  // try_acquire() refused
  std::uint64_t opened_total = 0, half_opened_total = 0, closed_total = 0;  // transitions into
  // While OPEN: when it goes half-open. While HALF_OPEN: when it gives up on the probes.
  std::chrono::steady_clock::time_point next_transition{};
};

class CircuitBreaker {
 public:
  using Clock = std::chrono::steady_clock;
  using Listener = std::function<void(const BreakerTransition&)>;
  using Now = std::function<Clock::time_point()>;

  // Validates `config` (std::invalid_argument). `listener` is called after each change
  // of state, without the breaker's lock, on the thread that caused it; it must not
  // throw (what it throws is dropped). `now` replaces the steady clock (tests).
  explicit CircuitBreaker(CircuitBreakerConfig config = {}, Listener listener = {}, Now now = {});
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // May a call go ahead now? CLOSED: yes (one atomic load). OPEN: no, or, once
  // wait_in_open has passed, HALF_OPEN and yes. HALF_OPEN: yes for the first
  // permitted_calls_in_half_open. A call let through must report its outcome with
  // on_success/on_failure, or release() if it never ran.
  bool try_acquire() {
    if (state_.load(std::memory_order_acquire) == BreakerState::closed) [[likely]]
      return true;
    return try_acquire_slow();
  }
  // The outcome of a call that took `duration` (slow at slow_call_duration or more).
  void on_success(Clock::duration duration);
  void on_failure(Clock::duration duration);
  // A call let through that did not run (or whose outcome says nothing about the
  // protected thing): gives its half-open permit back.
  void release();

  // The state after any time-based transition due now.
  BreakerState state();
  // The state as last set, without looking at the clock (one atomic load).
  BreakerState state_unchecked() const noexcept { return state_.load(std::memory_order_acquire); }
  BreakerMetrics metrics();
  // Applies time-based transitions due now; returns when the next one is due (OPEN:
  // the end of wait_in_open, HALF_OPEN: the end of max_wait_in_half_open), else max().
  Clock::time_point poll();
  // Back to CLOSED with an empty window (an operator's decision), or OPEN now.
  void reset();
  void force_open(std::string reason = "forced open");

  const CircuitBreakerConfig& config() const noexcept { return config_; }

  // fn() if permitted, else CircuitOpen (usher/errors.hpp; defined in circuit_breaker.cpp
  // so that this header does not need it). An exception from fn is a failure when
  // `is_failure(e)` says so (default: every exception), else the call counts as a
  // success. Returns what fn returns.
  template <class Fn>
  std::invoke_result_t<Fn&> call(Fn&& fn,
                                 const std::function<bool(const std::exception&)>& is_failure = {});

 private:
  struct Outcome {
    bool failed, slow;
  };
  bool try_acquire_slow();
  void record(bool failed, Clock::duration duration);
  Clock::time_point now() const { return now_ ? now_() : Clock::now(); }
  // Under mu_: the transition to make (if any); the caller notifies after unlocking.
  void advance_locked(Clock::time_point now, std::vector<BreakerTransition>& out);
  void transition_locked(BreakerState to, std::string reason, Clock::time_point now,
                         std::vector<BreakerTransition>& out);
  void window_add_locked(Outcome o, Clock::time_point now);
  void window_expire_locked(Clock::time_point now);
  void window_clear_locked();
  void notify(std::vector<BreakerTransition>& transitions) const;
  [[noreturn]] void throw_open();

  const CircuitBreakerConfig config_;
  const Listener listener_;
  const Now now_;
  alignas(64) std::atomic<BreakerState> state_{BreakerState::closed};

  alignas(64) mutable std::mutex mu_;
  Clock::time_point next_transition_ = Clock::time_point::max();
  // The window. count_based: a ring of window_size outcomes; time_based: one bucket per
  // second, bucket_epoch_ the second it counts.
  struct Bucket {
    std::int64_t epoch = -1;
    std::uint32_t calls = 0, failed = 0, slow = 0;
  };
  std::vector<Outcome> ring_;
  std::size_t ring_next_ = 0, ring_size_ = 0;
  std::vector<Bucket> buckets_;
  std::size_t calls_ = 0, failed_ = 0, slow_ = 0;  // what the window holds now
  // HALF_OPEN: probes let through, and their outcomes so far.
  std::size_t half_open_permits_ = 0, half_open_calls_ = 0, half_open_failed_ = 0,
              half_open_slow_ = 0;
  BreakerMetrics totals_;  // only the *_total fields
};

namespace detail {
// Throws usher::CircuitOpen: "<what> is open: calls are refused for another N ms".
[[noreturn]] void throw_circuit_open(std::string_view what, BreakerState state,
                                     std::chrono::milliseconds left);
}

template <class Fn>
std::invoke_result_t<Fn&> CircuitBreaker::call(
    Fn&& fn, const std::function<bool(const std::exception&)>& is_failure) {
  if (!try_acquire()) throw_open();
  auto start = now();
  try {
    if constexpr (std::is_void_v<std::invoke_result_t<Fn&>>) {
      fn();
      on_success(now() - start);
    } else {
      auto out = fn();
      on_success(now() - start);
      return out;
    }
  } catch (const std::exception& e) {
    if (!is_failure || is_failure(e))
      on_failure(now() - start);
    else
      on_success(now() - start);
    throw;
  } catch (...) {
    on_failure(now() - start);
    throw;
  }
}

}  // namespace usher
