// The maintenance thread: every maintenance_interval it reports leaks, retires idle and
// over-age connections (idle ones only above min_idle), retires idle connections above
// max_size (after a smaller usher.pool_advice()), pings idle connections every
// keepalive_interval and reads the pool advice again every advice_interval.
// Replacements are the opener's job.
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

// The maintenance thread is done with a connection it took busy: back in the bag (idle,
// or to a waiter) if it is fine and the pool open, else retired: for `reason`, or
// because the pool closed.
void PoolCore::put_back_locked(PooledConnection* pc, bool ok, std::string_view reason,
                               std::vector<Retired>& retired) {
  if (ok && !closed_ && bag_.give_back(pc)) return;
  retired.push_back(take_out_locked(pc, ok ? "pool closed" : std::string(reason)));
  wake_opener_locked();
}

void PoolCore::run_maintenance(std::unique_lock<std::mutex>& lk) {
  auto now = Clock::now();
  ++statistics_.maintenance_runs;

  std::vector<LeakInfo> new_leaks;
  if (auto threshold = config_.leak_detection_threshold; threshold.count() > 0) {
    bag_.for_each_lent([&](PooledConnection& pc) {
      auto lease = pc.read_lease();
      if (!lease || lease->seq == pc.leak_reported_seq || now - lease->borrowed_at < threshold)
        return;
      if (auto info = leak_info(pc, now); info && info->held >= threshold) {
        pc.leak_reported_seq = lease->seq;  // once per lease
        ++statistics_.leaks;
        new_leaks.push_back(std::move(*info));
      }
    });
  }

  // Take every idle connection (a lock-free acquire may beat us to one: then it is not
  // idle), oldest returned first, so that the least used retire first.
  std::vector<PooledConnection*> idle = bag_.take_idle();
  std::sort(idle.begin(), idle.end(), [](const PooledConnection* a, const PooledConnection* b) {
    return a->last_used < b->last_used;
  });
  std::vector<Retired> retired;
  std::vector<PooledConnection*> to_ping;
  PooledConnection* advisor = nullptr;  // reads usher.pool_advice() again, when that is due
  bool advice_due = now >= next_advice_;
  std::size_t idle_left = idle.size();
  // More open than max_size (the advice shrank it): the idle ones go now, leased ones
  // once they are back and idle (busy ones, ours, count as idle here).
  std::size_t open = bag_.counts().open();
  std::size_t excess = open > max_size_ ? open - max_size_ : 0;
  for (PooledConnection* s : idle) {
    if (now >= s->expires || excess > 0) {
      retired.push_back(take_out_locked(s, now >= s->expires ? "lifetime" : "above max_size"));
      --idle_left;
      if (excess > 0) --excess;
    } else if (config_.idle_timeout.count() > 0 && now - s->last_used >= config_.idle_timeout &&
               idle_left > min_idle_) {
      retired.push_back(take_out_locked(s, "idle"));
      --idle_left;
    } else if (config_.keepalive_interval.count() > 0 &&
               now - s->last_checked >= config_.keepalive_interval) {
      to_ping.push_back(s);  // stays busy until the ping is done
    } else if (advice_due && !advisor) {
      advisor = s;  // stays busy until the advice is read
    } else {
      put_back_locked(s, true, {}, retired);  // idle again, or to a waiter that came since
    }
  }
  wake_opener_locked();
  lk.unlock();

  retire(retired);
  for (const auto& leak : new_leaks) report_leak(leak);
  for (PooledConnection* s : to_ping) {
    std::string why;
    auto epoch = round_trips_.health_epoch();
    auto ping_start = Clock::now();
    bool ok = round_trips_.keepalive(*s, why);
    breaker_outcome(ok, Clock::now() - ping_start);
    std::vector<Retired> broken;
    {
      std::lock_guard guard(mu_);
      ++statistics_.keepalives;
      if (ok) {
        s->last_checked = Clock::now();
        s->proven_epoch = epoch;
      } else {
        ++statistics_.validation_failures;
      }
      put_back_locked(s, ok, why, broken);
    }
    if (!ok) {
      round_trips_.mark_suspect();
      emit(PoolEventType::validation_failure, broken.front().connection.id, why);
    }
    retire(broken);
  }
  if (advisor) {
    size_from_advice(*advisor);
    std::vector<Retired> broken;
    {
      std::lock_guard guard(mu_);
      bool ok = advisor->conn.transaction_status() == TransactionStatus::idle;
      put_back_locked(advisor, ok, "broken", broken);
    }
    retire(broken);
  }
  lk.lock();
}

}  // namespace usher::detail
