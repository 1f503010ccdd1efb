// Deferred BEGIN: Pool::transaction's BEGIN and SET LOCAL timeouts, owed by the
// connection (Connection::Owed) until the body's first statement takes them along in one
// pipeline: [BEGIN] [set_config] [statement] [sync], one round trip where there were two
// (three with timeouts). The way PgJDBC sends its BEGIN with the first query.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <optional>
#include <span>
#include <string>
#include <utility>

#include "usher/connection.hpp"
#include "usher/errors.hpp"
#include "error_fields.hpp"
#include "param_arrays.hpp"

namespace usher {

Result Connection::exec_behind_owed(const char* sql, std::span<const Param> params,
                                    const ExecOptions& options) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  // The statement's values are checked before anything is sent: a refused one sends
  // nothing, and the BEGIN stays owed.
  std::optional<detail::ParamArrays> arrays;
  if (sql && !params.empty()) arrays.emplace(params);
  const Owed owed = std::exchange(owed_, Owed{});  // sent now, whatever comes of it

  // SET LOCAL through set_config(..., true): the values are bound, never pasted. Only the
  // settings asked for are sent (a NULL value would reset the session's own SET).
  std::string timeouts[2];
  const char* values[2];
  int count = 0;
  if (owed.statement_timeout_ms > 0) timeouts[count++] = fmt::format("{}ms", owed.statement_timeout_ms);
  if (owed.lock_timeout_ms > 0) timeouts[count++] = fmt::format("{}ms", owed.lock_timeout_ms);
  for (int i = 0; i < count; ++i) values[i] = timeouts[i].c_str();
  const char* set_timeouts =
      owed.statement_timeout_ms > 0 && owed.lock_timeout_ms > 0
          ? "SELECT pg_catalog.set_config('statement_timeout', $1, true),"
            " pg_catalog.set_config('lock_timeout', $2, true)"
      : owed.statement_timeout_ms > 0 ? "SELECT pg_catalog.set_config('statement_timeout', $1, true)"
                                      : "SELECT pg_catalog.set_config('lock_timeout', $1, true)";

  std::size_t statements = 1;
  bool sent = PQenterPipelineMode(conn_) == 1 &&
              PQsendQueryParams(conn_, owed.begin, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  if (sent && count > 0) {
    sent = PQsendQueryParams(conn_, set_timeouts, count, nullptr, values, nullptr, nullptr, 0) == 1;
    ++statements;
  }
  if (sent && sql) {
    sent = arrays ? PQsendQueryParams(conn_, sql, arrays->count(), arrays->types.data(),
                                      arrays->values.data(), arrays->lengths.data(),
                                      arrays->formats.data(), 0) == 1
                  : PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
    ++statements;
  }
  if (!sent || PQpipelineSync(conn_) != 1) {
    ErrorFields f = detail::fields_of(conn_, nullptr);
    close();  // half a pipeline sent: not usable again
    owed_.lost_before_begin = true;
    throw ConnectionError(f.message, "08006");
  }
  Result answers[3];
  try {
    read_results(options, std::span<Result>(answers, statements));
  } catch (const Error&) {
    // The connection ended before BEGIN was answered: nothing of the transaction ran.
    if (!is_open() && !answers[0].native()) owed_.lost_before_begin = true;
    throw;
  }
  return std::move(answers[statements - 1]);
}

void Connection::pay_owed(const ExecOptions& options) {
  if (owed_.begin) exec_behind_owed(nullptr, {}, options);
}

}  // namespace usher
