#pragma once
// Internal: the state and threads behind usher::Pool. The pooled connections, their
// lending states, the idle set, the waiters and the lend cache are the lending bag's
// (lending_bag.hpp, where the strict-FIFO hand-off rule is written down); PoolCore keeps
// what is around it: the round trips (round_trips.hpp), the sizing (pool_sizing.cpp), the
// opener and maintenance threads, the statistics (pool_statistics.hpp) and the events
// (pool_notify.cpp). mu_ guards PoolCore's own state and is taken before the bag's
// lock, never after it. Neither is held across network I/O: connecting, validating,
// resetting and closing happen on a pooled connection the thread holds.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <source_location>
#include <string>
#include <thread>
#include <vector>

#include "histogram.hpp"
#include "pool_statistics.hpp"
#include "lending_bag.hpp"
#include "pooled_connection.hpp"
#include "round_trips.hpp"
#include "usher/circuit_breaker.hpp"
#include "usher/connection.hpp"
#include "usher/pool.hpp"
#include "usher/pool_config.hpp"

namespace usher::detail {

// max_lifetime minus up to 25%, so that connections opened together do not all expire
// (and reconnect) together. Zero means no limit: time_point::max().
Clock::time_point expiry(Clock::time_point created, std::chrono::milliseconds max_lifetime,
                         std::mt19937_64& rng);

class PoolCore {
 public:
  explicit PoolCore(PoolConfig config);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  // Null only for try_only when nothing is free now. Throws PoolTimeout / PoolClosed.
  PooledConnection* acquire(Clock::time_point start, Clock::time_point deadline,
                            const std::source_location& where, bool try_only) {
    // The breaker's cost on the hot path: one atomic load while it is closed.
    if (breaker_.state_unchecked() != BreakerState::closed) [[unlikely]]
      check_breaker();
    return borrow(start, deadline, where, try_only);
  }
  void give_back(PooledConnection* pc, bool discard) noexcept;
  CloseReport close(std::chrono::milliseconds timeout);
  // The Pool object is gone: free this now, or when the last lease comes back.
  void release_owner() noexcept;

  std::vector<LeakInfo> leaks() const;
  PoolStats stats() const;
  std::optional<bool> extension_detected() const;
  std::optional<PoolAdvice> advice() const;
  const PoolConfig& config() const noexcept { return config_; }
  CircuitBreaker& breaker() noexcept { return breaker_; }

 private:
  using Bag = LendingBag<PooledConnection>;

  PooledConnection* borrow(Clock::time_point start, Clock::time_point deadline,
                           const std::source_location& where, bool try_only);

  // pool_breaker.cpp: the circuit breaker of the server. None of these is called under
  // mu_ (the breaker's listener takes it and emits events).
  void check_breaker();  // acquire() while not closed: throws CircuitOpen when open
  void on_breaker_transition(const BreakerTransition& t);
  // The outcome of one attempt to reach the server (no-op with breaker_enabled off).
  void breaker_outcome(bool ok, Clock::duration took);
  // Under mu_: what borrowers get at once while nothing is open (LendingBag::refuse):
  // the opener's permanent connect error, else the open breaker's CircuitOpen, else none.
  void refuse_locked();
  // "pool "x": circuit breaker <what>; last connect error: ..." (under mu_).
  std::string circuit_open_message_locked(std::string_view what) const;

  // pool_state.cpp: the books, under mu_
  // Takes the connection out of its place (counted as destroyed); `drop` says that it
  // was lent when the pool closed and held a reference (refs_).
  Retired take_out_locked(PooledConnection* pc, std::string reason, bool* drop = nullptr);
  std::size_t connections_wanted_locked() const;
  void wake_opener_locked();
  std::string describe_locked() const;
  std::optional<LeakInfo> leak_info(const PooledConnection& pc, Clock::time_point now) const;
  void drop_reference() noexcept;

  // pool_sizing.cpp: max_size and min_idle from usher.pool_advice()
  void size_from_advice(ConnectionRecord& record);  // reads, applies and reports; outside the locks

  // pool_opener.cpp / pool_maintenance.cpp: the two background threads
  void opener_loop();
  void maintenance_loop();
  void run_maintenance(std::unique_lock<std::mutex>& lk);
  void put_back_locked(PooledConnection* pc, bool ok, std::string_view reason,
                       std::vector<Retired>& retired);

  // pool_notify.cpp: how the pool tells the world (events, log lines, retirements)
  void emit(PoolEventType type, std::uint64_t connection_id, std::string reason,
            const LeakInfo* leak = nullptr, const PoolAdvice* advice = nullptr,
            const BreakerTransition* transition = nullptr) const;
  void log(LogLevel level, std::string_view message) const;
  void retire(std::vector<Retired>& retired) const;  // closes them and emits events
  void report_leak(const LeakInfo& leak) const;      // the event and the warning

  const PoolConfig config_;
  // Counters under mu_, histograms lock-free (pool_statistics.hpp).
  PoolStatistics statistics_;
  // Open, validate, reset, keepalive, advice (round_trips.hpp); counts its validations
  // in statistics_.
  RoundTrips round_trips_;

  std::atomic<int> extension_{-1};  // -1 unknown, 0 absent, 1 present

  // The slow path: on their own cache lines, away from the fast path's.
  alignas(64) mutable std::mutex mu_;
  bool closed_ = false;
  // 1 for the Pool object + 1 per lease out when the pool closed (BagEntry::out_at_close):
  // the last one to let go deletes this.
  std::size_t refs_ = 1;
  std::condition_variable opener_cv_, maintenance_cv_;
  // The sizes in force: the configured ones until usher.pool_advice() says otherwise
  // (size_from_advice), never above config_.max_size.
  std::size_t max_size_, min_idle_;
  std::optional<PoolAdvice> advice_;       // the advice they come from
  bool advice_failing_ = false;            // the last read failed (warn once per run)
  Clock::time_point next_advice_ = Clock::time_point::max();  // the maintenance thread's next read
  bool advice_read_ = false;               // opener thread only: the first read is done
  std::uint64_t next_id_ = 0;
  std::string last_connect_error_;
  bool connect_failing_ = false;
  Clock::time_point next_connect_attempt_{};
  std::chrono::milliseconds connect_backoff_{10};
  std::mt19937_64 rng_;
  // While the breaker is open: the CircuitOpen borrowers get (LendingBag::refuse) when
  // nothing is open, together with the opener's permanent error if any.
  std::exception_ptr breaker_refusal_;
  std::exception_ptr connect_refusal_;  // the opener's last error, when permanent

  // Declared last but for the threads: its listener (a borrower waits: wake the opener)
  // uses mu_ and the sizes above.
  Bag bag_;
  // Its listener uses mu_, the bag and round_trips_.
  CircuitBreaker breaker_;
  std::thread opener_, maintenance_;
};

}  // namespace usher::detail
