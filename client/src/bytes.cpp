// usher::Bytes from bytea's text output: hex ("\x6162", the default since PostgreSQL
// 9.0) or the escape format (bytea_output = escape: "a\000b", "\\" for a backslash).
#include <string>

#include "usher/types.hpp"

namespace usher {

int detail::hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

namespace {

[[noreturn]] void not_bytea(std::string_view text) {
  throw TypeMismatch("'" + std::string(text.substr(0, 40)) + "' is not bytea text output");
}

}  // namespace

Bytes value_traits<Bytes>::from_text(std::string_view text, oid) {
  return Bytes{detail::decode_bytea(text)};
}

std::string detail::decode_bytea(std::string_view text) {
  std::string out;
  if (text.starts_with("\\x")) {
    text.remove_prefix(2);
    if (text.size() % 2 != 0) not_bytea(text);
    out.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
      int hi = hex_digit(text[i]), lo = hex_digit(text[i + 1]);
      if (hi < 0 || lo < 0) not_bytea(text);
      out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out.push_back(text[i]);
    } else if (i + 1 < text.size() && text[i + 1] == '\\') {
      out.push_back('\\');
      ++i;
    } else if (i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' &&
               text[i + 2] >= '0' && text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
      out.push_back(static_cast<char>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0')));
      i += 3;
    } else {
      not_bytea(text);
    }
  }
  return out;
}

}  // namespace usher
