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
    ++pending_;
    {
      Counts c = count_locked();
      peak_total_ = std::max(peak_total_, c.idle + c.lent + pending_);
    }
    lk.unlock();

    std::optional<SlotData> slot;
    std::string error;
    std::exception_ptr permanent;
    try {
      slot = open_slot();
    } catch (const Error& e) {  // the server's refusal keeps its class (login errors)
      error = e.what();
      if (!e.is_transient()) permanent = std::current_exception();
    } catch (const std::exception& e) {  // bad_alloc
      error = e.what();
    }
    if (slot && config_.size_from_advice && !advice_read_) {
      // Before this connection is lent or another opens, so that the advised sizes hold
      // from here on. Whatever the answer, the pool goes on (size_from_advice warns).
      size_from_advice(*slot);
      if (slot->conn.transaction_status() == TransactionStatus::idle) {
        advice_read_ = true;
      } else {  // lost, or the read timed out mid-statement: try on the next one
        error = "connection lost while reading usher.pool_advice()";
        slot.reset();
      }
    }

    lk.lock();
    --pending_;
    std::vector<Retired> retired;
    if (slot && closed_) {
      retired.push_back({std::move(*slot), "pool closed"});
    } else if (slot) {
      slot->id = ++next_id_;
      slot->expires = expiry(slot->created, config_.max_lifetime, rng_);
      extension_.store(slot->has_extension ? 1 : 0, std::memory_order_relaxed);
      ++created_;
      connect_failing_ = false;
      permanent_connect_error_ = nullptr;
      connect_backoff_ = std::chrono::milliseconds(10);
      // Filled while empty (nobody can take an empty cell), published by the state.
      Slot* raw = new_cell_locked();
      static_cast<SlotData&>(*raw) = std::move(*slot);
      make_available_locked(raw);
      auto id = raw->id;
      lk.unlock();
      emit(PoolEventType::connect, id, {});
      lk.lock();
      continue;
    } else {
      ++connect_failures_;
      bool first = !connect_failing_;
      connect_failing_ = true;
      last_connect_error_ = error;
      permanent_connect_error_ = permanent;
      if (fail_fast_locked()) waiters_.for_each([](Waiter* w) { w->cv.notify_one(); });
      // Back off (10 ms doubling to 1 s) so that a server that is down is not hammered,
      // yet one that comes back is found quickly.
      next_connect_attempt_ = Clock::now() + connect_backoff_;
      connect_backoff_ = std::min(connect_backoff_ * 2, kMaxBackoff);
      lk.unlock();
      emit(PoolEventType::connect_failure, 0, error);
      if (first) log(LogLevel::warning, fmt::format("pool \"{}\": {}", config_.name, error));
      lk.lock();
      continue;
    }
    lk.unlock();
    retire(retired);
    lk.lock();
  }
}

}  // namespace usher::detail
