#pragma once
// Options of Pool::transaction, the Transaction handle its body may take (savepoints,
// i.e. nested transactions) and the type-erased bodies they run. See docs/client.md,
// "Transactions and retries".

#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "usher/connection.hpp"

namespace usher {

class Pool;
class Transaction;

enum class Isolation { read_committed, repeatable_read, serializable };

struct TransactionOptions {
  Isolation isolation = Isolation::read_committed;
  bool read_only = false;
  // Only with serializable + read_only (the one place PostgreSQL gives it a meaning).
  bool deferrable = false;
  // Attempts in all, the first included (>= 1). Retried: 40001, 40P01, 55P03, and a
  // COMMIT whose connection was lost and that the server says aborted.
  int max_attempts = 3;
  // Backoff before attempt n+1: uniform in [0, min(max_delay, base_delay * 2^(n-1))].
  std::chrono::milliseconds base_delay{10};
  std::chrono::milliseconds max_delay{1000};
  // SET LOCAL statement_timeout / lock_timeout for each attempt (through
  // set_config(..., true), the value bound as a parameter). Zero: the session's own.
  std::chrono::milliseconds statement_timeout{0};
  std::chrono::milliseconds lock_timeout{0};
  // All attempts together, backoff included: no attempt (and no backoff) starts after
  // it, and borrowing a connection waits no longer. Zero: no bound but max_attempts.
  std::chrono::milliseconds max_elapsed{0};
  // A COMMIT whose connection was lost is resolved on a fresh borrow through
  // pg_xact_status(); this bounds that borrow and the polling while the server still
  // reports the transaction in progress. Then usher::CommitUnknown.
  std::chrono::milliseconds commit_resolution_timeout{5000};
};

namespace detail {

// A non-owning reference to the body of one attempt or one savepoint.
struct TransactionBody {
  void* context;
  void (*call)(void* context, Transaction& tx);
};

template <class B>
TransactionBody erase_body(B& body) {
  return {&body, [](void* b, Transaction& t) { (*static_cast<B*>(b))(t); }};
}

}  // namespace detail

// The transaction a body runs in (Pool::transaction and Transaction::savepoint pass it
// to a body that takes `usher::Transaction&`). Belongs to the thread running the body;
// not copyable, and not to be kept after the body returned.
class Transaction {
 public:
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Connection& connection() const noexcept { return *conn_; }
  Connection* operator->() const noexcept { return conn_; }
  template <typename... Args>
  Result exec(const std::string& sql, const Args&... args) {
    return conn_->exec(sql, args...);
  }
  template <typename... Args>
  Result exec(const char* sql, const Args&... args) {
    return conn_->exec(sql, args...);
  }
  // Attempt of the outermost transaction (1, 2, ...).
  int attempt() const noexcept { return attempt_; }
  // 0 for the transaction itself, 1 inside its first savepoint, ...
  int depth() const noexcept { return depth_; }
  Isolation isolation() const noexcept { return isolation_; }

  // A nested transaction: SAVEPOINT (a generated name), fn, RELEASE SAVEPOINT. When fn
  // throws: ROLLBACK TO SAVEPOINT, and the exception propagates unchanged. fn takes
  // Transaction& (the nested one), Connection&, or Connection& and the attempt; the
  // same connection, never a second one. Returns what fn returns.
  template <class Fn>
  auto savepoint(Fn&& fn);

 private:
  friend class Pool;
  Transaction(const void* owner, Connection& conn, int attempt, int depth, Isolation isolation,
              Transaction* root) noexcept;
  void run_savepoint(detail::TransactionBody body);
  // The innermost transaction of `owner` (a pool) running on this thread, or nullptr.
  static Transaction* current(const void* owner) noexcept;

  const void* owner_;
  Connection* conn_;
  int attempt_;
  int depth_;
  Isolation isolation_;
  Transaction* root_;           // the outermost (itself when depth 0)
  Transaction* enclosing_;      // previous innermost on this thread
  unsigned savepoints_ = 0;     // names handed out (root only)
};

namespace detail {

// fn(tx) when fn takes a Transaction&, else fn(conn, attempt) when it takes the attempt
// number (1, 2, ...), else fn(conn).
template <class Fn>
decltype(auto) invoke_transaction_body(Fn& fn, Transaction& tx) {
  if constexpr (std::is_invocable_v<Fn&, Connection&, int>)
    return fn(tx.connection(), tx.attempt());
  else if constexpr (std::is_invocable_v<Fn&, Connection&>)
    return fn(tx.connection());
  else
    return fn(tx);
}

template <class Fn>
using transaction_result_t =
    decltype(invoke_transaction_body(std::declval<Fn&>(), std::declval<Transaction&>()));

// Erases fn into a TransactionBody and runs it through `run`; returns what fn returns.
template <class Fn, class Run>
transaction_result_t<Fn> run_erased(Fn& fn, Run&& run) {
  using R = transaction_result_t<Fn>;
  static_assert(!std::is_reference_v<R>,
                "transaction/savepoint: return a value; a reference would outlive the transaction");
  if constexpr (std::is_void_v<R>) {
    auto body = [&fn](Transaction& tx) { invoke_transaction_body(fn, tx); };
    run(erase_body(body));
  } else {
    std::optional<R> out;
    auto body = [&fn, &out](Transaction& tx) {
      out.reset();
      out.emplace(invoke_transaction_body(fn, tx));
    };
    run(erase_body(body));
    return std::move(*out);
  }
}

}  // namespace detail

template <class Fn>
auto Transaction::savepoint(Fn&& fn) {
  return detail::run_erased(fn, [this](detail::TransactionBody b) { run_savepoint(b); });
}

}  // namespace usher
