// Result: typed, bounds-checked access to a PGresult.
#include "usher/result.hpp"
#include "usher/types.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <stdexcept>

namespace usher {

void Result::Deleter::operator()(pg_result* r) const noexcept { PQclear(r); }

Result::Result(pg_result* res) : res_(res) {}

std::size_t Result::rows() const noexcept { return res_ ? PQntuples(res_.get()) : 0; }
std::size_t Result::columns() const noexcept { return res_ ? PQnfields(res_.get()) : 0; }

std::size_t Result::affected_rows() const noexcept {
  if (!res_) return 0;
  const char* n = PQcmdTuples(res_.get());
  return (n && *n) ? std::strtoull(n, nullptr, 10) : 0;
}

std::string Result::column_name(std::size_t column) const {
  check_column(column);
  return PQfname(res_.get(), static_cast<int>(column));
}

std::size_t Result::column_index(std::string_view name) const {
  for (std::size_t c = 0; c < columns(); ++c)
    if (name == PQfname(res_.get(), static_cast<int>(c))) return c;
  throw std::out_of_range(fmt::format("result has no column named \"{}\"", name));
}

oid Result::column_type(std::size_t column) const {
  check_column(column);
  return PQftype(res_.get(), static_cast<int>(column));
}

bool Result::is_null(std::size_t row, std::size_t column) const {
  check_index(row, column);
  return PQgetisnull(res_.get(), static_cast<int>(row), static_cast<int>(column)) != 0;
}

std::string_view Result::text(std::size_t row, std::size_t column) const {
  check_index(row, column);
  int r = static_cast<int>(row), c = static_cast<int>(column);
  return {PQgetvalue(res_.get(), r, c), static_cast<std::size_t>(PQgetlength(res_.get(), r, c))};
}

void Result::check_column(std::size_t column) const {
  if (column >= columns())
    throw std::out_of_range(fmt::format("column {} out of range: result has {} columns", column, columns()));
}

void Result::check_index(std::size_t row, std::size_t column) const {
  check_column(column);
  if (row >= rows())
    throw std::out_of_range(fmt::format("row {} out of range: result has {} rows", row, rows()));
}

void Result::throw_null(std::size_t row, std::size_t column) const {
  throw NullValue(fmt::format("row {} column \"{}\" is NULL; read it as std::optional", row,
                              PQfname(res_.get(), static_cast<int>(column))));
}

void Result::throw_mismatch(std::size_t row, std::size_t column, const char* why,
                            std::string_view cpp_type) const {
  throw TypeMismatch(fmt::format("row {} column \"{}\" ({}) cannot be read as {}: {}", row,
                                 PQfname(res_.get(), static_cast<int>(column)),
                                 server_type_name(PQftype(res_.get(), static_cast<int>(column))),
                                 cpp_type, why));
}

void Row::throw_count(std::size_t wanted) const {
  throw TypeMismatch(fmt::format("row {} has {} columns, the std::tuple {}", index_, size(), wanted));
}

}  // namespace usher
