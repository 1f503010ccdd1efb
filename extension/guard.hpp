// The error boundary between C++ and PostgreSQL (see docs/cpp-in-the-backend.md).
//
// PostgreSQL reports errors with siglongjmp, which skips C++ destructors; a C++
// exception must never unwind through PostgreSQL's C frames. So:
//
//  * every entry point (SQL function, hook, callback) is an extern "C" function whose
//    whole body runs inside usher::guard(...). The guard catches every C++ exception,
//    lets all C++ frames of the body end, and only then calls ereport.
//  * C++ code that calls a PostgreSQL function that can raise, while C++ objects with
//    destructors are alive, calls it through usher::pg::call(...). That runs the call
//    under PG_TRY in a frame that holds no C++ objects, turns a PostgreSQL error into a
//    usher::PgError exception, and the guard rethrows the original error unchanged.
//
// Modelled on pg_duckdb's InvokeCPPFunc / PostgresFunctionGuard.
#pragma once

#include <stdexcept>
#include <string>
#include <type_traits>

#include "pg_includes.hpp"

namespace usher {

// An error pg_usher raises on purpose: a SQLSTATE, a message that names the bad value,
// and optionally a detail and a hint. elevel FATAL ends the session (login refusals).
class Error : public std::runtime_error {
 public:
  explicit Error(int sqlstate, const std::string& message, std::string detail = {},
                 std::string hint = {}, int elevel = ERROR)
      : std::runtime_error(message),
        sqlstate_(sqlstate),
        elevel_(elevel),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {}

  int sqlstate() const noexcept { return sqlstate_; }
  int elevel() const noexcept { return elevel_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

 private:
  int sqlstate_;
  int elevel_;
  std::string detail_;
  std::string hint_;
};

// A PostgreSQL error caught by pg::call, carried through C++ frames. It owns a copy of
// the ErrorData (palloc'd in the caller's memory context) so the guard can rethrow it
// with its original SQLSTATE, message, detail, hint and context.
class PgError : public std::exception {
 public:
  explicit PgError(ErrorData* data) noexcept : data_(data) {}
  const char* what() const noexcept override {
    return data_ && data_->message ? data_->message : "PostgreSQL error";
  }
  ErrorData* data() const noexcept { return data_; }

 private:
  ErrorData* data_;
};

namespace detail {

// What the guard remembers of a caught exception: plain data only, because it must
// outlive the exception object and is read after every C++ frame is gone. The texts are
// left uninitialised on purpose: every hook call builds one of these, and zeroing 2.5 kB
// per call showed in profiles; capture_current_exception writes all three before
// report reads them.
struct CaughtError {
  bool caught = false;
  int elevel = ERROR;
  int sqlstate = 0;
  ErrorData* pg_error = nullptr;
  char message[1024];
  char detail[1024];
  char hint[512];
};

// Called inside a catch block: records the in-flight exception. Never raises.
void capture_current_exception(CaughtError& out) noexcept;

// Called after the catch block has ended: reports the error through ereport.
[[noreturn]] void report(const CaughtError& caught);

}  // namespace detail

// Runs an entry point's C++ body. The body may throw anything; what it throws becomes a
// PostgreSQL error of the right SQLSTATE once the body's frames have unwound.
template <typename Body>
auto guard(Body&& body) -> decltype(body()) {
  detail::CaughtError caught;
  try {
    return body();
  } catch (...) {
    detail::capture_current_exception(caught);
  }
  detail::report(caught);
}

namespace pg {

// Calls a PostgreSQL function that may raise an ERROR from C++ code. `fn` must itself
// hold no C++ objects with destructors (call PostgreSQL functions only); on error the
// error state is flushed and a usher::PgError is thrown instead of a longjmp.
template <typename Fn>
auto call(Fn&& fn) -> decltype(fn()) {
  using Result = decltype(fn());
  if constexpr (std::is_void_v<Result>) {
    call([&] {
      fn();
      return 0;
    });
  } else {
    static_assert(std::is_trivially_copyable_v<Result>,
                  "pg::call returns plain PostgreSQL values only");
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData* error = nullptr;
    Result result{};
    PG_TRY();
    { result = fn(); }
    PG_CATCH();
    {
      MemoryContextSwitchTo(caller_context);
      error = CopyErrorData();
      FlushErrorState();
    }
    PG_END_TRY();
    if (error) throw PgError(error);
    return result;
  }
}

}  // namespace pg
}  // namespace usher
