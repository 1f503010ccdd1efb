// Waiting on libpq's socket against a deadline and an abort descriptor (wait.hpp).
#include "wait.hpp"

#include <poll.h>

#include <algorithm>


namespace usher::detail {

std::string trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

Wait wait_socket_or_abort(PGconn* conn, bool for_write, Clock::time_point deadline,
                          int abort_fd) {
  int fd = PQsocket(conn);
  if (fd < 0) return Wait::failed;
  pollfd p[2] = {{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0},
                 {abort_fd, POLLIN, 0}};
  // Per statement: without an abort descriptor, one entry; without a deadline, no
  // clock read and no timeout (the kernel arms no timer), as blocking libpq waits.
  nfds_t entries = abort_fd >= 0 ? 2 : 1;
  bool bounded = deadline != Clock::time_point::max();
  while (true) {
    int timeout = -1;
    if (bounded) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return Wait::timed_out;
      timeout = static_cast<int>(std::min<long long>(left, 1000 * 60));
    }
    int rc = ::poll(p, entries, timeout);
    if (rc > 0 && p[1].revents != 0) return Wait::aborted;
    if (rc > 0) return Wait::ready;
    if (rc < 0 && errno != EINTR) return Wait::failed;
  }
}

bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

}  // namespace usher::detail
