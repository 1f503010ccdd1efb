#pragma once
// Internal: the pool's "send now, read later". When a connection comes back, its session
// reset or usher.checkin() is sent and not awaited; the next borrower's validation (or
// the keepalive) reads the answer, so a return costs no round trip (round_trips.cpp).
// Reading goes through the one statement loop every exec() uses (statement.cpp); so does
// reading a pipeline (Pipelined).

#include <chrono>
#include <span>

#include "usher/connection.hpp"
#include "usher/result.hpp"

namespace usher::detail {

class SentStatements {
 public:
  // Sends `sql` (no parameters) without waiting for its answer. False when it could not
  // be sent: the connection is broken.
  static bool send(Connection& conn, const char* sql);
  // Reads the answer to what was sent (nothing pending: an empty Result), within
  // `options`; throws as Connection::exec() does, closing the connection when it must.
  static Result read(Connection& conn, const ExecOptions& options) {
    return conn.read_results(options);
  }
};

// Two statements (no parameters) in one round trip, pipelined behind a flush request:
// the transaction's COMMIT behind the query of its transaction id (transaction.cpp).
// results[i] holds statement i's last result as soon as it arrived, so the first's is
// there even when the second's read throws (the connection lost during COMMIT).
class Pipelined {
 public:
  static void exec(Connection& conn, const char* first, const char* second,
                   std::span<Result, 2> results, const ExecOptions& options) {
    conn.exec_pipelined(first, second, results, options);
  }
};

// Pool::transaction's BEGIN, owed by the connection until the body's first statement
// takes it along (Connection::Owed; owed_begin.cpp). Owned by the transaction
// (transaction.cpp), which clears it on every way out of an attempt.
class OwedBegin {
 public:
  // `begin`: static text. Timeouts of 0 are not sent.
  static void owe(Connection& conn, const char* begin, std::chrono::milliseconds statement_timeout,
                  std::chrono::milliseconds lock_timeout) noexcept {
    conn.owed_ = Connection::Owed{begin, statement_timeout.count(), lock_timeout.count(), false};
  }
  static bool owed(const Connection& conn) noexcept { return conn.owed_.begin != nullptr; }
  static void forget(Connection& conn) noexcept { conn.owed_.begin = nullptr; }
  // The connection ended before BEGIN was answered: the server ran nothing of it.
  static bool lost_before_begin(const Connection& conn) noexcept {
    return conn.owed_.lost_before_begin;
  }
};

}  // namespace usher::detail
