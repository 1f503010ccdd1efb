// The text forms of the types in usher/types.hpp: timestamps, dates and intervals in
// PostgreSQL's ISO / postgres output styles, uuid, arrays, and the names of server types
// for error messages.
#include "usher/types.hpp"

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <limits>

namespace usher {
namespace {

using namespace std::chrono;

std::string quote(std::string_view text) {
  return "'" + std::string(text.substr(0, 60)) + (text.size() > 60 ? "...'" : "'");
}

// Reads an unsigned decimal number of at least `min_digits` digits at `pos`.
bool read_number(std::string_view text, std::size_t& pos, long long& out, std::size_t min_digits = 1,
                 std::size_t max_digits = 18) {
  std::size_t start = pos;
  long long v = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9' && pos - start < max_digits)
    v = v * 10 + (text[pos++] - '0');
  if (pos - start < min_digits) return false;
  out = v;
  return true;
}

bool expect(std::string_view text, std::size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

// "1234-05-06" at pos (then " BC" at the very end of the text is looked for by the caller).
bool read_ymd(std::string_view text, std::size_t& pos, year_month_day& out) {
  long long y, m, d;
  if (!read_number(text, pos, y, 4, 7) || !expect(text, pos, '-') || !read_number(text, pos, m, 2, 2) ||
      !expect(text, pos, '-') || !read_number(text, pos, d, 2, 2))
    return false;
  if (text.ends_with(" BC")) y = 1 - y;  // 1 BC is year 0
  // The server's dates reach 5874897 AD and its timestamps 294276 AD; std::chrono::year
  // stops at 32767, and a larger year would wrap into a valid, wrong one.
  if (y > static_cast<int>(year::max()) || y < static_cast<int>(year::min()))
    throw TypeMismatch(fmt::format("{} is outside the years std::chrono holds ({} to {})", quote(text),
                                   static_cast<int>(year::min()), static_cast<int>(year::max())));
  out = year_month_day{year{static_cast<int>(y)}, month{static_cast<unsigned>(m)},
                       day{static_cast<unsigned>(d)}};
  return out.ok();
}

// total += count * unit, or false when that does not fit in 64 bits.
bool add_scaled(long long& total, long long count, long long unit) {
  long long scaled;
  return !__builtin_mul_overflow(count, unit, &scaled) && !__builtin_add_overflow(total, scaled, &total);
}

// "HH:MM:SS[.ffffff]" as microseconds; hours may have any number of digits, minutes and
// seconds are below 60 (as the server writes them). Negated when `negative` (so that
// the most negative interval fits). False when it does not fit.
bool read_time(std::string_view text, std::size_t& pos, microseconds& out, bool negative = false) {
  long long h, m, s, frac = 0;
  if (!read_number(text, pos, h, 1, 12) || !expect(text, pos, ':') || !read_number(text, pos, m, 2, 2) ||
      !expect(text, pos, ':') || !read_number(text, pos, s, 2, 2) || m > 59 || s > 59)
    return false;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    if (!read_number(text, pos, frac, 1, 6)) return false;
    for (std::size_t n = pos - start; n < 6; ++n) frac *= 10;
  }
  long long sign = negative ? -1 : 1, us = sign * frac;
  if (!add_scaled(us, sign * h, 3'600'000'000) || !add_scaled(us, sign * (m * 60 + s), 1'000'000))
    return false;
  out = microseconds{us};
  return true;
}

[[noreturn]] void not_iso(std::string_view text, const char* what) {
  throw TypeMismatch(fmt::format("{} is not a {} in ISO format (libusher reads DateStyle ISO, "
                                 "the server's default: SET DateStyle = ISO)", quote(text), what));
}

int64_t to_int(std::string_view text, const char* what) {
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size())
    throw TypeMismatch(fmt::format("{} in an interval is not a number of {}", quote(text), what));
  return v;
}

[[noreturn]] void wrong_column(oid column_type, const char* expected) {
  throw TypeMismatch(fmt::format("the column is {}, not {}", server_type_name(column_type), expected));
}

}  // namespace

std::string server_type_name(oid type) {
  switch (type) {
    case type_oids::unknown: return "unknown";
    case type_oids::boolean: return "bool";
    case type_oids::bytea: return "bytea";
    case type_oids::name: return "name";
    case type_oids::int8: return "int8";
    case type_oids::int2: return "int2";
    case type_oids::int4: return "int4";
    case type_oids::text: return "text";
    case type_oids::oid_type: return "oid";
    case type_oids::json: return "json";
    case type_oids::float4: return "float4";
    case type_oids::float8: return "float8";
    case type_oids::bpchar: return "bpchar";
    case type_oids::varchar: return "varchar";
    case type_oids::date: return "date";
    case 1083: return "time";
    case type_oids::timestamp: return "timestamp";
    case type_oids::timestamptz: return "timestamptz";
    case type_oids::interval: return "interval";
    case 1266: return "timetz";
    case type_oids::numeric: return "numeric";
    case type_oids::uuid: return "uuid";
    case type_oids::jsonb: return "jsonb";
    case type_oids::bool_array: return "bool[]";
    case type_oids::int2_array: return "int2[]";
    case type_oids::int4_array: return "int4[]";
    case type_oids::text_array: return "text[]";
    case type_oids::int8_array: return "int8[]";
    case type_oids::float4_array: return "float4[]";
    case type_oids::float8_array: return "float8[]";
    case type_oids::uuid_array: return "uuid[]";
    case 1015: return "varchar[]";
    case 1001: return "bytea[]";
    default: return fmt::format("type oid {}", type);
  }
}

Uuid Uuid::parse(std::string_view text) {
  std::string_view t = text;
  if (t.size() >= 2 && t.front() == '{' && t.back() == '}') t = t.substr(1, t.size() - 2);
  Uuid u;
  std::size_t n = 0;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '-' && n % 4 == 0 && n > 0 && i + 1 < t.size()) continue;
    int v = detail::hex_digit(t[i]);
    if (v < 0 || n >= 32) throw TypeMismatch(fmt::format("{} is not a uuid", quote(text)));
    u.bytes[n / 2] = static_cast<std::uint8_t>(n % 2 == 0 ? v << 4 : u.bytes[n / 2] | v);
    ++n;
  }
  if (n != 32) throw TypeMismatch(fmt::format("{} is not a uuid", quote(text)));
  return u;
}

