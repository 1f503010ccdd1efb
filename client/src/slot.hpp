#pragma once
// Internal: one pooled connection ("cell") and the lock-free state that lends it.
//
// A cell is never freed while its pool lives: a retired connection leaves the cell
// empty for the next one. That is what lets a thread keep a plain pointer to the cell
// it used last and take it back with one compare-and-swap, without the pool's lock
// (lend_cache.hpp), even when the connection in it was replaced in the meantime.
//
// Who may touch what:
// - `state` is the only field anyone may touch without owning the cell. Whoever moves
//   it out of `idle` (CAS, acquire) owns the cell: the borrower, or a pool thread.
// - SlotData belongs to the cell's owner; id, backend_pid, created and expires are also
//   read under the pool's lock, and only written under it.
// - The lease (where, thread, borrowed_at) is written by the borrower without a lock and
//   read by the maintenance thread through a sequence lock (read_lease()).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <source_location>
#include <string>
#include <thread>

#include "usher/connection.hpp"

namespace usher::detail {

using Clock = std::chrono::steady_clock;

enum class SlotState : std::uint8_t {
  empty,      // no connection: free for the opener
  idle,       // free: taken with a CAS idle -> lent, by anyone, without the lock
  lent,       // with a borrower, who gives it back with a CAS lent -> idle, no lock
  lent_slow,  // with a borrower, who must give it back under the lock: threads are
              // waiting (the hand-off goes to the first) or the pool is closed
  busy,       // the pool's own threads use it (keepalive, retirement checks)
};

// What a connection is: movable, so that a retired one can leave its cell.
struct SlotData {
  Connection conn;
  std::uint64_t id = 0;
  int backend_pid = 0;          // copied at open: readable without touching the PGconn
  Clock::time_point created, expires, last_used, last_checked;
  // PoolCore::health_epoch_ as read before this connection's last round trip of the
  // pool's own (open, validation, keepalive): a borrower's return proves nothing, the
  // backend may have died after its last statement.
  std::uint64_t proven_epoch = 0;
  bool has_extension = false;   // usher.checkout/usher.checkin exist on this server
  bool lease_on_server = false; // usher.checkout() recorded a holder, not yet checked in
  bool return_sent = false;     // the session reset or usher.checkin() sent on return; its
                                // answer is unread (the next borrow or keepalive reads it)
  std::uint64_t uses_at_lend = 0;  // conn.uses() when lent: more on return means it was used
  bool discard = false;         // the borrower asked for it to be closed
};

// Its own cache lines: each thread mostly works on its own cell, and should not slow
// down the thread working on the next one.
struct alignas(64) Slot : SlotData {
  std::atomic<SlotState> state{SlotState::empty};
  // Under the pool's lock: a lease that was out when the pool closed keeps the pool's
  // memory alive until it comes back (PoolCore::refs_).
  bool holds_ref = false;
  // Under the pool's lock: the lease (by sequence number) already reported as a leak.
  std::uint64_t leak_reported_seq = 0;

  struct Lease {
    Clock::time_point borrowed_at;
    std::source_location where;
    std::thread::id thread;
    std::uint64_t seq;  // identifies this lease of the cell
  };

  // The owner publishes its lease / ends it. Plain stores on the owner's cache line.
  void begin_lease(Clock::time_point at, const std::source_location& site,
                   std::thread::id by) noexcept {
    auto seq = lease_seq_.load(std::memory_order_relaxed);  // even: none published
    // A reader that sees one of the stores below must also see the sequence move on
    // from the last end_lease() (which happened before this thread got the cell).
    std::atomic_thread_fence(std::memory_order_release);
    borrowed_at_.store(at.time_since_epoch().count(), std::memory_order_relaxed);
    where_.store(site, std::memory_order_relaxed);
    thread_.store(by, std::memory_order_relaxed);
    lease_seq_.store(seq + 1, std::memory_order_release);
  }
  void end_lease() noexcept {
    lease_seq_.store(lease_seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }

  // The owner's view of its own lease.
  Clock::time_point borrowed_at() const noexcept {
    return Clock::time_point(Clock::duration(borrowed_at_.load(std::memory_order_relaxed)));
  }
  std::source_location where() const noexcept { return where_.load(std::memory_order_relaxed); }
  std::thread::id thread() const noexcept { return thread_.load(std::memory_order_relaxed); }

  // Anyone's view: the current lease, or nullopt if none is published or it changed
  // while being read (a sequence lock: the borrower never waits for the reader).
  std::optional<Lease> read_lease() const noexcept {
    auto seq = lease_seq_.load(std::memory_order_acquire);
    if (seq % 2 == 0) return std::nullopt;
    Lease l{borrowed_at(), where(), thread(), seq};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (lease_seq_.load(std::memory_order_relaxed) != seq) return std::nullopt;
    return l;
  }

 private:
  std::atomic<std::uint64_t> lease_seq_{0};  // odd while a lease is published
  std::atomic<Clock::rep> borrowed_at_{0};
  std::atomic<std::source_location> where_{};
  std::atomic<std::thread::id> thread_{};
  static_assert(std::atomic<std::source_location>::is_always_lock_free);
  static_assert(std::atomic<std::thread::id>::is_always_lock_free);
};

// A connection on its way out, with the reason for the retire event.
struct Retired {
  SlotData slot;
  std::string reason;
};

}  // namespace usher::detail
