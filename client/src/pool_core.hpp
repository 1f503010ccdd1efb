#pragma once
// Internal: the state and threads behind usher::Pool.
//
// Locking: one mutex (mu_) guards the slot lists, the waiter queue and the counters.
// It is never held across network I/O: connecting, validating, resetting and closing
// connections all happen on a slot that has been taken out of the shared lists.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <source_location>
#include <string>
#include <thread>
#include <vector>

#include "histogram.hpp"
#include "usher/connection.hpp"
#include "usher/pool.hpp"
#include "usher/pool_config.hpp"
#include "waiter_queue.hpp"

namespace usher::detail {

using Clock = std::chrono::steady_clock;

enum class SlotState { idle, lent, busy /* the pool's own threads are using it */ };

// One pooled connection and what the pool knows about it.
struct Slot {
  Connection conn;
  std::uint64_t id = 0;
  int backend_pid = 0;          // copied at open: readable without touching the PGconn
  SlotState state = SlotState::busy;
  Clock::time_point created, expires, last_used, last_checked;
  bool has_extension = false;   // usher.checkout/usher.checkin exist on this server
  bool lease_on_server = false; // usher.checkout() recorded a holder, not yet checked in
  bool checkin_sent = false;    // usher.checkin() sent on return; its result is unread
  bool discard = false;         // the borrower asked for it to be closed
  // While lent (written under the pool's lock when lent):
  Clock::time_point borrowed_at;
  std::source_location where;
  std::thread::id thread;       // kept after return: the thread that used it last
  bool leak_reported = false;
};

// A slot on its way out, with the reason for the retire event.
struct Retired {
  std::unique_ptr<Slot> slot;
  std::string reason;
};

// max_lifetime minus up to 25%, so that connections opened together do not all expire
// (and reconnect) together. Zero means no limit: time_point::max().
Clock::time_point expiry(Clock::time_point created, std::chrono::milliseconds max_lifetime,
                         std::mt19937_64& rng);

// "pool/file.cpp:42 thread 1403..." — the holder recorded by usher.checkout().
std::string holder_text(std::string_view pool, const std::source_location& where,
                        std::thread::id thread);

class PoolCore {
 public:
  explicit PoolCore(PoolConfig config);
  ~PoolCore();
  PoolCore(const PoolCore&) = delete;
  PoolCore& operator=(const PoolCore&) = delete;

  // Null only for try_only when nothing is free now. Throws PoolTimeout / PoolClosed.
  Slot* acquire(Clock::time_point start, Clock::time_point deadline,
                const std::source_location& where, bool try_only);
  void give_back(Slot* slot, bool discard) noexcept;
  CloseReport close(std::chrono::milliseconds timeout);
  // The Pool object is gone: free this now, or when the last lease comes back.
  void release_owner() noexcept;

  std::vector<LeakInfo> leaks() const;
  PoolStats stats() const;
  std::optional<bool> extension_detected() const;
  const PoolConfig& config() const noexcept { return config_; }

 private:
  // pool_core.cpp: lending and returning
  Slot* take_idle_locked();
  void make_available_locked(Slot* slot);
  std::unique_ptr<Slot> remove_locked(Slot* slot);
  std::size_t connections_wanted_locked() const;
  void wake_opener_locked();
  std::string describe_locked() const;
  LeakInfo leak_info_locked(const Slot& slot, Clock::time_point now) const;
  void drop_reference() noexcept;

  // slot_health.cpp: the round trips, always outside the lock
  std::unique_ptr<Slot> open_slot(Clock::time_point deadline);
  bool prepare_for_borrower(Slot& slot, Clock::time_point now, Clock::time_point deadline,
                            std::string& why, bool& round_trip);
  bool clean_after_borrower(Slot& slot, Clock::time_point now, std::string& why);
  bool keepalive(Slot& slot, std::string& why);

  // pool_opener.cpp / pool_maintenance.cpp: the two background threads
  void opener_loop();
  void maintenance_loop();
  void run_maintenance(std::unique_lock<std::mutex>& lk);

  // pool_events.cpp-like helpers (pool_notify.cpp)
  void emit(PoolEventType type, std::uint64_t connection_id, std::string reason,
            const LeakInfo* leak = nullptr) const;
  void log(LogLevel level, std::string_view message) const;
  void retire(std::vector<Retired>& retired) const;  // closes them and emits events
  void mark_suspect(Clock::time_point since) noexcept;

  const PoolConfig config_;
  const std::vector<std::pair<std::string, std::string>> connect_options_;

  // What every acquire and return touches, together on their own cache lines, so that
  // a lend moves as few lines between cores as possible.
  alignas(64) mutable std::mutex mu_;
  bool closed_ = false;
  std::size_t in_use_ = 0;
  std::uint64_t acquired_ = 0;
  // 1 for the Pool object + 1 per lease out: the last one to let go deletes this.
  // Guarded by mu_, which lending and returning hold anyway.
  std::size_t refs_ = 1;
  std::vector<Slot*> idle_;                 // a stack: back() was returned last
  WaiterQueue waiters_;

  alignas(64) std::condition_variable opener_cv_, maintenance_cv_, close_cv_;
  std::vector<std::unique_ptr<Slot>> all_;  // every open connection
  std::size_t busy_ = 0, pending_ = 0, peak_total_ = 0;
  std::uint64_t next_id_ = 0;
  std::uint64_t created_ = 0, destroyed_ = 0, timeouts_ = 0;
  std::uint64_t validation_failures_ = 0, connect_failures_ = 0, leaks_ = 0;
  std::uint64_t validations_ = 0, keepalives_ = 0, maintenance_runs_ = 0;
  std::string last_connect_error_;
  bool connect_failing_ = false;
  Clock::time_point next_connect_attempt_{};
  std::chrono::milliseconds connect_backoff_{10};
  std::mt19937_64 rng_;

  // Connections last checked before this moment must be validated before lending:
  // set when one connection turns out broken, which usually means they all are
  // (server restart, network cut).
  std::atomic<Clock::rep> suspect_since_{Clock::time_point::min().time_since_epoch().count()};
  std::atomic<int> extension_{-1};  // -1 unknown, 0 absent, 1 present

  Histogram acquire_wait_, usage_;


  std::thread opener_, maintenance_;
};

}  // namespace usher::detail
