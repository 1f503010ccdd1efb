// PoolCore's books: cells coming and going, counts, statistics, leak reports, closing
// and the pool's own lifetime. Everything here runs under the pool's lock.
#include <fmt/format.h>

#include <algorithm>

#include <unistd.h>

#include "pool_core.hpp"

namespace usher::detail {

Slot* PoolCore::new_cell_locked() {
  if (!free_cells_.empty()) {
    Slot* cell = free_cells_.back();
    free_cells_.pop_back();
    return cell;
  }
  cells_.push_back(std::make_unique<Slot>());
  return cells_.back().get();
}

Retired PoolCore::remove_locked(Slot* slot, std::string reason) {
  // The connection leaves; the cell stays for the next one (a thread may still hold a
  // pointer to it in its lend cache, where a CAS on `empty` simply fails).
  Retired out{std::move(static_cast<SlotData&>(*slot)), std::move(reason)};
  static_cast<SlotData&>(*slot) = SlotData{};
  slot->state.store(SlotState::empty, std::memory_order_relaxed);
  free_cells_.push_back(slot);
  ++destroyed_;
  return out;
}

PoolCore::Counts PoolCore::count_locked() const {
  // Lock-free lends and returns move cells between idle and lent while this runs; each
  // cell is counted once either way, so idle + lent is exact.
  Counts c;
  for (const auto& cell : cells_) {
    switch (cell->state.load(std::memory_order_relaxed)) {
      case SlotState::idle:
      case SlotState::busy: ++c.idle; break;
      case SlotState::lent:
      case SlotState::lent_slow: ++c.lent; break;
      case SlotState::empty: break;
    }
  }
  return c;
}

std::size_t PoolCore::connections_wanted_locked() const {
  if (closed_) return 0;
  Counts c = count_locked();
  std::size_t open = c.idle + c.lent + pending_;
  std::size_t room = max_size_ > open ? max_size_ - open : 0;
  std::size_t idle = c.idle + pending_;
  std::size_t for_idle = min_idle_ > idle ? min_idle_ - idle : 0;
  std::size_t for_waiters = waiters_.size() > pending_ ? waiters_.size() - pending_ : 0;
  return std::min(room, std::max(for_idle, for_waiters));
}

void PoolCore::wake_opener_locked() {
  if (connections_wanted_locked() > 0) opener_cv_.notify_one();
}

std::string PoolCore::describe_locked() const {
  Counts c = count_locked();
  std::string s = fmt::format("total {}, idle {}, in use {}, waiting {}, pending {}, max_size {}",
                              c.idle + c.lent, c.idle, c.lent, waiters_.size(), pending_,
                              max_size_);
  if (connect_failing_) s += fmt::format("; last connect error: {}", last_connect_error_);
  return s;
}

std::optional<LeakInfo> PoolCore::leak_info_locked(const Slot& slot, Clock::time_point now) const {
  auto lease = slot.read_lease();  // nullopt while a lease is being handed over
  if (!lease) return std::nullopt;
  return LeakInfo{slot.id, slot.backend_pid, lease->where, lease->thread,
                  now - lease->borrowed_at, holder_text(config_.name, lease->where, lease->thread)};
}

void PoolCore::drop_reference() noexcept {
  bool last;
  {
    std::lock_guard lk(mu_);
    last = --refs_ == 0;
  }
  if (last) delete this;  // nothing else can reach this pool any more
}

void PoolCore::release_owner() noexcept { drop_reference(); }

CloseReport PoolCore::close(std::chrono::milliseconds timeout) {
  std::vector<Retired> retired;
  {
    std::lock_guard lk(mu_);
    if (!closed_) {
      closed_ = true;
      waiters_.for_each([](Waiter* w) { w->cv.notify_one(); });
      // Idle cells close now. Lent ones must come back under the lock (lent_slow), to
      // be closed, and each keeps the pool alive until then (holds_ref).
      for (const auto& cell : cells_) {
        auto s = cell->state.load(std::memory_order_acquire);
        while (true) {
          if (s == SlotState::idle) {
            if (!cell->state.compare_exchange_weak(s, SlotState::busy, std::memory_order_acquire))
              continue;
            retired.push_back(remove_locked(cell.get(), "pool closed"));
          } else if (s == SlotState::lent || s == SlotState::lent_slow) {
            if (s == SlotState::lent &&
                !cell->state.compare_exchange_weak(s, SlotState::lent_slow, std::memory_order_acq_rel))
              continue;
            cell->holds_ref = true;
            ++refs_;
          }
          break;  // busy: the maintenance thread closes it; empty: nothing
        }
      }
      opener_cv_.notify_all();
      maintenance_cv_.notify_all();
      // Connection attempts and round trips in flight stop now (pool_core.hpp).
      std::uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(abort_fd_, &one, sizeof one);
    }
  }
  for (auto* t : {&opener_, &maintenance_})
    if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
  retire(retired);

  std::unique_lock lk(mu_);
  close_cv_.wait_for(lk, timeout, [&] { return count_locked().lent == 0; });
  CloseReport report;
  report.outstanding = count_locked().lent;
  auto now = Clock::now();
  for (const auto& cell : cells_) {
    auto s = cell->state.load(std::memory_order_acquire);
    if (s != SlotState::lent && s != SlotState::lent_slow) continue;
    if (auto info = leak_info_locked(*cell, now)) report.leases.push_back(std::move(*info));
  }
  return report;
}

std::vector<LeakInfo> PoolCore::leaks() const {
  std::vector<LeakInfo> out;
  if (config_.leak_detection_threshold.count() == 0) return out;
  std::lock_guard lk(mu_);
  auto now = Clock::now();
  for (const auto& cell : cells_) {
    auto s = cell->state.load(std::memory_order_acquire);
    if (s != SlotState::lent && s != SlotState::lent_slow) continue;
    auto info = leak_info_locked(*cell, now);
    if (info && info->held >= config_.leak_detection_threshold) out.push_back(std::move(*info));
  }
  return out;
}

PoolStats PoolCore::stats() const {
  PoolStats s;
  {
    std::lock_guard lk(mu_);
    Counts c = count_locked();
    s.total = c.idle + c.lent;
    s.idle = c.idle;
    s.in_use = c.lent;
    s.waiting = waiters_.size();
    s.pending = pending_;
    s.max_size = max_size_;
    s.min_idle = min_idle_;
    s.peak_total = peak_total_;
    s.created = created_;
    s.destroyed = destroyed_;
    s.timeouts = timeouts_;
    s.validation_failures = validation_failures_;
    s.connect_failures = connect_failures_;
    s.leaks = leaks_;
    s.validations = validations_;
    s.keepalives = keepalives_;
    s.maintenance_runs = maintenance_runs_;
  }
  s.acquire_wait = acquire_wait_.snapshot();
  s.acquired = s.acquire_wait.count;  // one record per successful acquire
  s.usage = usage_.snapshot();
  return s;
}

std::optional<PoolAdvice> PoolCore::advice() const {
  std::lock_guard lk(mu_);
  return advice_;
}

std::optional<bool> PoolCore::extension_detected() const {
  int e = extension_.load(std::memory_order_relaxed);
  if (e < 0) return std::nullopt;
  return e == 1;
}

void PoolCore::mark_suspect() noexcept { health_epoch_.fetch_add(1, std::memory_order_relaxed); }

}  // namespace usher::detail