std::string Uuid::to_string() const {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  return out;
}

namespace detail {

std::string format_date(year_month_day d) {
  if (!d.ok()) throw InvalidParameter("a std::chrono::year_month_day that is not a valid date", "22008");
  int y = static_cast<int>(d.year());
  bool bc = y <= 0;
  return fmt::format("{:04d}-{:02d}-{:02d}{}", bc ? 1 - y : y, static_cast<unsigned>(d.month()),
                     static_cast<unsigned>(d.day()), bc ? " BC" : "");
}

year_month_day parse_date(std::string_view text) {
  std::size_t pos = 0;
  year_month_day d;
  if (!read_ymd(text, pos, d)) not_iso(text, "date");
  if (pos != text.size() && text.substr(pos) != " BC") not_iso(text, "date");
  return d;
}

std::string format_timestamp(sys_time<microseconds> t) {
  auto day_start = floor<days>(t);
  year_month_day d{day_start};
  hh_mm_ss<microseconds> tod{t - day_start};
  int y = static_cast<int>(d.year());
  bool bc = y <= 0;
  return fmt::format("{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}.{:06d}+00{}", bc ? 1 - y : y,
                     static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()),
                     tod.hours().count(), tod.minutes().count(), tod.seconds().count(),
                     tod.subseconds().count(), bc ? " BC" : "");
}

