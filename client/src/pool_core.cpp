// PoolCore: lending, returning and the strict-FIFO hand-off between them.
#include "pool_core.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <algorithm>

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
}  // namespace

PoolCore::PoolCore(PoolConfig config)
    : config_((config.validate(), std::move(config))),
      connect_options_(connect_options(config_)),
      rng_(std::random_device{}()) {
  opener_ = std::thread([this] { opener_loop(); });
  maintenance_ = std::thread([this] { maintenance_loop(); });
}

PoolCore::~PoolCore() {
  // Only reached through drop_reference() after close(): threads joined, nothing lent.
  if (opener_.joinable()) opener_.join();
  if (maintenance_.joinable()) maintenance_.join();
}

Slot* PoolCore::acquire(Clock::time_point start, Clock::time_point deadline,
                        const std::source_location& where, bool try_only) {
  bool keep_place = false;  // after a failed validation, wait at the head of the line
  bool slow = false;        // waited, validated or retried: the wait is worth measuring
  while (true) {
    Slot* slot = nullptr;
    bool waited = false;
    {
      std::unique_lock lk(mu_);
      if (closed_) throw PoolClosed(fmt::format("pool \"{}\" is closed", config_.name));
      if (waiters_.empty() && !idle_.empty()) {
        slot = take_idle_locked();
        slot->state = SlotState::lent;
        ++in_use_;
        slot->borrowed_at = start;
      } else if (try_only) {
        return nullptr;
      } else {
        Waiter w;
        keep_place ? waiters_.push_front(&w) : waiters_.push_back(&w);
        wake_opener_locked();
        while (!w.slot && !closed_) {
          if (w.cv.wait_until(lk, deadline) == std::cv_status::timeout) break;
        }
        if (!w.slot) {
          waiters_.remove(&w);
          if (closed_) throw PoolClosed(fmt::format("pool \"{}\" was closed", config_.name));
          ++timeouts_;
          auto waited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
          std::string message = fmt::format("pool \"{}\": no connection within {} ms ({})",
                                            config_.name, waited_ms.count(), describe_locked());
          lk.unlock();
          emit(PoolEventType::timeout, 0, message);
          throw PoolTimeout(message);
        }
        slot = w.slot;  // make_available_locked() counted it in in_use_
        slot->borrowed_at = Clock::now();
        waited = true;
      }
      // Under the lock: the maintenance thread reads these to find leaks.
      slot->where = where;
      slot->thread = std::this_thread::get_id();
      slot->leak_reported = false;
      ++acquired_;
      ++refs_;
    }

    auto now = slot->borrowed_at;
    std::string why;
    bool round_trip = false;
    bool ok = prepare_for_borrower(*slot, now, deadline, why, round_trip);
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
    std::vector<Retired> retired;
    {
      std::lock_guard lk(mu_);
      --in_use_;
      --acquired_;
      ++validation_failures_;
      retired.push_back({remove_locked(slot), why});
      wake_opener_locked();
    }
    emit(PoolEventType::validation_failure, retired.front().slot->id, why);
    retire(retired);
    drop_reference();
    keep_place = true;
  }
}

void PoolCore::give_back(Slot* slot, bool discard) noexcept {
  auto now = Clock::now();
  usage_.record(now - slot->borrowed_at);
  std::string why;
  bool keep = !discard && !slot->discard;
  if (!keep) why = "discarded by borrower";
  if (keep) keep = clean_after_borrower(*slot, now, why);

  std::vector<Retired> retired;
  bool last = false;
  {
    std::lock_guard lk(mu_);
    if (keep && closed_) {
      keep = false;
      why = "pool closed";
    }
    if (keep) {
      slot->last_used = slot->last_checked = now;
      --in_use_;  // make_available_locked() counts it again if it goes to a waiter
      make_available_locked(slot);
      last = --refs_ == 0;  // the hot path lets go of the pool in the same section
    } else {
      --in_use_;
      retired.push_back({remove_locked(slot), why});
      wake_opener_locked();
    }
    if (closed_ && in_use_ == 0) close_cv_.notify_all();
  }
  if (keep) {
    if (last) delete this;
    return;
  }
  retire(retired);  // events use the pool: let go of it only afterwards
  drop_reference();
}

Slot* PoolCore::take_idle_locked() {
  // Prefer the connection this thread used last, if it is among the most recently
  // returned: a thread keeps talking to the same backend, as it would with a
  // connection of its own, which the scheduler rewards (measured in bench/client).
  constexpr std::size_t kLook = 8;
  auto self = std::this_thread::get_id();
  std::size_t n = idle_.size();
  for (std::size_t i = n; i > 0 && i + kLook > n; --i) {
    if (idle_[i - 1]->thread == self) {
      Slot* slot = idle_[i - 1];
      idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i - 1));
      return slot;
    }
  }
  Slot* slot = idle_.back();
  idle_.pop_back();
  return slot;
}

