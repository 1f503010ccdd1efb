#pragma once
// The result of one statement: owns the PGresult, gives typed access to fields.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "usher/errors.hpp"
#include "usher/types.hpp"
#include "usher/value_traits.hpp"

struct pg_result;  // libpq's PGresult

namespace usher {

class Row;          // usher/row.hpp, included at the end
class RowIterator;

class Result {
 public:
  Result() = default;
  explicit Result(pg_result* res);  // takes ownership

  std::size_t rows() const noexcept;
  std::size_t columns() const noexcept;
  bool empty() const noexcept { return rows() == 0; }
  // Rows changed by INSERT/UPDATE/DELETE/MERGE..., 0 for other statements.
  std::size_t affected_rows() const noexcept;

  std::string column_name(std::size_t column) const;
  // Throws std::out_of_range naming the column when there is none by that name.
  std::size_t column_index(std::string_view name) const;
  oid column_type(std::size_t column) const;

  bool is_null(std::size_t row, std::size_t column) const;
  // The field's text (empty for NULL); valid while this Result lives.
  std::string_view text(std::size_t row, std::size_t column) const;

  // The field converted through value_traits<T>. Throws usher::NullValue for NULL
  // unless T is std::optional, usher::TypeMismatch when the text does not convert,
  // std::out_of_range for a bad index; every message names the row and column, and a
  // TypeMismatch the server type and the C++ type too.
  template <typename T>
  T get(std::size_t row, std::size_t column) const {
    check_index(row, column);
    if (is_null(row, column)) {
      if constexpr (detail::is_optional<T>::value) {
        return std::nullopt;
      } else {
        throw_null(row, column);
      }
    }
    try {
      return value_traits<T>::from_text(text(row, column), column_type(column));
    } catch (const TypeMismatch& e) {
      throw_mismatch(row, column, e.what(), detail::cpp_type_name<T>());
    }
  }
  template <typename T>
  T get(std::size_t row, std::string_view column) const {
    return get<T>(row, column_index(column));
  }

  // The first column of the first row: for `SELECT count(*) ...` and the like.
  template <typename T>
  T scalar() const {
    return get<T>(0, 0);
  }

  // Rows: `for (auto row : result)`, result.row(i) (usher/row.hpp).
  Row row(std::size_t index) const;
  Row operator[](std::size_t index) const;
  RowIterator begin() const noexcept;
  RowIterator end() const noexcept;

  pg_result* native() const noexcept { return res_.get(); }

 private:
  struct Deleter {
    void operator()(pg_result* r) const noexcept;
  };
  void check_column(std::size_t column) const;
  void check_index(std::size_t row, std::size_t column) const;
  [[noreturn]] void throw_null(std::size_t row, std::size_t column) const;
  [[noreturn]] void throw_mismatch(std::size_t row, std::size_t column, const char* why,
                                   std::string_view cpp_type) const;

  std::unique_ptr<pg_result, Deleter> res_;
};

}  // namespace usher

#include "usher/row.hpp"  // Row and RowIterator, which need Result complete
