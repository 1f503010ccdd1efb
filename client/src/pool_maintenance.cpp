// The maintenance thread: every maintenance_interval it reports leaks, retires idle and
// over-age connections (idle ones only above min_idle), retires idle connections above
// max_size (after a smaller usher.pool_advice()), pings idle connections every
// keepalive_interval and reads the pool advice again every advice_interval.
// Replacements are the opener's job.
#include <fmt/format.h>
#include <fmt/std.h>

#include <algorithm>

#include "pool_core.hpp"

namespace usher::detail {

void PoolCore::maintenance_loop() {
  std::unique_lock lk(mu_);
  while (!closed_) {
    maintenance_cv_.wait_for(lk, config_.maintenance_interval);
    if (closed_) break;
    run_maintenance(lk);
  }
}

void PoolCore::run_maintenance(std::unique_lock<std::mutex>& lk) {
  auto now = Clock::now();
  ++maintenance_runs_;

  std::vector<LeakInfo> new_leaks;
  if (auto threshold = config_.leak_detection_threshold; threshold.count() > 0) {
    for (const auto& cell : cells_) {
      auto s = cell->state.load(std::memory_order_acquire);
      if (s != SlotState::lent && s != SlotState::lent_slow) continue;
      auto lease = cell->read_lease();
      if (!lease || lease->seq == cell->leak_reported_seq || now - lease->borrowed_at < threshold)
        continue;
      if (auto info = leak_info_locked(*cell, now); info && info->held >= threshold) {
        cell->leak_reported_seq = lease->seq;  // once per lease
        ++leaks_;
        new_leaks.push_back(std::move(*info));
      }
    }
  }

  // Take every idle cell (a lock-free acquire may beat us to one: then it is not idle),
  // oldest returned first, so that the least used retire first.
  std::vector<Slot*> idle;
  for (const auto& cell : cells_) {
    auto expected = SlotState::idle;
    if (cell->state.compare_exchange_strong(expected, SlotState::busy, std::memory_order_acquire,
                                            std::memory_order_relaxed))
      idle.push_back(cell.get());
  }
  std::sort(idle.begin(), idle.end(),
            [](const Slot* a, const Slot* b) { return a->last_used < b->last_used; });
  std::vector<Retired> retired;
  std::vector<Slot*> to_ping;
  Slot* advisor = nullptr;  // reads usher.pool_advice() again, when that is due
  bool advice_due = now >= next_advice_;
  std::size_t idle_left = idle.size();
  // More open than max_size (the advice shrank it): the idle ones go now, leased ones
  // once they are back and idle (busy cells, ours, count as idle here).
  Counts open = count_locked();
  std::size_t excess = open.idle + open.lent > max_size_ ? open.idle + open.lent - max_size_ : 0;
  for (Slot* s : idle) {
    if (now >= s->expires || excess > 0) {
      retired.push_back(remove_locked(s, now >= s->expires ? "lifetime" : "above max_size"));
      --idle_left;
      if (excess > 0) --excess;
    } else if (config_.idle_timeout.count() > 0 && now - s->last_used >= config_.idle_timeout &&
               idle_left > min_idle_) {
      retired.push_back(remove_locked(s, "idle"));
      --idle_left;
    } else if (config_.keepalive_interval.count() > 0 &&
               now - s->last_checked >= config_.keepalive_interval) {
      to_ping.push_back(s);  // stays busy until the ping is done
    } else if (advice_due && !advisor) {
      advisor = s;  // stays busy until the advice is read
    } else {
      make_available_locked(s);  // back to idle (nobody waits while a cell is idle)
    }
  }
  wake_opener_locked();
  lk.unlock();

  retire(retired);
  for (const auto& leak : new_leaks) {
    emit(PoolEventType::leak, leak.connection_id, "held too long", &leak);
    log(LogLevel::warning,
        fmt::format("pool \"{}\": connection {} (backend {}) lent at {}:{} ({}) to thread {} "
                    "has been held for {} ms: possible leak",
                    config_.name, leak.connection_id, leak.backend_pid, leak.where.file_name(),
                    leak.where.line(), leak.where.function_name(), leak.thread,
                    std::chrono::duration_cast<std::chrono::milliseconds>(leak.held).count()));
  }
  for (Slot* s : to_ping) {
    std::string why;
    auto epoch = health_epoch_.load(std::memory_order_relaxed);
    bool ok = keepalive(*s, why);
    std::vector<Retired> broken;
    {
      std::lock_guard guard(mu_);
      ++keepalives_;
      if (ok && !closed_) {
        s->last_checked = Clock::now();
        s->proven_epoch = epoch;
        make_available_locked(s);
      } else {
        if (!ok) ++validation_failures_;
        broken.push_back(remove_locked(s, ok ? "pool closed" : why));
        wake_opener_locked();
      }
    }
    if (!ok) {
      mark_suspect();
      emit(PoolEventType::validation_failure, broken.front().slot.id, why);
    }
    retire(broken);
  }
  if (advisor) {
    size_from_advice(*advisor);
    std::vector<Retired> broken;
    {
      std::lock_guard guard(mu_);
      bool ok = advisor->conn.transaction_status() == TransactionStatus::idle;
      if (ok && !closed_) {
        make_available_locked(advisor);
      } else {
        broken.push_back(remove_locked(advisor, ok ? "pool closed" : "broken"));
        wake_opener_locked();
      }
    }
    retire(broken);
  }
  lk.lock();
}

}  // namespace usher::detail
