// Connection::exec_params: one parameterised statement, its parameters sent as they
// are (text, or binary with their length: nothing is cut at a NUL byte), its error
// thrown as a member of the hierarchy. COPY to or from the client is refused cleanly.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <limits>
#include <vector>

#include "usher/connection.hpp"
#include "usher/errors.hpp"
#include "param_arrays.hpp"
#include "wait.hpp"

namespace usher {
namespace {

[[noreturn]] void throw_for(PGconn* conn, PGresult* res) {
  const char* field = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string code = field ? field : "";  // copied: PQclear frees it
  std::string message = detail::trimmed(res ? PQresultErrorMessage(res) : PQerrorMessage(conn));
  if (message.empty()) message = detail::trimmed(PQerrorMessage(conn));
  PQclear(res);
  // Errors libpq makes up itself (connection lost) carry no SQLSTATE.
  if (PQstatus(conn) != CONNECTION_OK && (code.empty() || code.starts_with("08")))
    throw ConnectionError(message, code.empty() ? "08006" : code);
  throw_database_error(code, message);
}

// Text format ends a value at its first NUL: refuse it rather than send less. libpq
// takes a length as an int.
void check(const Param& p, std::size_t number) {
  if (!p.text) return;
  if (p.text->size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw InvalidParameter(fmt::format("parameter ${} is {} bytes: more than a protocol message "
                                       "can carry", number, p.text->size()),
                           "54000");
  if (p.binary) return;
  if (auto at = p.text->find('\0'); at != std::string::npos)
    throw InvalidParameter(
        fmt::format("parameter ${} holds a NUL byte at offset {} of {}: text cannot carry it; "
                    "bind binary data as usher::Bytes (bytea)", number, at, p.text->size()),
        "22021");
}

}  // namespace

namespace detail {
ParamArrays::ParamArrays(std::span<const Param> params) {
  values.reserve(params.size());
  types.reserve(params.size());
  lengths.reserve(params.size());
  formats.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    check(p, i + 1);
    values.push_back(p.text ? p.text->data() : nullptr);
    types.push_back(p.type);
    lengths.push_back(p.text ? static_cast<int>(p.text->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
}
}  // namespace detail

namespace {

// The statement started a COPY with the client. COPY TO STDOUT: its rows are read and
// dropped, so the statement ends as it would have (and its transaction is unharmed).
// COPY FROM STDIN: ended with an error, so nothing is loaded. Then the usual results.
[[noreturn]] void refuse_copy(PGconn* conn, PGresult* res) {
  ExecStatusType kind = PQresultStatus(res);
  PQclear(res);
  const char* what = kind == PGRES_COPY_IN ? "COPY ... FROM STDIN" : "COPY ... TO STDOUT";
  if (kind == PGRES_COPY_IN) {
    PQputCopyEnd(conn, "libusher: exec() sends no COPY data");
  } else {
    char* row = nullptr;
    while (PQgetCopyData(conn, &row, 0) > 0) PQfreemem(row);
  }
  std::string outcome = kind == PGRES_COPY_IN ? "ended with an error, nothing was loaded"
                                              : "ran; the rows it sent were read and dropped";
  while (PGresult* r = PQgetResult(conn)) {  // COPY's own end, then nothing
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
      PQclear(r);  // a COPY that does not end: the pool closes this connection
      break;
    }
    if (st == PGRES_FATAL_ERROR && kind != PGRES_COPY_IN) outcome = "failed while its rows were read";
    PQclear(r);
  }
  if (PQstatus(conn) != CONNECTION_OK) throw ConnectionError(detail::trimmed(PQerrorMessage(conn)), "08006");
  throw NotSupported(
      fmt::format("exec() does not support {}: the statement {}; use the libpq COPY functions "
                  "on native()", what, outcome),
      "0A000");
}

}  // namespace

Result Connection::exec_params(const std::string& sql, std::span<const Param> params) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  ++uses_;
  detail::ParamArrays a(params);
  PGresult* res = PQexecParams(conn_, sql.c_str(), a.count(), a.types.data(), a.values.data(),
                               a.lengths.data(), a.formats.data(), 0);
  switch (res ? PQresultStatus(res) : PGRES_FATAL_ERROR) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
      return Result(res);
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
    case PGRES_COPY_BOTH:
      refuse_copy(conn_, res);
    default:
      throw_for(conn_, res);
  }
}

}  // namespace usher
