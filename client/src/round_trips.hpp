#pragma once
// Internal: the pool's own round trips on a connection (round_trips.cpp): open, validate
// or check out on borrow, clean up on return (rollback, session reset, checkin),
// keepalive, the pool advice read. All run outside the pool's and the bag's locks, on a
// connection the calling thread holds. Owns what every one of them needs: the connect
// options, the eventfd that close() writes to abandon them, and the health epoch.

#include <atomic>
#include <cstdint>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "pooled_connection.hpp"
#include "usher/pool_advice.hpp"
#include "usher/pool_config.hpp"

namespace usher::detail {

// "pool/file.cpp:42 thread 1403..." — the holder recorded by usher.checkout().
std::string holder_text(std::string_view pool, const std::source_location& where,
                        std::thread::id thread);

class RoundTrips {
 public:
  // config and validations outlive this.
  RoundTrips(const PoolConfig& config, std::atomic<std::uint64_t>& validations);
  ~RoundTrips();
  RoundTrips(const RoundTrips&) = delete;
  RoundTrips& operator=(const RoundTrips&) = delete;

  // A new connection, checked for pg_usher and through after_connect. Throws the
  // connect error (usher::Error, keeping its class). `connected_after`, when given, is
  // set once the server has accepted the connection (before those checks): how long
  // that took (the circuit breaker's call).
  ConnectionRecord open(std::optional<Clock::duration>* connected_after = nullptr);
  // Before a connection is lent: reads the last return's answer if pending, validates
  // when due, records the lease with usher.checkout when wanted (the holder: `where`
  // and `thread`; the lease itself is published after this). `round_trip` says one was
  // made. False (with `why`) when the connection must be retired.
  bool prepare_for_borrower(PooledConnection& pc, Clock::time_point now,
                            const std::source_location& where, std::thread::id thread,
                            std::string& why, bool& round_trip);
  // When it comes back: cancels what runs, rolls back, sends the session reset and
  // checkin (not awaited). False (with `why`) when it must be retired.
  bool clean_after_borrower(PooledConnection& pc, Clock::time_point now, bool used,
                            std::string& why);
  bool keepalive(ConnectionRecord& record, std::string& why);
  std::optional<PoolAdvice> read_advice(ConnectionRecord& record, std::string& why);

  // close(): every wait of a round trip or connection attempt in flight returns now.
  void abort() noexcept;

  // Moves on each time a connection turns out broken, which usually means they all are
  // (server restart, network cut): a connection whose last proof of life
  // (ConnectionRecord::proven_epoch) is older must be validated before it is lent.
  std::uint64_t health_epoch() const noexcept {
    return health_epoch_.load(std::memory_order_relaxed);
  }
  void mark_suspect() noexcept { health_epoch_.fetch_add(1, std::memory_order_relaxed); }

 private:
  // Every statement of the pool's own: bounded by `until`, abandoned by abort().
  ExecOptions options(Clock::time_point until) const;
  // Reads the answer to the session reset or checkin sent when the connection came back.
  bool read_return(ConnectionRecord& c, Clock::time_point until, std::string& why);

  const PoolConfig& config_;
  const std::vector<std::pair<std::string, std::string>> connect_options_;
  // An eventfd written once, by abort(): every wait of the pool's own round trips and
  // connection attempts polls it, so that close(0ms) and ~Pool return at once instead
  // of waiting out a connect_timeout or validation_timeout. Never read.
  const int abort_fd_;
  // Read by every acquire, written once in a long while: its own cache line.
  alignas(64) std::atomic<std::uint64_t> health_epoch_{0};
  std::atomic<std::uint64_t>& validations_;  // validation and checkout round trips on borrow
};

}  // namespace usher::detail
