#pragma once
// Internal: libpq's asynchronous API driven against a deadline, so that connecting,
// validating and resetting can never block a pool thread for longer than its timeout.

#include <libpq-fe.h>

#include <chrono>
#include <span>
#include <string>

#include "usher/connection.hpp"

namespace usher::detail {

using Clock = std::chrono::steady_clock;

enum class Wait { ready, timed_out, aborted, failed };
// Waits until the connection's socket is readable (or writable), the deadline passes,
// or `abort_fd` (when >= 0) is readable (`aborted`; it is not read).
Wait wait_socket_or_abort(PGconn* conn, bool for_write, Clock::time_point deadline, int abort_fd);
// True when `fd` (>= 0) is readable now (or closed).
bool readable_now(int fd);

struct Outcome {
  bool ok = false;      // every result was a success
  std::string error;    // otherwise why (libpq's text, trimmed)
  std::string sqlstate;
  Result last;          // the last result received
};

// Sends one statement and reads all its results, giving up at `deadline`, or as soon
// as `abort_fd` (when >= 0: the pool's, written when it closes) is readable.
Outcome exec_until(PGconn* conn, const char* sql, std::span<const Param> params,
                   Clock::time_point deadline, int abort_fd = -1);

// Reads and drops every result still pending on the connection (after PQsendQuery*).
Outcome drain_until(PGconn* conn, Clock::time_point deadline, int abort_fd = -1);

// libpq's error text without the trailing newline.
std::string trimmed(const char* message);

}  // namespace usher::detail
