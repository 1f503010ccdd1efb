// Read-only SQL from C++: runs a query through SPI and copies the result out as text,
// so C++ code can work on it with ordinary containers. Every PostgreSQL call goes
// through pg::call, so an error becomes a usher::PgError and no longjmp crosses C++.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace usher::spi {

class Table {
 public:
  Table(size_t columns, std::vector<std::optional<std::string>> cells)
      : columns_(columns), cells_(std::move(cells)) {}

  size_t rows() const { return columns_ ? cells_.size() / columns_ : 0; }
  // NULL is std::nullopt; every other value is its text output form.
  const std::optional<std::string>& at(size_t row, size_t column) const {
    return cells_.at(row * columns_ + column);
  }

 private:
  size_t columns_;
  std::vector<std::optional<std::string>> cells_;
};

// Runs `sql` read-only in its own SPI connection and returns every row. `sql` must be a
// string literal: its plan is prepared once per backend and kept.
Table query(const char* sql);

}  // namespace usher::spi
