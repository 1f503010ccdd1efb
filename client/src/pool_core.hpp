#pragma once
// Internal: the state and threads behind usher::Pool.
//
// Lending without the lock: a thread first tries the cell it borrowed last (one CAS
// idle -> lent), and gives a connection back with one CAS lent -> idle. Everything else
// takes one mutex (mu_), which guards the cells, the waiter queue and the counters.
// The two meet through one rule, kept under mu_: while a thread waits, no cell is idle
// and every lent cell is `lent_slow`. Its borrower's CAS then fails, so the connection
// comes back under the lock and goes to the longest waiter (strict FIFO: nobody can
// take it on the way). close() marks lent cells the same way. mu_ is never held across
// network I/O: connecting, validating, resetting and closing happen on a cell the
// thread owns.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <source_location>
#include <string>
#include <thread>
#include <vector>

#include "histogram.hpp"
#include "slot.hpp"
#include "usher/connection.hpp"
#include "usher/pool.hpp"
#include "usher/pool_config.hpp"
#include "waiter_queue.hpp"

namespace usher::detail {

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
  std::optional<PoolAdvice> advice() const;
  const PoolConfig& config() const noexcept { return config_; }

 private:
  // pool_core.cpp: lending and returning
  Slot* take_cached() noexcept;  // lock-free
  Slot* take_idle_locked();
  void mark_lent_slow_locked();
  void make_available_locked(Slot* slot);
  Slot* new_cell_locked();
  Retired remove_locked(Slot* slot, std::string reason);
  struct Counts {
    std::size_t idle = 0;  // idle or busy (the pool's own threads)
    std::size_t lent = 0;
  };
  Counts count_locked() const;
  std::size_t connections_wanted_locked() const;
  bool fail_fast_locked() const;  // permanent_connect_error_ and nothing open to wait for
  void wake_opener_locked();
  std::string describe_locked() const;
  std::optional<LeakInfo> leak_info_locked(const Slot& slot, Clock::time_point now) const;
  void drop_reference() noexcept;

  // slot_health.cpp: the round trips, always outside the lock
  SlotData open_slot();
  bool prepare_for_borrower(Slot& slot, Clock::time_point now,
                            std::string& why, bool& round_trip);
  bool clean_after_borrower(Slot& slot, Clock::time_point now, bool used, std::string& why);
  bool keepalive(Slot& slot, std::string& why);
  std::optional<PoolAdvice> read_advice(SlotData& slot, std::string& why);

  // pool_sizing.cpp: max_size and min_idle from usher.pool_advice()
  void size_from_advice(SlotData& slot);  // reads, applies and reports; outside the lock

  // pool_opener.cpp / pool_maintenance.cpp: the two background threads
  void opener_loop();
  void maintenance_loop();
  void run_maintenance(std::unique_lock<std::mutex>& lk);

  // pool_events.cpp-like helpers (pool_notify.cpp)
  void emit(PoolEventType type, std::uint64_t connection_id, std::string reason,
            const LeakInfo* leak = nullptr, const PoolAdvice* advice = nullptr) const;
  void log(LogLevel level, std::string_view message) const;
  void retire(std::vector<Retired>& retired) const;  // closes them and emits events
  void mark_suspect() noexcept;

  const PoolConfig config_;
  const std::vector<std::pair<std::string, std::string>> connect_options_;
  const std::uint64_t uid_;  // never reused: names this pool in the threads' lend caches
  // An eventfd written once, by close(): every wait of the pool's own round trips and
  // connection attempts polls it, so that close(0ms) and ~Pool return at once instead
  // of waiting out a connect_timeout or validation_timeout. Never read.
  const int abort_fd_;

  // Read by every acquire, written once in a long while: its own cache line.
  // Moves on each time a connection turns out broken, which usually means they all are
  // (server restart, network cut): a connection whose last proof of life
  // (SlotData::proven_epoch) is older must be validated before it is lent, whenever
  // and in whatever order it came back.
  alignas(64) std::atomic<std::uint64_t> health_epoch_{0};
  std::atomic<int> extension_{-1};  // -1 unknown, 0 absent, 1 present

  // The slow path: on their own cache lines, away from the fast path's.
  alignas(64) mutable std::mutex mu_;
  bool closed_ = false;
  // 1 for the Pool object + 1 per lease out when the pool closed (Slot::holds_ref):
  // the last one to let go deletes this.
  std::size_t refs_ = 1;
  WaiterQueue waiters_;
  std::vector<std::unique_ptr<Slot>> cells_;  // every cell; never shrinks (see slot.hpp)
  std::vector<Slot*> free_cells_;             // empty cells, for the opener
  std::condition_variable opener_cv_, maintenance_cv_, close_cv_;
  // The sizes in force: the configured ones until usher.pool_advice() says otherwise
  // (size_from_advice), never above config_.max_size.
  std::size_t max_size_, min_idle_;
  std::optional<PoolAdvice> advice_;       // the advice they come from
  bool advice_failing_ = false;            // the last read failed (warn once per run)
  Clock::time_point next_advice_ = Clock::time_point::max();  // the maintenance thread's next read
  bool advice_read_ = false;               // opener thread only: the first read is done
  std::size_t pending_ = 0, peak_total_ = 0;
  std::uint64_t next_id_ = 0;
  std::uint64_t created_ = 0, destroyed_ = 0, timeouts_ = 0;
  std::uint64_t validation_failures_ = 0, connect_failures_ = 0, leaks_ = 0;
  std::uint64_t validations_ = 0, keepalives_ = 0, maintenance_runs_ = 0;
  std::string last_connect_error_;
  bool connect_failing_ = false;
  // The last attempt failed with an error that waiting does not cure (a database or
  // role that does not exist, a bad password: Error::is_transient() false). While no
  // connection is open, borrowers get that error at once instead of a PoolTimeout.
  std::exception_ptr permanent_connect_error_;
  Clock::time_point next_connect_attempt_{};
  std::chrono::milliseconds connect_backoff_{10};
  std::mt19937_64 rng_;

  // Sharded per thread: recording moves no shared cache line. The number of
  // acquires is acquire_wait_'s count.
  Histogram acquire_wait_, usage_;

  std::thread opener_, maintenance_;
};

}  // namespace usher::detail
