#pragma once
// value_traits for the types beyond numbers and strings (docs/client.md, "Types"):
//   std::chrono::system_clock::time_point  timestamptz (and timestamp, read as UTC)
//   std::chrono::microseconds              interval without months
//   std::chrono::year_month_day            date
//   usher::Uuid                            uuid
//   usher::Json                            json / jsonb, as text
//   usher::Numeric                         numeric, as its exact text
//   std::vector<std::byte>                 bytea (sent in binary format; any bytes)
//   std::span<const std::byte>             bytea, as a parameter
//   std::vector<T>                         one-dimensional arrays of integers, text, uuid,
//                                          bool, floats (T may be std::optional<...>)
// Results come in PostgreSQL's text format, which depends on DateStyle and IntervalStyle:
// the server's defaults (ISO, postgres) are what is read; another style is a
// TypeMismatch that says which setting to change. Times travel in UTC, so the session's
// TimeZone never changes the instant.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "usher/value_traits.hpp"

namespace usher {

namespace type_oids {
inline constexpr oid json = 114;
inline constexpr oid date = 1082;
inline constexpr oid timestamp = 1114;
inline constexpr oid timestamptz = 1184;
inline constexpr oid interval = 1186;
inline constexpr oid uuid = 2950;
inline constexpr oid jsonb = 3802;
inline constexpr oid bool_array = 1000;
inline constexpr oid int2_array = 1005;
inline constexpr oid int4_array = 1007;
inline constexpr oid text_array = 1009;
inline constexpr oid int8_array = 1016;
inline constexpr oid float4_array = 1021;
inline constexpr oid float8_array = 1022;
inline constexpr oid uuid_array = 2951;
}  // namespace type_oids

// The server type's name for the built-in types libusher knows ("timestamptz",
// "int4[]", ...), else "type oid N". For error messages.
std::string server_type_name(oid type);

// A uuid's 16 bytes.
struct Uuid {
  std::array<std::uint8_t, 16> bytes{};
  // "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11" (braces and dashes optional, either case);
  // throws TypeMismatch otherwise.
  static Uuid parse(std::string_view text);
  std::string to_string() const;  // lower case, with dashes
  friend bool operator==(const Uuid&, const Uuid&) = default;
  friend auto operator<=>(const Uuid&, const Uuid&) = default;
};

// A json or jsonb value as its text. Sent with type "unknown": the server takes it as
// the column's or the cast's type (json or jsonb), and checks it.
struct Json {
  std::string text;
  friend bool operator==(const Json&, const Json&) = default;
};

// A numeric as its exact text ("12.50", "NaN", "Infinity"): nothing is lost. To read
// numeric into a decimal type of your own, specialise value_traits for it (see
// docs/client.md, "A type of your own").
struct Numeric {
  std::string text;
  friend bool operator==(const Numeric&, const Numeric&) = default;
};

namespace detail {
// ISO text of timestamptz/timestamp/date/interval, both ways (types.cpp).
std::string format_timestamp(std::chrono::sys_time<std::chrono::microseconds> t);
std::chrono::sys_time<std::chrono::microseconds> parse_timestamp(std::string_view text,
                                                                  oid column_type);
std::string format_date(std::chrono::year_month_day d);
std::chrono::year_month_day parse_date(std::string_view text);
std::string format_interval(std::chrono::microseconds d);
std::chrono::microseconds parse_interval(std::string_view text);
// bytea's text output (hex or escape) appended to `out` (bytes.cpp).
void decode_bytea(std::string_view text, std::vector<std::byte>& out);
// A hex digit's value (either case), or -1 (bytes.cpp; Uuid::parse uses it too).
int hex_digit(char c);

// Splits a one-dimensional array's text output ("{1,2,NULL}", "{\"a b\",c}") into its
// elements (nullopt for NULL), or throws TypeMismatch.
std::vector<std::optional<std::string>> split_array(std::string_view text);
// An element in array input syntax: quoted, with \ and " escaped.
void append_array_element(std::string& out, std::string_view element, bool quote);

template <typename T>
struct array_oid : std::integral_constant<oid, 0> {};  // strings: let the server infer
}  // namespace detail

template <>
struct value_traits<std::chrono::system_clock::time_point> {
  static constexpr oid type_oid = type_oids::timestamptz;
  static constexpr std::string_view cpp_name = "std::chrono::system_clock::time_point";
  // Microseconds (PostgreSQL's precision), rounded down; time_point::max()/min() are
  // 'infinity'/'-infinity'.
  static std::string to_text(std::chrono::system_clock::time_point t);
  static std::chrono::system_clock::time_point from_text(std::string_view text, oid column_type);
};

template <>
struct value_traits<std::chrono::microseconds> {
  static constexpr oid type_oid = type_oids::interval;
  static constexpr std::string_view cpp_name = "std::chrono::microseconds";
  static std::string to_text(std::chrono::microseconds d) { return detail::format_interval(d); }
  // A day counts 24 hours; an interval with months or years has no fixed length and is
  // a TypeMismatch.
  static std::chrono::microseconds from_text(std::string_view text, oid column_type);
};

template <>
struct value_traits<std::chrono::year_month_day> {
  static constexpr oid type_oid = type_oids::date;
  static constexpr std::string_view cpp_name = "std::chrono::year_month_day";
  static std::string to_text(std::chrono::year_month_day d) { return detail::format_date(d); }
  static std::chrono::year_month_day from_text(std::string_view text, oid column_type);
};

template <>
struct value_traits<Uuid> {
  static constexpr oid type_oid = type_oids::uuid;
  static constexpr std::string_view cpp_name = "usher::Uuid";
  static std::string to_text(const Uuid& u) { return u.to_string(); }
  static Uuid from_text(std::string_view text, oid) { return Uuid::parse(text); }
};

template <>
struct value_traits<Json> {
  static constexpr oid type_oid = type_oids::unknown;
  static constexpr std::string_view cpp_name = "usher::Json";
  static std::string to_text(const Json& j) { return j.text; }
  static Json from_text(std::string_view text, oid column_type);
};

template <>
struct value_traits<Numeric> {
  static constexpr oid type_oid = type_oids::numeric;
  static constexpr std::string_view cpp_name = "usher::Numeric";
  static std::string to_text(const Numeric& n) { return n.text; }
  static Numeric from_text(std::string_view text, oid column_type);
};

template <>
struct value_traits<std::vector<std::byte>> {
  static constexpr oid type_oid = type_oids::bytea;
  static constexpr bool binary = true;
  static constexpr std::string_view cpp_name = "std::vector<std::byte>";
  static std::string to_binary(const std::vector<std::byte>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size());
  }
  static std::vector<std::byte> from_text(std::string_view text, oid column_type);
};
template <>
struct value_traits<std::span<const std::byte>> {
  static constexpr oid type_oid = type_oids::bytea;
  static constexpr bool binary = true;
  static std::string to_binary(std::span<const std::byte> v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size());
  }
  // No from_text: a span would dangle once the result is gone.
};

