#pragma once
// Rows of a usher::Result (docs/client.md, "Rows"):
//
//   for (auto row : conn.exec("SELECT id, name FROM t")) {
//     int id = row.get<int>("id");                 // by name, or row.get<int>(0)
//     auto [i, n] = row.as<std::tuple<int, std::string>>();
//     User u = row.as<User>();                     // through usher::row_traits<User>
//   }
//
// A Row is a view: the Result it came from must outlive it.

#include <cstddef>
#include <iterator>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "usher/result.hpp"

namespace usher {

class Row;

// Maps a row into a type of yours: specialise it with
//   static T from_row(const usher::Row& row);
// e.g.
//   template <> struct usher::row_traits<User> {
//     static User from_row(const usher::Row& r) {
//       return {r.get<long>("id"), r.get<std::string>("name")};
//     }
//   };
template <typename T, typename Enable = void>
struct row_traits;  // no definition: as<T>() of a type without one fails to compile

// One field of a row: row["name"].as<int>(), row[0].is_null().
class Field {
 public:
  Field(const Result& result, std::size_t row, std::size_t column)
      : result_(&result), row_(row), column_(column) {}
  template <typename T>
  T as() const {
    return result_->get<T>(row_, column_);
  }
  bool is_null() const { return result_->is_null(row_, column_); }
  std::string_view text() const { return result_->text(row_, column_); }
  std::string name() const { return result_->column_name(column_); }
  oid type() const { return result_->column_type(column_); }

 private:
  const Result* result_;
  std::size_t row_, column_;
};

class Row {
 public:
  Row(const Result& result, std::size_t index) : result_(&result), index_(index) {}

  std::size_t index() const noexcept { return index_; }
  std::size_t size() const noexcept { return result_->columns(); }

  template <typename T>
  T get(std::size_t column) const {
    return result_->get<T>(index_, column);
  }
  template <typename T>
  T get(std::string_view column) const {
    return result_->get<T>(index_, column);
  }
  bool is_null(std::size_t column) const { return result_->is_null(index_, column); }
  bool is_null(std::string_view column) const {
    return result_->is_null(index_, result_->column_index(column));
  }
  Field operator[](std::size_t column) const { return Field(*result_, index_, column); }
  Field operator[](std::string_view column) const {
    return Field(*result_, index_, result_->column_index(column));
  }

  // The row as a std::tuple (every column, in order: a TypeMismatch when the counts
  // differ) or as a type with a row_traits specialisation.
  template <typename T>
  T as() const {
    if constexpr (is_tuple<T>::value) {
      constexpr std::size_t n = std::tuple_size_v<T>;
      if (n != size()) throw_count(n);
      return as_tuple<T>(std::make_index_sequence<n>{});
    } else {
      return row_traits<T>::from_row(*this);
    }
  }

  const Result& result() const noexcept { return *result_; }

 private:
  template <typename T>
  struct is_tuple : std::false_type {};
  template <typename... Ts>
  struct is_tuple<std::tuple<Ts...>> : std::true_type {};

  template <typename T, std::size_t... I>
  T as_tuple(std::index_sequence<I...>) const {
    return T{get<std::tuple_element_t<I, T>>(I)...};
  }
  [[noreturn]] void throw_count(std::size_t wanted) const;

  const Result* result_;
  std::size_t index_;
};

class RowIterator {
 public:
  using iterator_category = std::random_access_iterator_tag;
  using value_type = Row;
  using difference_type = std::ptrdiff_t;
  using pointer = void;
  using reference = Row;

  RowIterator() = default;
  RowIterator(const Result* result, std::size_t index) : result_(result), index_(index) {}

  Row operator*() const { return Row(*result_, index_); }
  Row operator[](difference_type n) const { return Row(*result_, index_ + n); }
  RowIterator& operator++() { ++index_; return *this; }
  RowIterator operator++(int) { auto old = *this; ++index_; return old; }
  RowIterator& operator--() { --index_; return *this; }
  RowIterator operator--(int) { auto old = *this; --index_; return old; }
  RowIterator& operator+=(difference_type n) { index_ += n; return *this; }
  RowIterator& operator-=(difference_type n) { index_ -= n; return *this; }
  friend RowIterator operator+(RowIterator i, difference_type n) { return i += n; }
  friend RowIterator operator+(difference_type n, RowIterator i) { return i += n; }
  friend RowIterator operator-(RowIterator i, difference_type n) { return i -= n; }
  friend difference_type operator-(const RowIterator& a, const RowIterator& b) {
    return static_cast<difference_type>(a.index_) - static_cast<difference_type>(b.index_);
  }
  friend bool operator==(const RowIterator& a, const RowIterator& b) { return a.index_ == b.index_; }
  friend auto operator<=>(const RowIterator& a, const RowIterator& b) { return a.index_ <=> b.index_; }

 private:
  const Result* result_ = nullptr;
  std::size_t index_ = 0;
};

inline Row Result::row(std::size_t index) const {
  if (index >= rows())
    throw std::out_of_range("row " + std::to_string(index) + " out of range: result has " +
                            std::to_string(rows()) + " rows");
  return Row(*this, index);
}
inline Row Result::operator[](std::size_t index) const { return row(index); }
inline RowIterator Result::begin() const noexcept { return RowIterator(this, 0); }
inline RowIterator Result::end() const noexcept { return RowIterator(this, rows()); }

}  // namespace usher