sys_time<microseconds> parse_timestamp(std::string_view text, oid column_type) {
  std::size_t pos = 0;
  year_month_day d;
  microseconds tod;
  if (!read_ymd(text, pos, d) || !expect(text, pos, ' ') || !read_time(text, pos, tod) || tod >= days{1})
    not_iso(text, "timestamp");
  seconds offset{0};
  if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    int sign = text[pos++] == '-' ? -1 : 1;
    long long h, m = 0, s = 0;
    if (!read_number(text, pos, h, 2, 2)) not_iso(text, "timestamp");
    if (expect(text, pos, ':') && !read_number(text, pos, m, 2, 2)) not_iso(text, "timestamp");
    if (expect(text, pos, ':') && !read_number(text, pos, s, 2, 2)) not_iso(text, "timestamp");
    offset = sign * (hours{h} + minutes{m} + seconds{s});
  } else if (column_type == type_oids::timestamptz) {
    not_iso(text, "timestamptz");
  }
  if (pos != text.size() && text.substr(pos) != " BC") not_iso(text, "timestamp");
  return sys_days{d} + tod - offset;
}

std::string format_interval(microseconds d) {
  long long us = d.count();
  unsigned long long magnitude = us < 0 ? 0ULL - static_cast<unsigned long long>(us)
                                        : static_cast<unsigned long long>(us);
  return fmt::format("{}{}.{:06d} seconds", us < 0 ? "-" : "", magnitude / 1000000, magnitude % 1000000);
}

microseconds parse_interval(std::string_view text) {
  if (text.starts_with("@") || text.starts_with("P") || text.starts_with("-P"))
    throw TypeMismatch(fmt::format("{} is not an interval in the postgres style (libusher reads "
                                   "IntervalStyle postgres, the server's default)", quote(text)));
  auto too_long = [&] {
    return TypeMismatch(fmt::format("{} does not fit std::chrono::microseconds (64 bits: about "
                                    "292,000 years)", quote(text)));
  };
  long long total = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view token = text.substr(pos, end - pos);
    pos = end + 1;
    if (token.find(':') != std::string_view::npos) {
      bool negative = token.front() == '-';
      if (negative || token.front() == '+') token.remove_prefix(1);
      std::size_t p = 0;
      microseconds t;
      if (!read_time(token, p, t, negative) || p != token.size())
        throw TypeMismatch(fmt::format("{} is not an interval in the postgres style", quote(text)));
      if (!add_scaled(total, t.count(), 1)) throw too_long();
      continue;
    }
    std::size_t unit_end = text.find(' ', pos);
    if (pos >= text.size() || unit_end == pos)
      throw TypeMismatch(fmt::format("{} is not an interval in the postgres style (IntervalStyle "
                                     "postgres, the server's default)", quote(text)));
    if (unit_end == std::string_view::npos) unit_end = text.size();
    std::string_view unit = text.substr(pos, unit_end - pos);
    pos = unit_end + 1;
    long long n = to_int(token, "units");
    if (unit == "day" || unit == "days") {
      if (!add_scaled(total, n, 86'400'000'000)) throw too_long();
    } else if (unit == "year" || unit == "years" || unit == "mon" || unit == "mons") {
      if (n != 0)
        throw TypeMismatch(fmt::format("{} has months or years, which have no fixed number of "
                                       "microseconds; read it as text, or use justify_hours / "
                                       "extract(epoch ...) in the query", quote(text)));
    } else {
      throw TypeMismatch(fmt::format("{} is not an interval in the postgres style", quote(text)));
    }
  }
  return microseconds{total};
}

std::vector<std::optional<std::string>> split_array(std::string_view text) {
  auto bad = [&](const char* why) -> TypeMismatch {
    return TypeMismatch(fmt::format("{} is not a one-dimensional array: {}", quote(text), why));
  };
  std::string_view t = text;
  if (t.starts_with("[")) {  // explicit bounds: [0:1]={1,2}
    auto eq = t.find('=');
    if (eq == std::string_view::npos) throw bad("bounds without '='");
    if (t.substr(0, eq).find("][") != std::string_view::npos) throw bad("it has several dimensions");
    t.remove_prefix(eq + 1);
  }
  if (t.size() < 2 || t.front() != '{' || t.back() != '}') throw bad("no braces");
  t = t.substr(1, t.size() - 2);
  std::vector<std::optional<std::string>> out;
  if (t.empty()) return out;
  if (t.front() == '{') throw bad("it has several dimensions");
  std::size_t i = 0;
  while (true) {
    std::string element;
    bool quoted = false;
    if (i < t.size() && t[i] == '"') {
      quoted = true;
      ++i;
      while (i < t.size() && t[i] != '"') {
        if (t[i] == '\\' && i + 1 < t.size()) ++i;
        element += t[i++];
      }
      if (i >= t.size()) throw bad("an unterminated quote");
      ++i;
    } else {
      while (i < t.size() && t[i] != ',') {
        if (t[i] == '\\' && i + 1 < t.size()) ++i;
        element += t[i++];
      }
    }
    if (!quoted && (element == "NULL" || element == "null"))
      out.emplace_back(std::nullopt);
    else
      out.emplace_back(std::move(element));
    if (i >= t.size()) break;
    if (t[i] != ',') throw bad("text after a quoted element");
    ++i;
  }
  return out;
}

void append_array_element(std::string& out, std::string_view element, bool quote) {
  if (!quote) {
    out += element;
    return;
  }
  out += '"';
  for (char c : element) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}

}  // namespace detail

