// Text of SQL the library writes itself. Internal.
#pragma once

#include <string>
#include <string_view>

namespace usher::detail {

// `name` as an SQL identifier: double-quoted, its double quotes doubled, so that any name
// (a statement's, a channel's, a role's) is one identifier and never SQL.
inline std::string quote_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}

}  // namespace usher::detail
