#include "table.hpp"

#include <cstdlib>

#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

namespace usher::cli {

std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string cut(std::string_view s, std::size_t width) {
  if (display_width(s) <= width) return std::string(s);
  if (width == 0) return {};
  std::size_t keep = width - 1, seen = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == keep) break;  // stop before the next code point, never inside one
      ++seen;
    }
  }
  return std::string(s.substr(0, i)) + "…";
}

std::string human_age(std::string_view seconds) {
  if (seconds.empty()) return {};
  double value = std::strtod(std::string(seconds).c_str(), nullptr);
  if (value < 0) value = 0;
  auto s = static_cast<long long>(value);
  if (s < 60) return value < 10 ? fmt::format("{:.1f}s", value) : fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, s % 3600 / 60);
  return fmt::format("{}d{:02}h", s / 86400, s % 86400 / 3600);
}

std::string array_items(std::string_view array) {
  if (array.size() >= 2 && array.front() == '{' && array.back() == '}') array = array.substr(1, array.size() - 2);
  return std::string(array);
}

std::size_t terminal_width() {
  if (const char* columns = std::getenv("COLUMNS")) {
    long n = std::strtol(columns, nullptr, 10);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

void Table::print(std::FILE* out, std::size_t width) const {
  std::vector<std::size_t> widths;
  for (const auto& c : columns_) widths.push_back(display_width(c.header));
  for (const auto& row : rows_)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));

  // Shrink only the last column (the free text: query, detail, rationale) to fit.
  if (width > 0 && !widths.empty()) {
    std::size_t others = 0;
    for (std::size_t i = 0; i + 1 < widths.size(); ++i) others += widths[i] + 2;
    constexpr std::size_t min_last = 12;
    std::size_t room = width > others + min_last ? width - others : min_last;
    widths.back() = std::min(widths.back(), room);
  }

  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      std::string cell = i < cells.size() ? cut(cells[i], widths[i]) : std::string();
      std::string pad(widths[i] - display_width(cell), ' ');
      bool last = i + 1 == columns_.size();
      if (columns_[i].right) text += pad + cell;
      else text += last ? cell : cell + pad;  // no trailing blanks
      if (!last) text += "  ";
    }
    fmt::print(out, "{}\n", text);
  };
  std::vector<std::string> headers;
  for (const auto& c : columns_) headers.push_back(c.header);
  line(headers);
  for (const auto& row : rows_) line(row);
}

}  // namespace usher::cli
