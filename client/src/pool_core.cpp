// PoolCore: lending, returning and the strict-FIFO hand-off between them. The fast
// path (a thread's own idle cell, no waiters) takes no lock: see pool_core.hpp.
#include "pool_core.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "lend_cache.hpp"
#include "usher/errors.hpp"

namespace usher::detail {

Clock::time_point expiry(Clock::time_point created, std::chrono::milliseconds max_lifetime,
                         std::mt19937_64& rng) {
  if (max_lifetime.count() == 0) return Clock::time_point::max();
  std::uniform_real_distribution<double> jitter(0.0, 0.25);
  auto cut = std::chrono::duration_cast<Clock::duration>(max_lifetime * jitter(rng));
  return created + max_lifetime - cut;
}

std::string holder_text(std::string_view pool, const std::source_location& where,
                        std::thread::id thread) {
  // pg_usher keeps 64 bytes of a holder (63 + NUL): the call site and the thread are
  // worth more than the pool name, so the name is what gets shortened.
  constexpr std::size_t kMax = 63;
  std::string_view file = where.file_name();
  if (auto slash = file.rfind('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
  std::string site = fmt::format("{}:{} thread {}", file, where.line(), thread);
  if (site.size() + 1 >= kMax) return site.substr(0, kMax);
  return fmt::format("{}/{}", pool.substr(0, kMax - site.size() - 1), site);
}

namespace {
std::vector<std::pair<std::string, std::string>> connect_options(const PoolConfig& c) {
  auto options = c.options;
  // Ours go first so that an explicit application_name in options wins.
  options.insert(options.begin(), {"application_name", c.effective_application_name()});
  return options;
}
int make_abort_fd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd for the pool");
  return fd;
}
std::uint64_t next_pool_uid() {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}
}  // namespace

PoolCore::PoolCore(PoolConfig config)
    : config_((config.validate(), std::move(config))),
      connect_options_(connect_options(config_)),
      uid_(next_pool_uid()),
      abort_fd_(make_abort_fd()),
      max_size_(config_.max_size),
      min_idle_(config_.min_idle),
      rng_(std::random_device{}()) {
  opener_ = std::thread([this] { opener_loop(); });
  maintenance_ = std::thread([this] { maintenance_loop(); });
}

PoolCore::~PoolCore() {
  // Only reached through drop_reference() after close(): threads joined, nothing lent.
  if (opener_.joinable()) opener_.join();
  if (maintenance_.joinable()) maintenance_.join();
  ::close(abort_fd_);
}

Slot* PoolCore::acquire(Clock::time_point start, Clock::time_point deadline,
                        const std::source_location& where, bool try_only) {
  bool keep_place = false;  // after a failed validation, wait at the head of the line
  bool slow = false;        // waited, validated or retried: the wait is worth measuring
  while (true) {
    Slot* slot = keep_place ? nullptr : take_cached();
    Clock::time_point borrowed_at = start;
    bool waited = false;
    if (!slot) {
      std::unique_lock lk(mu_);
      if (closed_) throw PoolClosed(fmt::format("pool \"{}\" is closed", config_.name));
      if (waiters_.empty()) slot = take_idle_locked();
      if (!slot) {
        if (try_only) return nullptr;
        if (fail_fast_locked()) {
          wake_opener_locked();
          std::rethrow_exception(permanent_connect_error_);
        }
        Waiter w;
        bool first = waiters_.empty();
        keep_place ? waiters_.push_front(&w) : waiters_.push_back(&w);
        // From now on connections come back under the lock (and may come to w at once).
        if (first) mark_lent_slow_locked();
        wake_opener_locked();
        while (!w.slot && !closed_ && !fail_fast_locked()) {
          if (w.cv.wait_until(lk, deadline) == std::cv_status::timeout) break;
        }
        if (!w.slot) {
          waiters_.remove(&w);
          if (closed_) throw PoolClosed(fmt::format("pool \"{}\" was closed", config_.name));
          if (fail_fast_locked()) std::rethrow_exception(permanent_connect_error_);
          ++timeouts_;
          auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
          std::string message = fmt::format("pool \"{}\": no connection within {} ms ({})",
                                            config_.name, waited_ms.count(), describe_locked());
          lk.unlock();
          emit(PoolEventType::timeout, 0, message);
          throw PoolTimeout(message);
        }
        slot = w.slot;  // make_available_locked() marked it lent for us
        borrowed_at = Clock::now();
        waited = true;
      }
    }
    cache_slot(uid_, slot);
    slot->begin_lease(borrowed_at, where, std::this_thread::get_id());

    std::string why;
    bool round_trip = false;
    bool ok = prepare_for_borrower(*slot, borrowed_at, why, round_trip);
    slow = slow || waited || round_trip;
    if (ok) {
      if (slow) {
        acquire_wait_.record(Clock::now() - start);
      } else {
        acquire_wait_.record_zero();  // the hot path: no second clock read
      }
      return slot;
    }
    // Validation failed: close it, ask for a replacement and wait again (invisibly,
    // within the caller's deadline).
    slot->end_lease();
    std::vector<Retired> retired;
    bool drop;
    {
      std::lock_guard lk(mu_);
      ++validation_failures_;
      drop = std::exchange(slot->holds_ref, false);
      retired.push_back(remove_locked(slot, why));
      wake_opener_locked();
      if (closed_) close_cv_.notify_all();
    }
    emit(PoolEventType::validation_failure, retired.front().slot.id, why);
    retire(retired);
    if (drop) drop_reference();
    keep_place = true;
  }
}

void PoolCore::give_back(Slot* slot, bool discard) noexcept {
  auto now = Clock::now();
  usage_.record(now - slot->borrowed_at());
  // Before the pool's own round trips below, which count as uses too.
  bool used = slot->conn.uses() != slot->uses_at_lend;
  std::string why;
  bool keep = !discard && !slot->discard;
  if (!keep) why = "discarded by borrower";
  if (keep) keep = clean_after_borrower(*slot, now, used, why);
  slot->end_lease();

  if (keep) {
    slot->last_used = slot->last_checked = now;
    // The fast return: nobody waits and the pool is open, or the cell would be
    // lent_slow. After this CAS the cell belongs to others, and so may the pool (it can
    // be closed and freed at once): touch neither.
    auto expected = SlotState::lent;
    if (slot->state.compare_exchange_strong(expected, SlotState::idle, std::memory_order_release,
                                            std::memory_order_relaxed))
      return;
  }

  std::vector<Retired> retired;
  bool drop = false;
  {
    std::lock_guard lk(mu_);
    if (keep && closed_) {
      keep = false;
      why = "pool closed";
    }
    if (keep) {
      make_available_locked(slot);  // to the longest waiter, if any
    } else {
      drop = std::exchange(slot->holds_ref, false);
      retired.push_back(remove_locked(slot, why));
      wake_opener_locked();
    }
    if (closed_) close_cv_.notify_all();
  }
  if (keep) return;
  retire(retired);  // events use the pool: let go of it only afterwards
  if (drop) drop_reference();
}

Slot* PoolCore::take_cached() noexcept {
  // Only idle while nobody waits (pool_core.hpp): taking it overtakes no one.
  Slot* slot = cached_slot(uid_);
  if (!slot) return nullptr;
  auto expected = SlotState::idle;
  if (slot->state.compare_exchange_strong(expected, SlotState::lent, std::memory_order_acquire,
                                          std::memory_order_relaxed))
    return slot;
  return nullptr;
}

Slot* PoolCore::take_idle_locked() {
  // The first idle cell: work concentrates on the oldest cells, so that connections
  // beyond what the load needs go idle and retire. A thread that finds its own cell
  // taken settles on another one, and keeps that one from then on.
  for (const auto& cell : cells_) {
    auto expected = SlotState::idle;
    if (cell->state.compare_exchange_strong(expected, SlotState::lent, std::memory_order_acquire,
                                            std::memory_order_relaxed))
      return cell.get();
  }
  return nullptr;
}

void PoolCore::mark_lent_slow_locked() {
  // The first waiter arrived: from now on connections come back under the lock. Each
  // cell races with its borrower's lock-free return or with a lock-free acquire; the
  // CAS loop settles each one, so that afterwards none is idle or plain lent.
  for (const auto& cell : cells_) {
    auto s = cell->state.load(std::memory_order_acquire);
    while (true) {
      if (s == SlotState::idle) {
        if (cell->state.compare_exchange_weak(s, SlotState::busy, std::memory_order_acquire))
          make_available_locked(cell.get());  // to the head of the queue
        else
          continue;
      } else if (s == SlotState::lent) {
        if (!cell->state.compare_exchange_weak(s, SlotState::lent_slow, std::memory_order_acq_rel))
          continue;
      }
      break;
    }
  }
}

bool PoolCore::fail_fast_locked() const {
  if (!permanent_connect_error_) return false;
  Counts c = count_locked();
  return c.idle + c.lent == 0;
}

void PoolCore::make_available_locked(Slot* slot) {
  if (Waiter* w = waiters_.pop_front()) {
    // Straight to the longest waiter: nobody can overtake it on the way. Lent slow
    // while others still wait, so that this one comes back under the lock too.
    slot->state.store(waiters_.empty() ? SlotState::lent : SlotState::lent_slow,
                      std::memory_order_release);
    w->slot = slot;
    w->cv.notify_one();  // under the lock: the waiter's cv lives on its stack
  } else {
    slot->state.store(SlotState::idle, std::memory_order_release);
  }
}

}  // namespace usher::detail
