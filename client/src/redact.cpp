// Password redaction for connection strings, in the two syntaxes libpq accepts.
#include "usher/redact.hpp"

#include <cctype>
#include <string>

namespace usher {
namespace {

bool is_secret_keyword(std::string_view key) {
  return key == "password" || key == "sslpassword";
}

bool is_uri(std::string_view s) {
  return s.starts_with("postgresql://") || s.starts_with("postgres://");
}

std::string redact_uri(std::string_view uri) {
  std::string out;
  auto scheme_end = uri.find("://") + 3;
  auto query = uri.find('?', scheme_end);
  std::string_view head = uri.substr(0, query);
  std::string_view tail = query == std::string_view::npos ? "" : uri.substr(query + 1);

  // user:password@ — the last '@' before the query ends the user info.
  auto at = head.rfind('@');
  if (at != std::string_view::npos && at >= scheme_end) {
    auto colon = head.find(':', scheme_end);
    if (colon != std::string_view::npos && colon < at) {
      out.append(head.substr(0, colon + 1)).append("***").append(head.substr(at));
    } else {
      out.append(head);
    }
  } else {
    out.append(head);
  }
  if (query == std::string_view::npos) return out;

  out.push_back('?');
  bool first = true;
  while (true) {
    auto amp = tail.find('&');
    std::string_view param = tail.substr(0, amp);
    if (!first) out.push_back('&');
    first = false;
    auto eq = param.find('=');
    if (eq != std::string_view::npos && is_secret_keyword(param.substr(0, eq))) {
      out.append(param.substr(0, eq + 1)).append("***");
    } else {
      out.append(param);
    }
    if (amp == std::string_view::npos) break;
    tail.remove_prefix(amp + 1);
  }
  return out;
}

// keyword = value pairs; values may be 'single quoted' and use backslash escapes.
std::string redact_keyword_value(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  while (true) {
    skip_space();
    if (i >= s.size()) return out;
    std::size_t key_start = i;
    while (i < s.size() && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    std::string_view key = s.substr(key_start, i - key_start);
    skip_space();
    if (i >= s.size() || s[i] != '=') {
      if (!out.empty()) out.push_back(' ');
      return out.append("...");
    }
    ++i;
    skip_space();
    std::size_t value_start = i;
    if (i < s.size() && s[i] == '\'') {
      ++i;
      while (i < s.size() && s[i] != '\'') i += (s[i] == '\\') ? 2 : 1;
      if (i >= s.size()) {  // unterminated quote: the rest may be a secret
        if (!out.empty()) out.push_back(' ');
        return out.append(key).append("=...");
      }
      ++i;
    } else {
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i])))
        i += (s[i] == '\\') ? 2 : 1;
      if (i > s.size()) i = s.size();
    }
    if (!out.empty()) out.push_back(' ');
    out.append(key).push_back('=');
    if (is_secret_keyword(key)) {
      out.append("***");
    } else {
      out.append(s.substr(value_start, i - value_start));
    }
  }
}

}  // namespace

std::string redact_conninfo(std::string_view conninfo) {
  return is_uri(conninfo) ? redact_uri(conninfo) : redact_keyword_value(conninfo);
}

std::string redact_url(std::string_view url) {
  return url.find("://") == std::string_view::npos ? std::string(url) : redact_uri(url);
}

}  // namespace usher
