// usher::Bytes from bytea's text output: hex ("\x6162", the default since PostgreSQL
// 9.0) or the escape format (bytea_output = escape: "a\000b", "\\" for a backslash).
#include <cstddef>
#include <string>
#include <vector>

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

// Appends the bytes to `out` (std::string or std::vector<std::byte>): decoded straight
// into the container the caller returns, never through a copy.
template <typename Out>
void decode_into(std::string_view text, Out& out) {
  using Byte = typename Out::value_type;
  if (text.starts_with("\\x")) {
    text.remove_prefix(2);
    if (text.size() % 2 != 0) not_bytea(text);
    out.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
      int hi = detail::hex_digit(text[i]), lo = detail::hex_digit(text[i + 1]);
      if (hi < 0 || lo < 0) not_bytea(text);
      out.push_back(static_cast<Byte>(hi * 16 + lo));
    }
    return;
  }
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      out.push_back(static_cast<Byte>(text[i]));
    } else if (i + 1 < text.size() && text[i + 1] == '\\') {
      out.push_back(static_cast<Byte>('\\'));
      ++i;
    } else if (i + 3 < text.size() && text[i + 1] >= '0' && text[i + 1] <= '3' &&
               text[i + 2] >= '0' && text[i + 2] <= '7' && text[i + 3] >= '0' && text[i + 3] <= '7') {
      out.push_back(static_cast<Byte>((text[i + 1] - '0') * 64 + (text[i + 2] - '0') * 8 + (text[i + 3] - '0')));
      i += 3;
    } else {
      not_bytea(text);
    }
  }
}

}  // namespace

Bytes value_traits<Bytes>::from_text(std::string_view text, oid) {
  Bytes out;
  decode_into(text, out.data);
  return out;
}

void detail::decode_bytea(std::string_view text, std::vector<std::byte>& out) { decode_into(text, out); }

}  // namespace usher
