// SQL-callable functions that throw from C++ in every way the guard must handle, each
// with live C++ objects on the stack, and one that lets a PostgreSQL error cross C++
// frames through pg::call. Tests check the SQLSTATE, that the session keeps working,
// and that the C++ destructors ran (they would not after a raw longjmp).
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "guard.hpp"

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

}  // namespace

extern "C" {

PG_MODULE_MAGIC;

PG_FUNCTION_INFO_V1(usher_test_throw_cpp_exception);
Datum usher_test_throw_cpp_exception(PG_FUNCTION_ARGS) {
  const char* message = text_to_cstring(PG_GETARG_TEXT_PP(0));
  return usher::guard([&]() -> Datum {
    Tracked tracked;
    throw std::runtime_error(message);
  });
}

PG_FUNCTION_INFO_V1(usher_test_throw_usher_error);
Datum usher_test_throw_usher_error(PG_FUNCTION_ARGS) {
  return usher::guard([&]() -> Datum {
    Tracked tracked;
    throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE,
                       "value " + std::to_string(PG_GETARG_INT32(0)) + " is out of range",
                       "The test limit is 10.", "Pass a value from 0 to 10.");
  });
}

PG_FUNCTION_INFO_V1(usher_test_throw_bad_alloc);
Datum usher_test_throw_bad_alloc(PG_FUNCTION_ARGS) {
  return usher::guard([]() -> Datum {
    Tracked tracked;
    throw std::bad_alloc();
  });
}

PG_FUNCTION_INFO_V1(usher_test_divide_through_cpp);
Datum usher_test_divide_through_cpp(PG_FUNCTION_ARGS) {
  int dividend = PG_GETARG_INT32(0), divisor = PG_GETARG_INT32(1);
  return usher::guard([=] { return Int32GetDatum(divide(dividend, divisor)); });
}

PG_FUNCTION_INFO_V1(usher_test_destructors_run);
Datum usher_test_destructors_run(PG_FUNCTION_ARGS) { PG_RETURN_INT32(destructors_run); }
}
