// SQL-callable functions that throw from C++ in every way the guard must handle, each
// with live C++ objects on the stack, and one that lets a PostgreSQL error cross C++
// frames through pg::call. Tests check the SQLSTATE, that the session keeps working,
// and that the C++ destructors ran (they would not after a raw longjmp).
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "sql_function.hpp"

namespace {

int destructors_run = 0;

// Counts its destructions: proof that the stack unwound the C++ way.
struct Tracked {
  std::vector<std::string> payload{"a live", "C++ object"};
  ~Tracked() { destructors_run++; }
};

int divide(int dividend, int divisor) {
  Tracked tracked;
  // int4div raises "division by zero" (22012) by longjmp; pg::call turns it into a
  // usher::PgError so `tracked` is destroyed before the guard rethrows the error.
  Datum quotient = usher::pg::call(
      [&] { return DirectFunctionCall2(int4div, Int32GetDatum(dividend), Int32GetDatum(divisor)); });
  return DatumGetInt32(quotient);
}

int32 checked_divisor(int32 divisor) {
  Tracked tracked;
  if (divisor < 0)
    throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE, "divisor " + std::to_string(divisor) + " is negative");
  return divisor;
}

}  // namespace

extern "C" {
PG_MODULE_MAGIC;
}

// Every function is declared the way pg_usher declares its SQL functions
// (extension/sql_function.hpp), so these tests exercise that declaration too.

USHER_SQL_FUNCTION(usher_test_throw_cpp_exception) {
  const char* message = text_to_cstring(PG_GETARG_TEXT_PP(0));
  Tracked tracked;
  throw std::runtime_error(message);
}

USHER_SQL_FUNCTION(usher_test_throw_usher_error) {
  Tracked tracked;
  throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE, "value " + std::to_string(PG_GETARG_INT32(0)) + " is out of range",
                     "The test limit is 10.", "Pass a value from 0 to 10.");
}

USHER_SQL_FUNCTION(usher_test_throw_bad_alloc) {
  Tracked tracked;
  throw std::bad_alloc();
}

USHER_SQL_FUNCTION(usher_test_divide_through_cpp) {
  return Int32GetDatum(divide(PG_GETARG_INT32(0), PG_GETARG_INT32(1)));
}

// A plain-frame function: the check (C++, in the guard) refuses a negative divisor with
// a usher::Error while a C++ object is alive; the body divides 100 by the checked value
// in plain C frames, where a divisor of 0 raises PostgreSQL's own 22012 by longjmp.
USHER_SQL_FUNCTION_PLAIN(usher_test_plain_divide, int32, checked_divisor(PG_GETARG_INT32(0))) {
  return DirectFunctionCall2(int4div, Int32GetDatum(100), Int32GetDatum(checked));
}

USHER_SQL_FUNCTION(usher_test_destructors_run) { PG_RETURN_INT32(destructors_run); }
