#pragma once
// usher::Pool: a fast, fair connection pool. See docs/client.md.
//
//   usher::PoolConfig cfg;
//   cfg.conninfo = "host=db dbname=app";
//   usher::Pool pool(cfg);
//   {
//     auto conn = pool.acquire();                      // RAII lease
//     auto n = conn->exec("SELECT count(*) FROM t WHERE id > $1", 10).scalar<long>();
//   }                                                  // returned here

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "usher/circuit_breaker.hpp"
#include "usher/connection.hpp"
#include "usher/errors.hpp"
#include "usher/pool_advice.hpp"
#include "usher/pool_config.hpp"
#include "usher/pool_events.hpp"
#include "usher/pool_stats.hpp"
#include "usher/retry.hpp"
#include "usher/transaction.hpp"

namespace usher {

namespace detail {
class PoolCore;
struct PooledConnection;

// Pool::run's body: fn(conn, attempt) when fn takes the attempt number, else fn(conn).
template <class Fn>
decltype(auto) invoke_run_body(Fn& fn, Connection& conn, int attempt) {
  if constexpr (std::is_invocable_v<Fn&, Connection&, int>)
    return fn(conn, attempt);
  else
    return fn(conn);
}
template <class Fn>
using run_result_t = decltype(invoke_run_body(std::declval<std::remove_reference_t<Fn>&>(),
                                              std::declval<Connection&>(), 1));
}  // namespace detail

// A borrowed connection. Move-only; gives the connection back when destroyed. A
// connection returned inside a transaction is rolled back; one that is broken or in
// an unknown state is closed. A lease may outlive its Pool: returned after the pool
// was destroyed, it just closes its connection.
class Lease {
 public:
  Lease() noexcept = default;
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();

  Connection& operator*() const noexcept;
  Connection* operator->() const noexcept;
  Connection& connection() const noexcept { return **this; }
  explicit operator bool() const noexcept { return pooled_ != nullptr; }

  // Gives the connection back now (the destructor then does nothing).
  void release() noexcept;
  // Gives it back to be closed instead of reused (e.g. after changing session state).
  void discard() noexcept;
  // The pool's id of this connection (stable for its lifetime; ids are never reused).
  std::uint64_t connection_id() const noexcept;

 private:
  friend class Pool;
  Lease(detail::PoolCore* core, detail::PooledConnection* pooled) noexcept
      : core_(core), pooled_(pooled) {}
  detail::PoolCore* core_ = nullptr;
  detail::PooledConnection* pooled_ = nullptr;
};

// What close() could not wait for.
struct CloseReport {
  std::size_t outstanding = 0;    // leases still out when the timeout expired
  std::vector<LeakInfo> leases;   // who holds them
  bool clean() const noexcept { return outstanding == 0; }
};

class Pool {
 public:
  using Clock = std::chrono::steady_clock;

  // Validates `config` (std::invalid_argument) and starts the background threads, which
  // open min_idle connections. Does not wait for them.
  explicit Pool(PoolConfig config);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;
  // close(0s) if not closed yet.
  ~Pool();

  // Lends a connection, waiting up to acquire_timeout (strictly FIFO among waiters).
  // Throws usher::PoolTimeout, usher::PoolClosed, and usher::CircuitOpen at once while
  // the pool's circuit breaker is open (no connection attempted; see breaker()).
  Lease acquire(std::source_location where = std::source_location::current());
  Lease acquire(Clock::time_point deadline,
                std::source_location where = std::source_location::current());
  // Lends an idle connection if one is free now and nobody is waiting; never waits
  // for a new connection (it may still validate the idle one). CircuitOpen as acquire().
  std::optional<Lease> try_acquire(std::source_location where = std::source_location::current());

