#pragma once
// Internal: the pool's "send now, read later". When a connection comes back, its session
// reset or usher.checkin() is sent and not awaited; the next borrower's validation (or
// the keepalive) reads the answer, so a return costs no round trip (round_trips.cpp).
// Reading goes through the one statement loop every exec() uses (statement.cpp).

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

}  // namespace usher::detail
