#pragma once
// The error hierarchy of libusher. Server errors are classified by SQLSTATE so that
// callers (and the retry logic) can ask one question: is it worth trying again?

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace usher {

// Base of every error libusher throws (besides std::invalid_argument for bad settings
// and std::out_of_range for bad row/column indexes).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string sqlstate = {});
  // The five-character SQLSTATE reported by the server, or empty.
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  // True when the same operation may succeed if tried again (on a new connection or
  // after a pause): connection loss, serialization failures, deadlocks, lock timeouts,
  // resource shortage, pool exhaustion.
  virtual bool is_transient() const noexcept { return false; }

 private:
  std::string sqlstate_;
};

// Cannot connect, or the connection was lost (SQLSTATE class 08, 57P01..57P03, or a
// libpq-level failure). The message names the server with any password redacted.
class ConnectionError : public Error {
 public:
  using Error::Error;
  bool is_transient() const noexcept override { return true; }
};

// Connection::open stopped because its ConnectLimits::abort_fd became readable (e.g. the
// pool is closing). Not transient: the caller asked for it. No SQLSTATE.
class ConnectAborted : public Error {
 public:
  using Error::Error;
};

// No connection could be lent before the deadline. The message describes the pool.
class PoolTimeout : public Error {
 public:
  using Error::Error;
  bool is_transient() const noexcept override { return true; }
};

// The pool was closed while (or before) the caller asked for a connection.
class PoolClosed : public Error {
 public:
  using Error::Error;
};

// A circuit breaker refused the call without making it: the pool's breaker for its
// server is open (acquire() fails at once instead of waiting out connect timeouts) or
// half-open with its probes taken; or a CircuitBreaker::call(). Not transient in the
// sense of "try again now": the breaker says when (the message gives the time left);
// Pool::run hands it to the fallback. No SQLSTATE.
class CircuitOpen : public Error {
 public:
  using Error::Error;
};

// An error the server reported for a statement.
class DatabaseError : public Error {
 public:
  using Error::Error;
};

// 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available,
// class 53 insufficient resources: retrying the whole transaction is the cure.
class TransientError : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
  bool is_transient() const noexcept override { return true; }
};

// A parameter PostgreSQL's text format cannot carry: a string with a NUL byte (22021,
// what the server says of such a byte). Binary data goes as bytea: usher::Bytes.
class InvalidParameter : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// A statement exec() cannot run to completion as asked (0A000): COPY ... TO STDOUT or
// FROM STDIN. The connection is left usable; the message says what happened.
class NotSupported : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// Class 23: unique, foreign key, check, not-null and exclusion violations.
class ConstraintViolation : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// 42501 insufficient_privilege and class 28 (invalid authorization).
class PermissionDenied : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// 57014 query_canceled: a cancel request or statement_timeout.
class QueryCanceled : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// pg_usher, or the function asked for, cannot be used in this database: not installed
// there (3F000, 42883), or installed without shared_preload_libraries (55000). The
// message says which and what to do.
class ExtensionUnavailable : public DatabaseError {
 public:
  using DatabaseError::DatabaseError;
};

// A service that is not an enabled service of pg_usher's published registry (22023 from
// usher.pool_advice()). service() is the name asked for.
class UnknownService : public DatabaseError {
 public:
  UnknownService(const std::string& message, std::string service, std::string sqlstate = "22023");
  const std::string& service() const noexcept { return service_; }

 private:
  std::string service_;
};

// Pool::transaction: the connection was lost while COMMIT was under way, and asking the
// server (pg_xact_status on a fresh connection) did not settle whether the transaction
// committed. Never retried; the caller must find out (e.g. by reading back what the
// transaction wrote, or pg_xact_status(xid()) later). sqlstate() is that of the
// connection error.
class CommitUnknown : public Error {
 public:
  using Error::Error;
  CommitUnknown(const std::string& message, std::string sqlstate, std::uint64_t xid)
      : Error(message, std::move(sqlstate)), xid_(xid) {}
  // The transaction's id (pg_current_xact_id(), with its epoch), or 0 when none was
  // recorded before the connection was lost.
  std::uint64_t xid() const noexcept { return xid_; }

 private:
  std::uint64_t xid_ = 0;
};

// Reading a result: a NULL read into a non-optional type, or a type that does not fit.
class ResultError : public Error {
 public:
  using Error::Error;
};
class NullValue : public ResultError {
 public:
  using ResultError::ResultError;
};
class TypeMismatch : public ResultError {
 public:
  using ResultError::ResultError;
};

// Throws the member of the hierarchy that matches `sqlstate`.
[[noreturn]] void throw_database_error(std::string_view sqlstate, const std::string& message);

}  // namespace usher
