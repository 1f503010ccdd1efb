// Deadline-bounded libpq operations for the pool's own round trips.
#include "wait.hpp"

#include <poll.h>

#include <algorithm>
#include <optional>

#include "param_arrays.hpp"
#include "usher/errors.hpp"

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
  // poll() ignores an entry whose fd is negative.
  pollfd p[2] = {{fd, static_cast<short>(for_write ? POLLOUT : POLLIN), 0},
                 {abort_fd, POLLIN, 0}};
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return Wait::timed_out;
    int rc = ::poll(p, 2, static_cast<int>(std::min<long long>(left, 1000 * 60)));
    if (rc > 0 && p[1].revents != 0) return Wait::aborted;
    if (rc > 0) return Wait::ready;
    if (rc < 0 && errno != EINTR) return Wait::failed;
  }
}

bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

namespace {
const char* why_not(Wait w, const char* timed_out) {
  switch (w) {
    case Wait::aborted: return "abandoned: the pool is closing";
    case Wait::failed: return "cannot wait for the socket";
    default: return timed_out;
  }
}
}  // namespace

Outcome drain_until(PGconn* conn, Clock::time_point deadline, int abort_fd) {
  Outcome out;
  out.ok = true;
  while (true) {
    if (PQflush(conn) == 1) {  // still sending
      if (Wait w = wait_socket_or_abort(conn, true, deadline, abort_fd); w != Wait::ready)
        return {false, why_not(w, "timed out sending"), {}, {}};
      continue;
    }
    while (!PQisBusy(conn)) {
      PGresult* r = PQgetResult(conn);
      if (!r) return out;
      auto st = PQresultStatus(r);
      if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
        out.ok = false;
        out.error = trimmed(PQresultErrorMessage(r));
        const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        out.sqlstate = code ? code : "";
      } else if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
        PQclear(r);  // a COPY the borrower abandoned: not worth rescuing
        return {false, "connection left in COPY state", {}, {}};
      }
      out.last = Result(r);
    }
    if (PQstatus(conn) != CONNECTION_OK) return {false, trimmed(PQerrorMessage(conn)), {}, {}};
    if (Wait w = wait_socket_or_abort(conn, false, deadline, abort_fd); w != Wait::ready)
      return {false, why_not(w, "timed out waiting for the server"), {}, {}};
    if (!PQconsumeInput(conn)) return {false, trimmed(PQerrorMessage(conn)), {}, {}};
  }
}

Outcome exec_until(PGconn* conn, const char* sql, std::span<const Param> params,
                   Clock::time_point deadline, int abort_fd) {
  std::optional<ParamArrays> a;
  try {
    a.emplace(params);
  } catch (const Error& e) {  // a value libpq would cut short: nothing is sent
    return {false, e.what(), e.sqlstate(), {}};
  }
  if (!PQsendQueryParams(conn, sql, a->count(), a->types.data(), a->values.data(),
                         a->lengths.data(), a->formats.data(), 0))
    return {false, trimmed(PQerrorMessage(conn)), {}, {}};
  return drain_until(conn, deadline, abort_fd);
}

}  // namespace usher::detail
