#pragma once
// How C++ values become query parameters and how result fields become C++ values.
// Values travel in PostgreSQL's text format (bytea parameters in binary). The types of
// usher/types.hpp (times, dates, uuid, json, numeric, arrays) are built in too. Specialise usher::value_traits<T> to
// add a type:
//
//   template <> struct usher::value_traits<Money> {
//     static constexpr usher::oid type_oid = 1790;            // or 0: let the server infer
//     static std::string to_text(const Money& m);
//     static Money from_text(std::string_view text, usher::oid column_type);
//   };

#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "usher/errors.hpp"

namespace usher {

using oid = unsigned int;  // PostgreSQL's Oid, without including libpq-fe.h

// Type OIDs from pg_type.h that the built-in traits use.
namespace type_oids {
inline constexpr oid unknown = 0;
inline constexpr oid boolean = 16;
inline constexpr oid bytea = 17;
inline constexpr oid int8 = 20;
inline constexpr oid int2 = 21;
inline constexpr oid int4 = 23;
inline constexpr oid text = 25;
inline constexpr oid oid_type = 26;
inline constexpr oid float4 = 700;
inline constexpr oid float8 = 701;
inline constexpr oid bpchar = 1042;
inline constexpr oid varchar = 1043;
inline constexpr oid numeric = 1700;
inline constexpr oid name = 19;
}  // namespace type_oids

template <typename T, typename Enable = void>
struct value_traits;  // no definition: an unsupported type fails to compile

namespace detail {
// Parses the whole of `text` as a number, or throws TypeMismatch.
template <typename T>
T parse_number(std::string_view text, const char* type_name) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    throw TypeMismatch("'" + std::string(text.substr(0, 40)) + "' is not a valid " + type_name);
  return value;
}
}  // namespace detail

template <>
struct value_traits<bool> {
  static constexpr oid type_oid = type_oids::boolean;
  static std::string to_text(bool v) { return v ? "t" : "f"; }
  static bool from_text(std::string_view text, oid) {
    if (text == "t") return true;
    if (text == "f") return false;
    throw TypeMismatch("'" + std::string(text.substr(0, 40)) + "' is not a boolean");
  }
};

// All integer types except bool and the character types. Sent as the smallest server
// integer type that holds every value of T (unsigned 16 bits: int4, unsigned 32 bits:
// int8); an unsigned 64-bit value above int8's maximum is refused (InvalidParameter,
// 22003) rather than sent. Read range-checked: a value that does not fit T is a
// TypeMismatch.
template <typename T>
struct value_traits<T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool> &&
                                        !std::is_same_v<T, char>>> {
  static constexpr std::size_t bytes = std::is_signed_v<T> ? sizeof(T) : sizeof(T) * 2;
  static constexpr oid type_oid = bytes <= 2 ? type_oids::int2
                                  : bytes <= 4 ? type_oids::int4
                                               : type_oids::int8;
  static std::string to_text(T v) {
    if constexpr (!std::is_signed_v<T> && sizeof(T) >= 8) {
      if (v > static_cast<T>(std::numeric_limits<std::int64_t>::max()))
        throw InvalidParameter(std::to_string(v) + " is out of range for int8, the largest "
                               "server integer type", "22003");
    }
    return std::to_string(v);
  }
  static T from_text(std::string_view text, oid) {
    return detail::parse_number<T>(text, "integer of this size");
  }
};

template <typename T>
struct value_traits<T, std::enable_if_t<std::is_floating_point_v<T>>> {
  static constexpr oid type_oid = sizeof(T) == 4 ? type_oids::float4 : type_oids::float8;
  static std::string to_text(T v) {
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form
    std::string s(buf, end);
    if (s == "inf") return "Infinity";
    if (s == "-inf") return "-Infinity";
    if (s == "nan" || s == "-nan") return "NaN";
    return s;
  }
  static T from_text(std::string_view text, oid) {
    if (text == "Infinity") return std::numeric_limits<T>::infinity();
    if (text == "-Infinity") return -std::numeric_limits<T>::infinity();
    if (text == "NaN") return std::numeric_limits<T>::quiet_NaN();
    return detail::parse_number<T>(text, "floating-point number");
  }
};

// Strings are sent as "unknown" so that the server infers the type from the context,
// as it does for a quoted literal ($1::date, WHERE name = $1, ...).
template <>
struct value_traits<std::string> {
  static constexpr oid type_oid = type_oids::unknown;
  static constexpr std::string_view cpp_name = "std::string";
  static std::string to_text(const std::string& v) { return v; }
  static std::string from_text(std::string_view text, oid) { return std::string(text); }
};
template <>
struct value_traits<std::string_view> {
  static constexpr oid type_oid = type_oids::unknown;
  static std::string to_text(std::string_view v) { return std::string(v); }
  // No from_text: a view would dangle once the result is gone.
};
template <>
struct value_traits<const char*> {
  static constexpr oid type_oid = type_oids::unknown;
  static std::string to_text(const char* v) { return v; }
};
template <std::size_t N>
struct value_traits<char[N]> : value_traits<const char*> {};

// Binary data, sent as bytea in PostgreSQL's binary format: every byte arrives, NUL
// included. Read back from bytea's text output (hex, or the old escape format).
struct Bytes {
  std::string data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};
template <>
struct value_traits<Bytes> {
  static constexpr oid type_oid = type_oids::bytea;
  static constexpr bool binary = true;
  static std::string to_binary(const Bytes& v) { return v.data; }
  static Bytes from_text(std::string_view text, oid column_type);
};

// std::optional<T>: empty is SQL NULL, both ways.
template <typename T>
struct value_traits<std::optional<T>> {
  static constexpr oid type_oid = value_traits<T>::type_oid;
  static std::optional<T> from_text(std::string_view text, oid column_type) {
    return value_traits<T>::from_text(text, column_type);
  }
};

namespace detail {
template <typename T>
struct is_optional : std::false_type {};
template <typename T>
struct is_optional<std::optional<T>> : std::true_type {};

template <typename T, typename = void>
struct has_cpp_name : std::false_type {};
template <typename T>
struct has_cpp_name<T, std::void_t<decltype(value_traits<T>::cpp_name)>> : std::true_type {};

// The C++ type's name for error messages: value_traits<T>::cpp_name where the traits
// give one, else the compiler's spelling.
template <typename T>
std::string_view cpp_type_name() {
  if constexpr (is_optional<T>::value) {
    return cpp_type_name<typename T::value_type>();
  } else if constexpr (has_cpp_name<T>::value) {
    return value_traits<T>::cpp_name;
  } else {
    std::string_view f = __PRETTY_FUNCTION__;  // "... [with T = int; ...]" or "... [T = int]"
    auto start = f.find("T = ");
    if (start == std::string_view::npos) return "the requested type";
    start += 4;
    auto end = f.find_first_of(";]", start);
    return f.substr(start, end - start);
  }
}
}  // namespace detail

}  // namespace usher
