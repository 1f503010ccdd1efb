#pragma once
// Aligned text tables for the terminal. Widths are counted in code points (not bytes)
// so that service names and query texts in UTF-8 line up.

#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace usher::cli {

struct Column {
  std::string header;
  bool right = false;  // numbers right-aligned
};

class Table {
 public:
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  bool empty() const { return rows_.empty(); }

  // Prints header and rows to `out`. When the last column would run past `width` code
  // points it is cut (ending in "…"), never below a few characters; width 0: no limit.
  void print(std::FILE* out, std::size_t width = 0) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// Code points in a UTF-8 string (continuation bytes are not counted).
std::size_t display_width(std::string_view s);
// At most `width` code points of `s`; a cut string ends in "…".
std::string cut(std::string_view s, std::size_t width);
// A duration given in seconds (as the server's text) for people: "45s", "12m05s",
// "3h07m", "2d04h"; empty stays empty (NULL: not applicable).
std::string human_age(std::string_view seconds);
// The items of a one-dimensional array as the server prints it, without the braces:
// "{a,b}" -> "a,b" (empty array: empty).
std::string array_items(std::string_view array);
// The terminal's width: COLUMNS, else the tty's, else 0 (not a terminal: no limit).
std::size_t terminal_width();

}  // namespace usher::cli
