// SQLSTATE -> member of the error hierarchy.
#include "usher/errors.hpp"

namespace usher {

Error::Error(const std::string& message, std::string sqlstate)
    : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}

UnknownService::UnknownService(const std::string& message, std::string service, std::string sqlstate)
    : DatabaseError(message, std::move(sqlstate)), service_(std::move(service)) {}

void throw_database_error(std::string_view sqlstate, const std::string& message) {
  std::string code(sqlstate);
  auto cls = sqlstate.substr(0, 2);
  if (cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03")
    throw ConnectionError(message, code);
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03" || cls == "53")
    throw TransientError(message, code);
  if (cls == "23") throw ConstraintViolation(message, code);
  if (sqlstate == "42501" || cls == "28") throw PermissionDenied(message, code);
  if (sqlstate == "57014") throw QueryCanceled(message, code);
  throw DatabaseError(message, code);
}

}  // namespace usher