void PoolCore::make_available_locked(Slot* slot) {
  if (Waiter* w = waiters_.pop_front()) {
    // Straight to the longest waiter: nobody can overtake it on the way.
    slot->state = SlotState::lent;
    ++in_use_;
    w->slot = slot;
    w->cv.notify_one();  // under the lock: the waiter's cv lives on its stack
  } else {
    slot->state = SlotState::idle;
    idle_.push_back(slot);
  }
}

std::unique_ptr<Slot> PoolCore::remove_locked(Slot* slot) {
  auto it = std::find_if(all_.begin(), all_.end(), [&](const auto& p) { return p.get() == slot; });
  std::unique_ptr<Slot> owned = std::move(*it);
  *it = std::move(all_.back());
  all_.pop_back();
  ++destroyed_;
  return owned;
}

std::size_t PoolCore::connections_wanted_locked() const {
  if (closed_) return 0;
  std::size_t open = all_.size() + pending_;
  std::size_t room = config_.max_size > open ? config_.max_size - open : 0;
  std::size_t idle = idle_.size() + busy_ + pending_;
  std::size_t for_idle = config_.min_idle > idle ? config_.min_idle - idle : 0;
  std::size_t for_waiters = waiters_.size() > pending_ ? waiters_.size() - pending_ : 0;
  return std::min(room, std::max(for_idle, for_waiters));
}

void PoolCore::wake_opener_locked() {
  if (connections_wanted_locked() > 0) opener_cv_.notify_one();
}

std::string PoolCore::describe_locked() const {
  std::string s = fmt::format("total {}, idle {}, in use {}, waiting {}, pending {}, max_size {}",
                              all_.size(), idle_.size() + busy_, in_use_, waiters_.size(),
                              pending_, config_.max_size);
  if (connect_failing_) s += fmt::format("; last connect error: {}", last_connect_error_);
  return s;
}

LeakInfo PoolCore::leak_info_locked(const Slot& slot, Clock::time_point now) const {
  return LeakInfo{slot.id, slot.backend_pid, slot.where, slot.thread,
                  now - slot.borrowed_at, holder_text(config_.name, slot.where, slot.thread)};
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
      for (Slot* s : idle_) retired.push_back({remove_locked(s), "pool closed"});
      idle_.clear();
      opener_cv_.notify_all();
      maintenance_cv_.notify_all();
    }
  }
  for (auto* t : {&opener_, &maintenance_})
    if (t->joinable() && t->get_id() != std::this_thread::get_id()) t->join();
  retire(retired);

  std::unique_lock lk(mu_);
  close_cv_.wait_for(lk, timeout, [&] { return in_use_ == 0; });
  CloseReport report;
  report.outstanding = in_use_;
  auto now = Clock::now();
  for (const auto& s : all_)
    if (s->state == SlotState::lent) report.leases.push_back(leak_info_locked(*s, now));
  return report;
}

std::vector<LeakInfo> PoolCore::leaks() const {
  std::vector<LeakInfo> out;
  if (config_.leak_detection_threshold.count() == 0) return out;
  std::lock_guard lk(mu_);
  auto now = Clock::now();
  for (const auto& s : all_)
    if (s->state == SlotState::lent && now - s->borrowed_at >= config_.leak_detection_threshold)
      out.push_back(leak_info_locked(*s, now));
  return out;
}

PoolStats PoolCore::stats() const {
  PoolStats s;
  {
    std::lock_guard lk(mu_);
    s.total = all_.size();
    s.idle = idle_.size() + busy_;
    s.in_use = in_use_;
    s.waiting = waiters_.size();
    s.pending = pending_;
    s.max_size = config_.max_size;
    s.peak_total = peak_total_;
    s.created = created_;
    s.destroyed = destroyed_;
    s.acquired = acquired_;
    s.timeouts = timeouts_;
    s.validation_failures = validation_failures_;
    s.connect_failures = connect_failures_;
    s.leaks = leaks_;
    s.validations = validations_;
    s.keepalives = keepalives_;
    s.maintenance_runs = maintenance_runs_;
  }
  s.acquire_wait = acquire_wait_.snapshot();
  s.usage = usage_.snapshot();
  return s;
}

std::optional<bool> PoolCore::extension_detected() const {
  int e = extension_.load(std::memory_order_relaxed);
  if (e < 0) return std::nullopt;
  return e == 1;
}

void PoolCore::mark_suspect(Clock::time_point since) noexcept {
  suspect_since_.store(since.time_since_epoch().count(), std::memory_order_relaxed);
}

}  // namespace usher::detail