  // Runs fn in a transaction on a borrowed connection: BEGIN with `opts`, fn, COMMIT;
  // ROLLBACK and rethrow on any exception. fn takes usher::Transaction& (savepoints:
  // tx.savepoint(fn2)), Connection&, or Connection& and the attempt number.
  // Serialization failures, deadlocks and lock timeouts (40001, 40P01, 55P03), in fn or
  // at COMMIT, retry the whole transaction on a fresh borrow, up to opts.max_attempts and
  // within opts.max_elapsed, with exponential backoff and full jitter: fn must be safe to
  // run again. A connection lost during COMMIT is resolved through pg_xact_status() on a
  // fresh borrow: committed returns, aborted is retried like 40001, and an outcome that
  // cannot be found throws usher::CommitUnknown (never retried). Returns what fn returns.
  //
  // Called inside a transaction body of this pool on the same thread, it does not borrow:
  // it is tx.savepoint(fn) of the innermost transaction there (opts are not applied, but
  // an isolation stronger than the enclosing one is std::invalid_argument), and only the
  // outermost call retries.
  template <class Fn>
  detail::transaction_result_t<Fn> transaction(
      Fn&& fn, TransactionOptions opts = {},
      std::source_location where = std::source_location::current());

  // One entry point for an operation that must survive the database being unavailable
  // (docs/client.md, "Retry, circuit breaker and fallback"): each attempt borrows a
  // connection (the pool's circuit breaker refuses at once with CircuitOpen while the
  // server is known to be down) and runs fn(conn) (or fn(conn, attempt)) on it; an error
  // `policy` retries (default: transient ones) is tried again after its backoff, on a
  // fresh borrow. fn must be idempotent (it is not wrapped in a transaction: use
  // pool.transaction inside, or conn.exec of one statement). Returns what fn returns.
  template <class Fn>
  detail::run_result_t<Fn> run(Fn&& fn, const RetryPolicy& policy = {},
                               std::source_location where = std::source_location::current());
  // The same, and when the breaker refuses (CircuitOpen) or the policy gives up on an
  // error it would retry (attempts or max_elapsed used up), returns fallback(error)
  // instead of throwing: an answer from elsewhere (a cache, a default, a queue). Other
  // errors (a constraint violation, a bug in fn) propagate.
  template <class Fn, class Fallback>
    requires std::is_invocable_v<Fallback&, const Error&>
  detail::run_result_t<Fn> run(Fn&& fn, const RetryPolicy& policy, Fallback&& fallback,
                               std::source_location where = std::source_location::current());

  // The circuit breaker of the pool's server (PoolConfig::breaker): its state and
  // metrics (also in stats()), reset() or force_open() by an operator.
  CircuitBreaker& breaker() const noexcept;

  // Stops lending, closes idle connections, waits up to `timeout` for the leases still
  // out and reports those it could not wait for. Leases returned later are closed.
  CloseReport close(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Leases held longer than leak_detection_threshold right now.
  std::vector<LeakInfo> leaks() const;
  PoolStats stats() const;
  // Prometheus text exposition format (0.0.4), every series labelled pool="<name>".
  std::string prometheus() const;
  // Whether connections found the pg_usher lease functions (nullopt: none seen yet).
  std::optional<bool> extension_detected() const;
  // The usher.pool_advice() row the pool's sizes come from (size_from_advice), or
  // nullopt when none was read. stats() has the max_size and min_idle in force.
  std::optional<PoolAdvice> advice() const;
  // The configuration as given (with size_from_advice, max_size and min_idle there are
  // the ceiling, not necessarily the sizes in force).
  const PoolConfig& config() const noexcept;

 private:
  void run_transaction(detail::TransactionBody body, const TransactionOptions& opts,
                       std::source_location where);

  detail::PoolCore* core_;  // owned; outlives the Pool while leases are out
};

template <class Fn>
detail::run_result_t<Fn> Pool::run(Fn&& fn, const RetryPolicy& policy, std::source_location where) {
  return retry(policy, [&](int attempt) -> detail::run_result_t<Fn> {
    auto lease = acquire(where);
    return detail::invoke_run_body(fn, *lease, attempt);
  });
}

template <class Fn, class Fallback>
  requires std::is_invocable_v<Fallback&, const Error&>
detail::run_result_t<Fn> Pool::run(Fn&& fn, const RetryPolicy& policy, Fallback&& fallback,
                                   std::source_location where) {
  try {
    return run(fn, policy, where);
  } catch (const CircuitOpen& e) {
    return fallback(e);
  } catch (const Error& e) {
    if (!policy.should_retry(e)) throw;
    return fallback(e);
  }
}

template <class Fn>
detail::transaction_result_t<Fn> Pool::transaction(Fn&& fn, TransactionOptions opts,
                                                   std::source_location where) {
  return detail::run_erased(fn, [&](detail::TransactionBody body) {
    run_transaction(body, opts, where);
  });
}

}  // namespace usher
