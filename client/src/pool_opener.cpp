// The opener thread: opens connections one at a time while the pool is below demand
// (waiters not covered by connections already being opened) or below min_idle.
#include <fmt/format.h>

#include <optional>

#include "pool_core.hpp"
#include "usher/errors.hpp"

namespace usher::detail {

void PoolCore::opener_loop() {
  constexpr std::chrono::milliseconds kMaxBackoff{1000};
  std::unique_lock lk(mu_);
  while (!closed_) {
    if (connections_wanted_locked() == 0) {
      opener_cv_.wait(lk);
      continue;
    }
    if (Clock::now() < next_connect_attempt_) {
      opener_cv_.wait_until(lk, next_connect_attempt_);
      continue;
    }
    // The breaker: while it is open, no attempt until wait_in_open has passed; half-open,
    // the attempts are its probes, as many as it permits.
    bool probe = false;
    if (breaker_.state_unchecked() != BreakerState::closed) {
      lk.unlock();
      bool permitted = breaker_.try_acquire();
      auto next = breaker_.poll();
      lk.lock();
      if (!permitted) {
        // Woken early by a change of state (on_breaker_transition) or close().
        if (!closed_) opener_cv_.wait_until(lk, std::min(next, Clock::now() + kMaxBackoff));
        continue;
      }
      probe = true;
    }
    PooledConnection* place = bag_.reserve();  // counted as pending from now on
    {
      auto c = bag_.counts();
      statistics_.peak_total = std::max(statistics_.peak_total, c.open() + c.reserved);
    }
    lk.unlock();

    std::optional<ConnectionRecord> record;
    std::string error;
    std::exception_ptr permanent;
    std::optional<Clock::duration> connected_after;
    auto attempt_start = Clock::now();
    bool unreachable = false;  // the breaker's failure: no answer, or a transient refusal
    bool aborted = false;
    try {
      record = round_trips_.open(&connected_after);
    } catch (const ConnectAborted& e) {  // close(): says nothing about the server
      error = e.what();
      permanent = std::current_exception();
      aborted = true;
    } catch (const Error& e) {  // the server's refusal keeps its class (login errors)
      error = e.what();
      if (!e.is_transient()) permanent = std::current_exception();
      unreachable = !connected_after && e.is_transient();
    } catch (const std::exception& e) {  // bad_alloc
      error = e.what();
    }
    auto took = connected_after.value_or(Clock::now() - attempt_start);
    // Told without mu_ (its listener takes it), after the books below, so that a
    // CircuitOpen names this attempt's error.
    auto tell_breaker = [&] {
      if (aborted) {
        if (probe) breaker_.release();
      } else {
        // A server that answered (even with an error about the login or after_connect)
        // is up: only an unanswered or transiently refused attempt is a failure.
        breaker_outcome(!unreachable, took);
      }
    };
    if (record && config_.size_from_advice && !advice_read_) {
      // Before this connection is lent or another opens, so that the advised sizes hold
      // from here on. Whatever the answer, the pool goes on (size_from_advice warns).
      size_from_advice(*record);
      if (record->conn.transaction_status() == TransactionStatus::idle) {
        advice_read_ = true;
      } else {  // lost, or the read timed out mid-statement: try on the next one
        error = "connection lost while reading usher.pool_advice()";
        record.reset();
      }
    }

    lk.lock();
    std::vector<Retired> retired;
    if (record && closed_) {
      bag_.cancel(place);
      retired.push_back({std::move(*record), "pool closed"});
    } else if (record) {
      record->id = ++next_id_;
      record->expires = expiry(record->created, config_.max_lifetime, rng_);
      extension_.store(record->has_extension ? 1 : 0, std::memory_order_relaxed);
      ++statistics_.created;
      connect_failing_ = false;
      connect_refusal_ = nullptr;
      refuse_locked();
      connect_backoff_ = std::chrono::milliseconds(10);
      auto id = record->id;
      // To the longest waiter, or idle. The bag is open: it closes under mu_.
      bag_.add(place, std::move(*record));
      lk.unlock();
      tell_breaker();
      emit(PoolEventType::connect, id, {});
      lk.lock();
      continue;
    } else {
      bag_.cancel(place);
      ++statistics_.connect_failures;
      bool first = !connect_failing_;
      connect_failing_ = true;
      last_connect_error_ = error;
      // An error that waiting does not cure (a database or role that does not exist, a
      // bad password: Error::is_transient() false): while no connection is open,
      // borrowers get it at once instead of a PoolTimeout. A transient one clears it.
      connect_refusal_ = permanent;
      refuse_locked();
      // Back off (10 ms doubling to 1 s) so that a server that is down is not hammered,
      // yet one that comes back is found quickly.
      next_connect_attempt_ = Clock::now() + connect_backoff_;
      connect_backoff_ = std::min(connect_backoff_ * 2, kMaxBackoff);
      lk.unlock();
      tell_breaker();
      emit(PoolEventType::connect_failure, 0, error);
      if (first) log(LogLevel::warning, fmt::format("pool \"{}\": {}", config_.name, error));
      lk.lock();
      continue;
    }
    lk.unlock();
    tell_breaker();
    retire(retired);
    lk.lock();
  }
}

}  // namespace usher::detail
