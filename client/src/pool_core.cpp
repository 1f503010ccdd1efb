// PoolCore: lending and returning around the lending bag (lending_bag.hpp, which owns
// the lock-free fast path and the strict-FIFO hand-off): the checks of a connection on
// its way out and back, the acquire statistics, timeouts and retirements.
#include "pool_core.hpp"

#include <fmt/format.h>

#include "usher/errors.hpp"

namespace usher::detail {

Clock::time_point expiry(Clock::time_point created, std::chrono::milliseconds max_lifetime,
                         std::mt19937_64& rng) {
  if (max_lifetime.count() == 0) return Clock::time_point::max();
  std::uniform_real_distribution<double> jitter(0.0, 0.25);
  auto cut = std::chrono::duration_cast<Clock::duration>(max_lifetime * jitter(rng));
  return created + max_lifetime - cut;
}

PoolCore::PoolCore(PoolConfig config)
    : config_((config.validate(), std::move(config))),
      round_trips_(config_, statistics_.validations),
      max_size_(config_.max_size),
      min_idle_(config_.min_idle),
      rng_(std::random_device{}()),
      bag_([this] {
        std::lock_guard lk(mu_);
        wake_opener_locked();
      }),
      breaker_(config_.breaker_enabled ? config_.breaker : CircuitBreakerConfig{},
               [this](const BreakerTransition& t) { on_breaker_transition(t); }) {
  opener_ = std::thread([this] { opener_loop(); });
  maintenance_ = std::thread([this] { maintenance_loop(); });
}

PoolCore::~PoolCore() {
  // Only reached through drop_reference() after close(): threads joined, nothing lent.
  if (opener_.joinable()) opener_.join();
  if (maintenance_.joinable()) maintenance_.join();
}

PooledConnection* PoolCore::borrow(Clock::time_point start, Clock::time_point deadline,
                                   const std::source_location& where, bool try_only) {
  bool keep_place = false;  // after a failed validation, wait at the head of the line
  bool slow = false;        // waited, validated or retried: the wait is worth measuring
  while (true) {
    auto got = bag_.borrow(deadline, {.try_only = try_only, .keep_place = keep_place});
    Clock::time_point borrowed_at = start;
    bool waited = false;
    switch (got.outcome) {
      case Bag::Outcome::lent:
        break;
      case Bag::Outcome::lent_after_wait:
        borrowed_at = Clock::now();
        waited = true;
        break;
      case Bag::Outcome::nothing_idle:
        return nullptr;
      case Bag::Outcome::closed:
        throw PoolClosed(fmt::format("pool \"{}\" is closed", config_.name));
      case Bag::Outcome::closed_while_waiting:
        throw PoolClosed(fmt::format("pool \"{}\" was closed", config_.name));
      case Bag::Outcome::refused: {  // a permanent connect error, nothing open
        std::lock_guard lk(mu_);
        wake_opener_locked();
      }
        std::rethrow_exception(got.refusal);
      case Bag::Outcome::timeout: {
        std::string message;
        {
          std::lock_guard lk(mu_);
          ++statistics_.timeouts;
          auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
          message = fmt::format("pool \"{}\": no connection within {} ms ({})", config_.name,
                                waited_ms.count(), describe_locked());
        }
        emit(PoolEventType::timeout, 0, message);
        throw PoolTimeout(message);
      }
    }
    PooledConnection* pc = got.item;
    auto thread = std::this_thread::get_id();

    std::string why;
    bool round_trip = false;
    bool ok = round_trips_.prepare_for_borrower(*pc, borrowed_at, where, thread, why, round_trip);
    slow = slow || waited || round_trip;
    if (round_trip) {
      auto now = Clock::now();
      breaker_outcome(ok, now - borrowed_at);
      borrowed_at = now;  // the pool's round trip is not the borrower's hold time
    }
    if (ok) {
      // Published only now: a connection being validated is not yet the borrower's
      // (no leak report, no held time for it).
      pc->begin_lease(borrowed_at, where, thread);
      if (slow) {
        statistics_.acquire_wait.record(Clock::now() - start);
      } else {
        statistics_.acquire_wait.record_zero();  // the hot path: no second clock read
      }
      return pc;
    }
    // Validation failed: close it, ask for a replacement and wait again (invisibly,
    // within the caller's deadline).
    std::vector<Retired> retired;
    bool drop;
    {
      std::lock_guard lk(mu_);
      ++statistics_.validation_failures;
      retired.push_back(take_out_locked(pc, why, &drop));
      wake_opener_locked();
    }
    emit(PoolEventType::validation_failure, retired.front().connection.id, why);
    retire(retired);
    if (drop) drop_reference();
    keep_place = true;
  }
}

void PoolCore::give_back(PooledConnection* pc, bool discard) noexcept {
  auto now = Clock::now();
  statistics_.usage.record(now - pc->borrowed_at());
  // Before the pool's own round trips below, which count as uses too.
  bool used = pc->conn.uses() != pc->uses_at_lend;
  std::string why;
  bool keep = !discard && !pc->discard;
  if (!keep) why = "discarded by borrower";
  if (keep) keep = round_trips_.clean_after_borrower(*pc, now, used, why);
  pc->end_lease();

  if (keep) {
    pc->last_used = pc->last_checked = now;
    // Back in the bag: with one CAS, or to the longest waiter. After this the pooled
    // connection belongs to others, and so may the pool (it can be closed and freed at
    // once): touch neither.
    if (bag_.give_back(pc)) return;
    why = "pool closed";
  }

  std::vector<Retired> retired;
  bool drop;
  {
    std::lock_guard lk(mu_);
    retired.push_back(take_out_locked(pc, why, &drop));
    wake_opener_locked();
  }
  retire(retired);  // events use the pool: let go of it only afterwards
  if (drop) drop_reference();
}

}  // namespace usher::detail