std::string value_traits<std::chrono::system_clock::time_point>::to_text(system_clock::time_point t) {
  if (t == system_clock::time_point::max()) return "infinity";
  if (t == system_clock::time_point::min()) return "-infinity";
  return detail::format_timestamp(floor<microseconds>(t));
}

system_clock::time_point value_traits<system_clock::time_point>::from_text(std::string_view text,
                                                                           oid column_type) {
  if (column_type != type_oids::timestamptz && column_type != type_oids::timestamp)
    wrong_column(column_type, "timestamptz or timestamp");
  if (text == "infinity") return system_clock::time_point::max();
  if (text == "-infinity") return system_clock::time_point::min();
  auto t = detail::parse_timestamp(text, column_type);
  // system_clock counts nanoseconds in 64 bits: years 1678 to 2261.
  using Rep = system_clock::duration::rep;
  constexpr auto per_us = duration_cast<system_clock::duration>(microseconds{1}).count();
  auto us = t.time_since_epoch().count();
  if (us > std::numeric_limits<Rep>::max() / per_us || us < std::numeric_limits<Rep>::min() / per_us)
    throw TypeMismatch(fmt::format("{} is outside what std::chrono::system_clock::time_point holds",
                                   quote(text)));
  return system_clock::time_point{duration_cast<system_clock::duration>(t.time_since_epoch())};
}

microseconds value_traits<microseconds>::from_text(std::string_view text, oid column_type) {
  if (column_type != type_oids::interval) wrong_column(column_type, "interval");
  return detail::parse_interval(text);
}

year_month_day value_traits<year_month_day>::from_text(std::string_view text, oid column_type) {
  if (column_type != type_oids::date) wrong_column(column_type, "date");
  return detail::parse_date(text);
}

Json value_traits<Json>::from_text(std::string_view text, oid column_type) {
  if (column_type != type_oids::json && column_type != type_oids::jsonb &&
      column_type != type_oids::text && column_type != type_oids::unknown)
    wrong_column(column_type, "json or jsonb");
  return Json{std::string(text)};
}

Numeric value_traits<Numeric>::from_text(std::string_view text, oid column_type) {
  switch (column_type) {
    case type_oids::numeric: case type_oids::int2: case type_oids::int4: case type_oids::int8:
    case type_oids::float4: case type_oids::float8: case type_oids::text: case type_oids::unknown:
      return Numeric{std::string(text)};
    default:
      wrong_column(column_type, "numeric");
  }
}

std::vector<std::byte> value_traits<std::vector<std::byte>>::from_text(std::string_view text,
                                                                       oid column_type) {
  if (column_type != type_oids::bytea && column_type != type_oids::unknown)
    wrong_column(column_type, "bytea");
  std::vector<std::byte> out;
  detail::decode_bytea(text, out);
  return out;
}

}  // namespace usher