namespace detail {
template <> struct array_oid<bool> : std::integral_constant<oid, type_oids::bool_array> {};
template <> struct array_oid<float> : std::integral_constant<oid, type_oids::float4_array> {};
template <> struct array_oid<double> : std::integral_constant<oid, type_oids::float8_array> {};
template <> struct array_oid<Uuid> : std::integral_constant<oid, type_oids::uuid_array> {};
template <typename T>
struct array_oid<std::optional<T>> : array_oid<T> {};

template <typename T>
inline constexpr oid integer_array_oid =
    value_traits<T>::type_oid == type_oids::int2   ? type_oids::int2_array
    : value_traits<T>::type_oid == type_oids::int4 ? type_oids::int4_array
                                                   : type_oids::int8_array;

template <typename T>
struct is_array_element
    : std::bool_constant<(std::is_integral_v<T> && !std::is_same_v<T, char>) ||
                         std::is_floating_point_v<T> || std::is_same_v<T, std::string> ||
                         std::is_same_v<T, Uuid>> {};
template <typename T>
struct is_array_element<std::optional<T>> : is_array_element<T> {};
}  // namespace detail

// One-dimensional arrays: {1,2,3}, {"a b",c}, with NULL elements when T is optional.
template <typename T>
struct value_traits<std::vector<T>, std::enable_if_t<detail::is_array_element<T>::value>> {
  using Element = T;
  using Plain = typename std::conditional_t<detail::is_optional<T>::value, T,
                                            std::optional<T>>::value_type;
  static constexpr oid type_oid = std::is_integral_v<Plain> && !std::is_same_v<Plain, bool>
                                      ? detail::integer_array_oid<Plain>
                                      : detail::array_oid<Plain>::value;

  static std::string to_text(const std::vector<T>& values) {
    std::string out = "{";
    for (const auto& v : values) {
      if (out.size() > 1) out += ',';
      if constexpr (detail::is_optional<T>::value) {
        if (!v) {
          out += "NULL";
          continue;
        }
        detail::append_array_element(out, value_traits<Plain>::to_text(*v), quoted);
      } else {
        detail::append_array_element(out, value_traits<Plain>::to_text(v), quoted);
      }
    }
    out += '}';
    return out;
  }
  static std::vector<T> from_text(std::string_view text, oid) {
    std::vector<T> out;
    auto elements = detail::split_array(text);
    out.reserve(elements.size());
    for (std::size_t i = 0; i < elements.size(); ++i) {
      if (!elements[i]) {
        if constexpr (detail::is_optional<T>::value) {
          out.emplace_back(std::nullopt);
          continue;
        } else {
          throw TypeMismatch("element " + std::to_string(i + 1) +
                             " is NULL; read the array as std::vector<std::optional<...>>");
        }
      }
      out.emplace_back(value_traits<Plain>::from_text(*elements[i], type_oids::unknown));
    }
    return out;
  }

 private:
  static constexpr bool quoted = std::is_same_v<Plain, std::string>;
};

}  // namespace usher
