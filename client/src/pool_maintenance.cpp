// The maintenance thread: every maintenance_interval it reports leaks, retires idle and
// over-age connections (idle ones only above min_idle), and pings idle connections
// every keepalive_interval. Replacements are the opener's job.
#include <fmt/format.h>
#include <fmt/std.h>

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
    for (const auto& s : all_) {
      if (s->state == SlotState::lent && !s->leak_reported && now - s->borrowed_at >= threshold) {
        s->leak_reported = true;  // once per lease
        ++leaks_;
        new_leaks.push_back(leak_info_locked(*s, now));
      }
    }
  }

  // Oldest returned first (the front of the stack), so the least used retire first.
  std::vector<Retired> retired;
  std::vector<Slot*> to_ping, still_idle;
  std::size_t idle_left = idle_.size() + busy_;
  for (Slot* s : idle_) {
    if (now >= s->expires) {
      retired.push_back({remove_locked(s), "lifetime"});
      --idle_left;
    } else if (config_.idle_timeout.count() > 0 && now - s->last_used >= config_.idle_timeout &&
               idle_left > config_.min_idle) {
      retired.push_back({remove_locked(s), "idle"});
      --idle_left;
    } else if (config_.keepalive_interval.count() > 0 &&
               now - s->last_checked >= config_.keepalive_interval) {
      s->state = SlotState::busy;
      ++busy_;
      to_ping.push_back(s);
    } else {
      still_idle.push_back(s);
    }
  }
  idle_.swap(still_idle);
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
    bool ok = keepalive(*s, why);
    std::vector<Retired> broken;
    {
      std::lock_guard guard(mu_);
      --busy_;
      ++keepalives_;
      if (ok && !closed_) {
        s->last_checked = Clock::now();
        make_available_locked(s);
      } else {
        if (!ok) ++validation_failures_;
        broken.push_back({remove_locked(s), ok ? "pool closed" : why});
        wake_opener_locked();
      }
    }
    if (!ok) {
      mark_suspect(now);
      emit(PoolEventType::validation_failure, broken.front().slot->id, why);
    }
    retire(broken);
  }
  lk.lock();
}

}  // namespace usher::detail
