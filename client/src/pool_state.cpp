// PoolCore's books: connections leaving, how many the opener should open, statistics,
// leak reports, closing and the pool's own lifetime. The counts come from the lending
// bag (its lock is taken after mu_).
#include <fmt/format.h>

#include <algorithm>

#include "pool_core.hpp"

namespace usher::detail {

Retired PoolCore::take_out_locked(PooledConnection* pc, std::string reason, bool* drop) {
  auto removed = bag_.remove(pc);
  ++statistics_.destroyed;
  if (drop) *drop = removed.out_at_close;
  return {std::move(removed.contents), std::move(reason)};
}

std::size_t PoolCore::connections_wanted_locked() const {
  if (closed_) return 0;
  auto c = bag_.counts();
  std::size_t pending = c.reserved;  // being opened
  std::size_t open = c.open() + pending;
  std::size_t room = max_size_ > open ? max_size_ - open : 0;
  std::size_t idle = c.idle + pending;
  std::size_t for_idle = min_idle_ > idle ? min_idle_ - idle : 0;
  std::size_t for_waiters = c.waiting > pending ? c.waiting - pending : 0;
  return std::min(room, std::max(for_idle, for_waiters));
}

void PoolCore::wake_opener_locked() {
  if (connections_wanted_locked() > 0) opener_cv_.notify_one();
}

std::string PoolCore::describe_locked() const {
  auto c = bag_.counts();
  std::string s = fmt::format("total {}, idle {}, in use {}, waiting {}, pending {}, max_size {}",
                              c.open(), c.idle, c.lent, c.waiting, c.reserved, max_size_);
  if (connect_failing_) s += fmt::format("; last connect error: {}", last_connect_error_);
  return s;
}

// Under the bag's lock (for_each_lent): the id and pid cannot change meanwhile.
std::optional<LeakInfo> PoolCore::leak_info(const PooledConnection& pc, Clock::time_point now) const {
  auto lease = pc.read_lease();  // nullopt while a lease is being handed over
  if (!lease) return std::nullopt;
  return LeakInfo{pc.id, pc.backend_pid, lease->where, lease->thread,
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
      // Waiters get PoolClosed, idle connections close now. Lent ones must come back
      // under the bag's lock, to be closed, and each keeps the pool alive until then.
      auto closed = bag_.close();
      for (auto& c : closed.removed) {
        retired.push_back({std::move(c), "pool closed"});
        ++statistics_.destroyed;
      }
      refs_ += closed.lent;
      opener_cv_.notify_all();
      maintenance_cv_.notify_all();
      round_trips_.abort();  // connection attempts and round trips in flight stop now
    }
  }
  for (auto* t : {&opener_, &maintenance_})
    if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
  retire(retired);

  bag_.await_returned(timeout);
  CloseReport report;
  auto now = Clock::now();
  bag_.for_each_lent([&](const PooledConnection& pc) {
    ++report.outstanding;
    if (auto info = leak_info(pc, now)) report.leases.push_back(std::move(*info));
  });
  return report;
}

std::vector<LeakInfo> PoolCore::leaks() const {
  std::vector<LeakInfo> out;
  if (config_.leak_detection_threshold.count() == 0) return out;
  auto now = Clock::now();
  bag_.for_each_lent([&](const PooledConnection& pc) {
    auto info = leak_info(pc, now);
    if (info && info->held >= config_.leak_detection_threshold) out.push_back(std::move(*info));
  });
  return out;
}

PoolStats PoolCore::stats() const {
  PoolStats s;
  {
    std::lock_guard lk(mu_);
    auto c = bag_.counts();
    s.total = c.open();
    s.idle = c.idle;
    s.in_use = c.lent;
    s.waiting = c.waiting;
    s.pending = c.reserved;
    s.max_size = max_size_;
    s.min_idle = min_idle_;
    statistics_.counters_into(s);
  }
  statistics_.histograms_into(s);
  s.breaker = const_cast<CircuitBreaker&>(breaker_).metrics();  // may move it on in time
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

}  // namespace usher::detail
