#pragma once
// Internal: waiting on libpq's socket against a deadline and an abort descriptor, for
// connecting (connect.cpp) and for the statement loop every exec() uses (statement.cpp),
// so that no pool thread blocks longer than its timeout.

#include <libpq-fe.h>

#include <chrono>
#include <string>

namespace usher::detail {

using Clock = std::chrono::steady_clock;

enum class Wait { ready, timed_out, aborted, failed };
// Waits until the connection's socket is readable (or writable), the deadline passes,
// or `abort_fd` (when >= 0) is readable (`aborted`; it is not read).
Wait wait_socket_or_abort(PGconn* conn, bool for_write, Clock::time_point deadline, int abort_fd);
// True when `fd` (>= 0) is readable now (or closed).
bool readable_now(int fd);

// libpq's error text without the trailing newline.
std::string trimmed(const char* message);

}  // namespace usher::detail
