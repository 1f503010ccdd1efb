// The one way to declare a SQL-callable C function of pg_usher (an entry point that a
// CREATE FUNCTION ... LANGUAGE C names). Written with one of the two macros below, the
// function runs its C++ through usher::guard by construction (docs/cpp-in-the-backend.md,
// rule 1); no file writes `extern "C"` or PG_FUNCTION_INFO_V1 for a SQL function itself.
//
//   USHER_SQL_FUNCTION(usher_metrics) { return metrics(); }
//
//     The body is C++ and runs wholly inside the guard. `fcinfo` is in scope as in any
//     PG_FUNCTION_ARGS function (PG_GETARG_*, PG_ARGISNULL work unchanged).
//
//   USHER_SQL_FUNCTION_PLAIN(usher_semaphores, State*, require("usher.semaphores")) {
//     return semaphores_view(fcinfo, checked);
//   }
//
//     For a function whose work is PostgreSQL calls -- shared memory under LWLocks, a
//     wait on a latch, the tuplestore -- that a guard's try frame must not sit around.
//     The check expression (the C++ part: argument checks, require(); it may use
//     `fcinfo`) runs inside the guard and yields plain data of type Checked; the body
//     then runs in plain C frames with that value as `checked`, no C++ try around it.
//     Checked must be plain data (trivially copyable and destructible).
//
// The C symbol is `name` exactly: the install and upgrade scripts name it, and every
// earlier version's script must keep finding it. Use the macros at global scope.
// Modelled on pg_duckdb's DECLARE_PG_FUNCTION / InvokeCPPFunc.
#pragma once

#include <type_traits>

#include "guard.hpp"

namespace usher::sql {

// What the check of a plain-frame entry point may hand to its body: nothing whose
// destructor a PostgreSQL error (a longjmp) in the body could skip.
template <typename T>
inline constexpr bool plain_data = std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>;

}  // namespace usher::sql

#define USHER_SQL_FUNCTION(name)                                                         \
  extern "C" {                                                                           \
  PG_FUNCTION_INFO_V1(name);                                                             \
  }                                                                                      \
  static Datum name##_guarded(FunctionCallInfo fcinfo);                                  \
  Datum name(PG_FUNCTION_ARGS) {                                                         \
    return ::usher::guard([fcinfo] { return name##_guarded(fcinfo); });                  \
  }                                                                                      \
  static Datum name##_guarded([[maybe_unused]] FunctionCallInfo fcinfo)

#define USHER_SQL_FUNCTION_PLAIN(name, Checked, check)                                   \
  extern "C" {                                                                           \
  PG_FUNCTION_INFO_V1(name);                                                             \
  }                                                                                      \
  static Datum name##_plain(FunctionCallInfo fcinfo, Checked checked);                   \
  Datum name(PG_FUNCTION_ARGS) {                                                         \
    static_assert(::usher::sql::plain_data<Checked>,                                     \
                  "the check of a plain-frame SQL function returns plain data only");    \
    Checked checked = ::usher::guard([&]() -> Checked { return (check); });              \
    return name##_plain(fcinfo, checked);                                                \
  }                                                                                      \
  static Datum name##_plain([[maybe_unused]] FunctionCallInfo fcinfo, [[maybe_unused]] Checked checked)
