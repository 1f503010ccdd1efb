#pragma once
// Options of Pool::transaction and the type-erased body it runs. See docs/client.md,
// "Transactions and retries".

#include <chrono>
#include <type_traits>
#include <utility>

namespace usher {

class Connection;

enum class Isolation { read_committed, repeatable_read, serializable };

struct TransactionOptions {
  Isolation isolation = Isolation::read_committed;
  bool read_only = false;
  // Only with serializable + read_only (the one place PostgreSQL gives it a meaning).
  bool deferrable = false;
  // Attempts in all, the first included (>= 1). Retried: 40001, 40P01, 55P03.
  int max_attempts = 3;
  // Backoff before attempt n+1: uniform in [0, min(max_delay, base_delay * 2^(n-1))].
  std::chrono::milliseconds base_delay{10};
  std::chrono::milliseconds max_delay{1000};
};

namespace detail {

// fn(conn, attempt) when fn takes the attempt number (1, 2, ...), else fn(conn).
template <class Fn>
decltype(auto) invoke_transaction_body(Fn& fn, Connection& conn, int attempt) {
  if constexpr (std::is_invocable_v<Fn&, Connection&, int>)
    return fn(conn, attempt);
  else
    return fn(conn);
}

template <class Fn>
using transaction_result_t =
    decltype(invoke_transaction_body(std::declval<Fn&>(), std::declval<Connection&>(), 0));

// A non-owning reference to the body of one attempt.
struct TransactionBody {
  void* context;
  void (*call)(void* context, Connection& conn, int attempt);
};

template <class B>
TransactionBody erase_body(B& body) {
  return {&body, [](void* b, Connection& c, int a) { (*static_cast<B*>(b))(c, a); }};
}

}  // namespace detail
}  // namespace usher
