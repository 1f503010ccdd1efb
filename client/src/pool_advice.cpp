// Reading usher.pool_advice() for one service: the statement, its parameters, the row,
// and the server's errors turned into typed ones that say what to do.
#include "usher/pool_advice.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <array>
#include <stdexcept>

#include "pool_advice_query.hpp"
#include "sql_text.hpp"
#include "usher/errors.hpp"

namespace usher {
namespace {

// The instances argument is built by the server from two parameters, so neither the
// service name nor the count is ever part of the SQL text. Only the asked-for row comes
// back: the function computes every enabled service, which is cheap.
constexpr const char* kQuery =
    "SELECT service, client_instances, max_pool_size, min_idle, basis, rationale"
    " FROM usher.pool_advice(jsonb_build_object($1::text, $2::int)) WHERE service = $1";

std::array<Param, 2> advice_params(std::string_view service, int instances) {
  if (service.empty()) throw std::invalid_argument("fetch_pool_advice: service must not be empty");
  // pg_usher's own range; checked here so that 22023 from the server can only mean the
  // service (see throw_advice_error).
  if (instances < 1 || instances > 100000)
    throw std::invalid_argument(
        fmt::format("fetch_pool_advice: instances must be 1 to 100000 (got {})", instances));
  return {Param{std::string(service), type_oids::text},
          Param{std::to_string(instances), type_oids::int4}};
}

// The server's fields are kept; what() says what to do.
[[noreturn]] void throw_advice_error(const Connection& conn, std::string_view service,
                                     const Error& e) {
  PGconn* c = conn.native();
  std::string db = c && PQdb(c) ? PQdb(c) : "";
  std::string role = c && PQuser(c) ? PQuser(c) : "";
  const std::string& sqlstate = e.sqlstate();
  const std::string server = e.what();  // one line
  if (sqlstate == "3F000")
    throw ExtensionUnavailable(
        fmt::format("pg_usher is not installed in database \"{}\" (no schema usher): run CREATE "
                    "EXTENSION pg_usher there to read usher.pool_advice() (server: {})", db, server),
        e.fields());
  if (sqlstate == "42883")
    throw ExtensionUnavailable(
        fmt::format("usher.pool_advice(jsonb) does not exist in database \"{}\": pg_usher is not "
                    "installed there, or is a version without it (server: {})", db, server),
        e.fields());
  if (sqlstate == "55000")
    throw ExtensionUnavailable(
        fmt::format("usher.pool_advice() needs pg_usher in the server's shared_preload_libraries "
                    "(server: {})", server),
        e.fields());
  if (sqlstate == "42501")
    // The function runs with the caller's rights and reads pg_usher's monitoring views and
    // functions: EXECUTE on it alone is not enough; pg_monitor has all of it.
    throw InsufficientPrivilege(
        fmt::format("role \"{}\" may not read usher.pool_advice(): GRANT pg_monitor TO {} (the "
                    "function reads pg_usher's monitoring views; EXECUTE on it alone is not "
                    "enough) (server: {})", role, detail::quote_identifier(role), server),
        e.fields());
  if (sqlstate == "22023")
    throw UnknownService(
        fmt::format("service \"{}\" is not an enabled service of pg_usher's published registry "
                    "(server: {})", service, server),
        std::string(service), e.fields());
  throw;  // as it was
}

PoolAdvice read_advice(const Result& r, std::string_view service) {
  // pool_advice() raises 22023 for an unknown service; no row means it was disabled or
  // dropped between the check and the row.
  if (r.rows() == 0)
    throw UnknownService(
        fmt::format("service \"{}\": usher.pool_advice() returned no row for it", service),
        std::string(service), "");
  PoolAdvice a;
  a.service = r.get<std::string>(0, "service");
  a.client_instances = r.get<int>(0, "client_instances");
  a.max_pool_size = r.get<int>(0, "max_pool_size");
  a.min_idle = r.get<int>(0, "min_idle");
  a.basis = r.get<std::string>(0, "basis");
  a.rationale = r.get<std::string>(0, "rationale");
  return a;
}

}  // namespace

PoolAdvice fetch_pool_advice(Connection& conn, std::string_view service, int instances) {
  return detail::fetch_pool_advice(conn, service, instances, ExecOptions{});
}

namespace detail {

PoolAdvice fetch_pool_advice(Connection& conn, std::string_view service, int instances,
                             const ExecOptions& options) {
  auto params = advice_params(service, instances);
  Result r;
  try {
    r = conn.exec_params(kQuery, params, options);
  } catch (const ConnectionError&) {  // 57P01 is also a DatabaseError: it passes as it is
    throw;
  } catch (const DatabaseError& e) {
    throw_advice_error(conn, service, e);
  }
  return read_advice(r, service);
}

}  // namespace detail
}  // namespace usher
