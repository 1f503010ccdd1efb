#pragma once
// Internal: a pooled connection, the pool's item in its lending bag (lending_bag.hpp):
// a place that holds one connection at a time (ConnectionRecord, what the pool knows
// of it) and the lock-free record of its current lease.
//
// The place is never freed while its pool lives: a retired connection leaves it empty
// for the next one (see lending_bag.hpp for why).
//
// Who may touch what:
// - `state` (BagEntry) is the only field anyone may touch without holding the pooled
//   connection; the bag moves it. Whoever moves it out of `idle` holds it: the
//   borrower, or a pool thread.
// - The ConnectionRecord belongs to the holder; it is put in and taken out under the
//   bag's lock only (add, remove), so id, backend_pid, created and expires may be read
//   under that lock (LendingBag::for_each_lent) while a borrower holds it.
// - The lease (where, thread, borrowed_at) is written by the borrower without a lock and
//   read by the maintenance thread through a sequence lock (read_lease()).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <source_location>
#include <string>
#include <thread>

#include "lending_bag.hpp"
#include "usher/connection.hpp"

namespace usher::detail {

// One connection and what the pool knows of it: movable, so that a retired one can
// leave its place (the bag's Contents).
struct ConnectionRecord {
  Connection conn;
  std::uint64_t id = 0;
  int backend_pid = 0;          // copied at open: readable without touching the PGconn
  Clock::time_point created, expires, last_used, last_checked;
  // RoundTrips::health_epoch() as read before this connection's last round trip of the
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

// Its own cache lines: each thread mostly works on its own pooled connection, and
// should not slow down the thread working on the next one.
struct alignas(64) PooledConnection : BagEntry, ConnectionRecord {
  using Contents = ConnectionRecord;

  // The maintenance thread's, under the bag's lock (for_each_lent): the lease (by
  // sequence number) already reported as a leak.
  std::uint64_t leak_reported_seq = 0;

  struct Lease {
    Clock::time_point borrowed_at;
    std::source_location where;
    std::thread::id thread;
    std::uint64_t seq;  // identifies this lease of the pooled connection
  };

  // The owner publishes its lease / ends it. Plain stores on the owner's cache line.
  void begin_lease(Clock::time_point at, const std::source_location& site,
                   std::thread::id by) noexcept {
    auto seq = lease_seq_.load(std::memory_order_relaxed);  // even: none published
    // A reader that sees one of the stores below must also see the sequence move on
    // from the last end_lease() (which happened before this thread got the pooled connection).
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
  ConnectionRecord connection;
  std::string reason;
};

}  // namespace usher::detail
