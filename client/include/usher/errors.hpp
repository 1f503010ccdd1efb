#pragma once
// The error hierarchy of libusher. Server errors are classified by SQLSTATE so that
// callers (and the retry logic) can ask one question: is it worth trying again?

#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace usher {

// The fields of a server error (PQresultErrorField, PG_DIAG_*), empty where the server
// sent none. The library's own errors fill `message` (and `sqlstate` where one fits).
struct ErrorFields {
  std::string sqlstate;    // five characters, e.g. "23505"
  std::string severity;    // "ERROR", "FATAL", "PANIC" (never translated); empty: the library's
  std::string message;     // the primary message, one line as the server wrote it
  std::string detail;      // DETAIL (may span lines)
  std::string hint;        // HINT
  int position = 0;        // 1-based character in the statement text; 0: none
  std::string context;     // CONTEXT: the call stack of PL functions, if any
  std::string schema;      // schema, table, column, datatype, constraint: the object the
  std::string table;       // error is about, where the server names it (integrity and
  std::string column;      // some data errors)
  std::string datatype;
  std::string constraint;
};

// The fields as one readable line: the primary message, then "; DETAIL: ..." and
// "; HINT: ..." when present, line breaks folded into spaces. No severity prefix.
std::string error_line(const ErrorFields& fields);

// What to do about an error before trying the same work again (docs/client.md,
// "Errors", has the table for every class).
enum class RetryClass {
  never,              // trying again gives the same answer, or the outcome is unknown
  retry_transaction,  // the server rolled the work back: run the whole transaction again
  reconnect_first,    // the session is gone or unusable: a new connection, then the whole
                      // transaction again
};

// retry_class() of any exception: never for one libusher did not throw.
RetryClass retry_class(const std::exception& error) noexcept;
// retry_class(error) != RetryClass::never (or an Error subclass's own is_transient()).
bool is_transient(const std::exception& error) noexcept;

// Base of every error libusher throws (besides std::invalid_argument for bad settings
// and std::out_of_range for bad row/column indexes). Copies share the fields: copying
// never throws.
//
// The categories below derive from Error (and DatabaseError) virtually, so that one
// type can be in two of them (SerializationFailure is a TransactionRollback and a
// TransientError) with one Error inside. A subclass of them must construct Error
// itself: USHER_ERROR_CONSTRUCTORS(Name) writes the constructors (inheriting them with
// `using` would leave Error empty).
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, std::string sqlstate = {});
  // what() is error_line(fields).
  explicit Error(ErrorFields fields);
  // what() is `what` (the library's context around the server's message).
  Error(const std::string& what, ErrorFields fields);
  // Copies share the fields. No move operations: a move copies (never throws), and the
  // virtual bases above are not moved twice.
  Error(const Error&) = default;
  Error& operator=(const Error&) = default;
  ~Error() override = default;

  // The five-character SQLSTATE reported by the server (or chosen by the library), or
  // empty.
  const std::string& sqlstate() const noexcept { return fields_->sqlstate; }
  const std::string& severity() const noexcept { return fields_->severity; }
  // The server's primary message (what() adds context, DETAIL and HINT).
  const std::string& message() const noexcept { return fields_->message; }
  const std::string& detail() const noexcept { return fields_->detail; }
  const std::string& hint() const noexcept { return fields_->hint; }
  int position() const noexcept { return fields_->position; }
  const std::string& context() const noexcept { return fields_->context; }
  const std::string& schema() const noexcept { return fields_->schema; }
  const std::string& table() const noexcept { return fields_->table; }
  const std::string& column() const noexcept { return fields_->column; }
  const std::string& datatype() const noexcept { return fields_->datatype; }
  const std::string& constraint() const noexcept { return fields_->constraint; }
  const ErrorFields& fields() const noexcept { return *fields_; }

  // True when the same operation may succeed if tried again (on a new connection or
  // after a pause): retry_class(*this) != RetryClass::never.
  virtual bool is_transient() const noexcept;

 protected:
  // Only for the virtual-base path: the most derived class constructs Error itself.
  Error();

 private:
  std::shared_ptr<const ErrorFields> fields_;
};

// The constructors of an error class below Error's virtual bases (see Error).
#define USHER_ERROR_CONSTRUCTORS(Name)                                              \
 public:                                                                            \
  explicit Name(const std::string& message, std::string sqlstate = {})             \
      : ::usher::Error(message, std::move(sqlstate)) {}                             \
  explicit Name(::usher::ErrorFields fields) : ::usher::Error(std::move(fields)) {} \
  Name(const std::string& what, ::usher::ErrorFields fields)                        \
      : ::usher::Error(what, std::move(fields)) {}                                  \
  Name(const Name&) = default;                                                      \
  Name& operator=(const Name&) = default;                                           \
                                                                                    \
 protected:                                                                         \
  Name() = default;                                                                 \
                                                                                    \
 public:

// The connection is unusable: cannot connect, or the connection was lost (SQLSTATE
// class 08; 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P04
// database dropped, 57P05 idle session timeout, 25P03 idle-in-transaction timeout, each
// with the server's own code; 08006 or 08003 when libpq found it broken without a word
// from the server; 08001 for a libpq-level connect failure). The message names the
// server with any password redacted. The type of class 08 (ConnectionException); not a
// DatabaseError unless its code is of another class (the 57P0x, 25P03 types below).
class ConnectionError : public virtual Error {
  USHER_ERROR_CONSTRUCTORS(ConnectionError)
};
using ConnectionException = ConnectionError;

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
// The base of every SQLSTATE class's type below (and of the codes with a type of their
// own). An unknown code, or none, is a DatabaseError itself.
class DatabaseError : public virtual Error {
  USHER_ERROR_CONSTRUCTORS(DatabaseError)
};

// Kept for existing code: 40001, 40P01, 55P03, class 53 (insufficient resources) and
// class 72 (snapshot too old) derive from it. New code asks usher::is_transient() or
// usher::retry_class(), which also cover ConnectionError and PoolTimeout.
class TransientError : public virtual DatabaseError {
  USHER_ERROR_CONSTRUCTORS(TransientError)
};

// 42501 insufficient_privilege (an InsufficientPrivilege) and class 28 (invalid
// authorization) derive from it.
class PermissionDenied : public virtual DatabaseError {
  USHER_ERROR_CONSTRUCTORS(PermissionDenied)
};

// One type for each class of PostgreSQL's errcodes.txt, named after it.
#define USHER_SQLSTATE_CLASS(Name)                \
  class Name : public virtual DatabaseError {      \
    USHER_ERROR_CONSTRUCTORS(Name)                 \
  };
USHER_SQLSTATE_CLASS(SuccessfulCompletion)                    // 00 (raised with that code)
USHER_SQLSTATE_CLASS(Warning)                                 // 01 (raised with that code)
USHER_SQLSTATE_CLASS(NoData)                                  // 02 (raised with that code)
USHER_SQLSTATE_CLASS(SqlStatementNotYetComplete)              // 03
// 08: ConnectionError (above)
USHER_SQLSTATE_CLASS(TriggeredActionException)                // 09
USHER_SQLSTATE_CLASS(FeatureNotSupported)                     // 0A
USHER_SQLSTATE_CLASS(InvalidTransactionInitiation)            // 0B
USHER_SQLSTATE_CLASS(LocatorException)                        // 0F
USHER_SQLSTATE_CLASS(InvalidGrantor)                          // 0L
USHER_SQLSTATE_CLASS(InvalidRoleSpecification)                // 0P
USHER_SQLSTATE_CLASS(DiagnosticsException)                    // 0Z
USHER_SQLSTATE_CLASS(CaseNotFound)                            // 20
USHER_SQLSTATE_CLASS(CardinalityViolation)                    // 21
USHER_SQLSTATE_CLASS(DataException)                           // 22
USHER_SQLSTATE_CLASS(ConstraintViolation)                     // 23
USHER_SQLSTATE_CLASS(InvalidCursorState)                      // 24
USHER_SQLSTATE_CLASS(InvalidTransactionState)                 // 25
USHER_SQLSTATE_CLASS(InvalidSqlStatementName)                 // 26
USHER_SQLSTATE_CLASS(TriggeredDataChangeViolation)            // 27
USHER_SQLSTATE_CLASS(DependentPrivilegeDescriptorsStillExist) // 2B
USHER_SQLSTATE_CLASS(InvalidTransactionTermination)           // 2D
USHER_SQLSTATE_CLASS(SqlRoutineException)                     // 2F
USHER_SQLSTATE_CLASS(InvalidCursorName)                       // 34
USHER_SQLSTATE_CLASS(ExternalRoutineException)                // 38
USHER_SQLSTATE_CLASS(ExternalRoutineInvocationException)      // 39
USHER_SQLSTATE_CLASS(SavepointException)                      // 3B
USHER_SQLSTATE_CLASS(InvalidCatalogName)                      // 3D (no such database)
USHER_SQLSTATE_CLASS(InvalidSchemaName)                       // 3F
USHER_SQLSTATE_CLASS(TransactionRollback)                     // 40
USHER_SQLSTATE_CLASS(SyntaxErrorOrAccessRuleViolation)        // 42
USHER_SQLSTATE_CLASS(WithCheckOptionViolation)                // 44
USHER_SQLSTATE_CLASS(ProgramLimitExceeded)                    // 54
USHER_SQLSTATE_CLASS(ObjectNotInPrerequisiteState)            // 55
USHER_SQLSTATE_CLASS(OperatorIntervention)                    // 57
USHER_SQLSTATE_CLASS(SystemError)                             // 58
USHER_SQLSTATE_CLASS(ConfigFileError)                         // F0
USHER_SQLSTATE_CLASS(FdwError)                                // HV
USHER_SQLSTATE_CLASS(PlpgsqlError)                            // P0
USHER_SQLSTATE_CLASS(InternalError)                           // XX
#undef USHER_SQLSTATE_CLASS
using IntegrityConstraintViolation = ConstraintViolation;  // errcodes.txt's name for 23

// 28: also a PermissionDenied.
class InvalidAuthorizationSpecification : public virtual PermissionDenied {
  USHER_ERROR_CONSTRUCTORS(InvalidAuthorizationSpecification)
};
// 53: all of it transient (53300 too many connections: reconnect first).
class InsufficientResources : public virtual TransientError {
  USHER_ERROR_CONSTRUCTORS(InsufficientResources)
};
// 72: snapshot too old; a new transaction takes a new snapshot.
class SnapshotFailure : public virtual TransientError {
  USHER_ERROR_CONSTRUCTORS(SnapshotFailure)
};

// Codes with a type of their own, below their class's type.
#define USHER_SQLSTATE_CODE(Name, ...)   \
  class Name : __VA_ARGS__ {             \
    USHER_ERROR_CONSTRUCTORS(Name)       \
  };
// 22
USHER_SQLSTATE_CODE(DivisionByZero, public virtual DataException)                   // 22012
USHER_SQLSTATE_CODE(NumericValueOutOfRange, public virtual DataException)           // 22003
USHER_SQLSTATE_CODE(InvalidTextRepresentation, public virtual DataException)        // 22P02
// 23
USHER_SQLSTATE_CODE(NotNullViolation, public virtual ConstraintViolation)           // 23502
USHER_SQLSTATE_CODE(ForeignKeyViolation, public virtual ConstraintViolation)        // 23503
USHER_SQLSTATE_CODE(UniqueViolation, public virtual ConstraintViolation)            // 23505
USHER_SQLSTATE_CODE(CheckViolation, public virtual ConstraintViolation)             // 23514
USHER_SQLSTATE_CODE(ExclusionViolation, public virtual ConstraintViolation)         // 23P01
// 25
USHER_SQLSTATE_CODE(ReadOnlySqlTransaction, public virtual InvalidTransactionState) // 25006
USHER_SQLSTATE_CODE(InFailedSqlTransaction, public virtual InvalidTransactionState) // 25P02
USHER_SQLSTATE_CODE(IdleInTransactionSessionTimeout,                                // 25P03
                    public virtual InvalidTransactionState, public virtual ConnectionError)
// 28
USHER_SQLSTATE_CODE(InvalidPassword, public virtual InvalidAuthorizationSpecification) // 28P01
// 40
USHER_SQLSTATE_CODE(SerializationFailure,                                           // 40001
                    public virtual TransactionRollback, public virtual TransientError)
USHER_SQLSTATE_CODE(TransactionIntegrityConstraintViolation,                        // 40002
                    public virtual TransactionRollback)
USHER_SQLSTATE_CODE(StatementCompletionUnknown, public virtual TransactionRollback)  // 40003
USHER_SQLSTATE_CODE(DeadlockDetected,                                               // 40P01
                    public virtual TransactionRollback, public virtual TransientError)
// 42
USHER_SQLSTATE_CODE(InsufficientPrivilege,                                          // 42501
                    public virtual SyntaxErrorOrAccessRuleViolation, public virtual PermissionDenied)
USHER_SQLSTATE_CODE(SyntaxError, public virtual SyntaxErrorOrAccessRuleViolation)   // 42601
USHER_SQLSTATE_CODE(UndefinedColumn, public virtual SyntaxErrorOrAccessRuleViolation)   // 42703
USHER_SQLSTATE_CODE(UndefinedFunction, public virtual SyntaxErrorOrAccessRuleViolation) // 42883
USHER_SQLSTATE_CODE(UndefinedTable, public virtual SyntaxErrorOrAccessRuleViolation)    // 42P01
// 53
USHER_SQLSTATE_CODE(TooManyConnections, public virtual InsufficientResources)       // 53300
// 55
USHER_SQLSTATE_CODE(ObjectInUse, public virtual ObjectNotInPrerequisiteState)       // 55006
USHER_SQLSTATE_CODE(LockNotAvailable,                                               // 55P03
                    public virtual ObjectNotInPrerequisiteState, public virtual TransientError)
// 57: 57014 is a cancel request or statement_timeout; the others end the session.
USHER_SQLSTATE_CODE(QueryCanceled, public virtual OperatorIntervention)             // 57014
USHER_SQLSTATE_CODE(AdminShutdown,                                                  // 57P01
                    public virtual OperatorIntervention, public virtual ConnectionError)
USHER_SQLSTATE_CODE(CrashShutdown,                                                  // 57P02
                    public virtual OperatorIntervention, public virtual ConnectionError)
USHER_SQLSTATE_CODE(CannotConnectNow,                                               // 57P03
                    public virtual OperatorIntervention, public virtual ConnectionError)
USHER_SQLSTATE_CODE(DatabaseDropped,                                                // 57P04
                    public virtual OperatorIntervention, public virtual ConnectionError)
USHER_SQLSTATE_CODE(IdleSessionTimeout,                                             // 57P05
                    public virtual OperatorIntervention, public virtual ConnectionError)
#undef USHER_SQLSTATE_CODE

// The library's own DatabaseErrors (never mapped from a server's code).

// A parameter PostgreSQL's text format cannot carry: a string with a NUL byte (22021,
// what the server says of such a byte), or one over 2 GB (54000). Nothing was sent.
// Binary data goes as bytea: usher::Bytes.
class InvalidParameter : public virtual DatabaseError {
  USHER_ERROR_CONSTRUCTORS(InvalidParameter)
};

// A statement exec() cannot run to completion as asked (0A000): COPY ... TO STDOUT or
// FROM STDIN. The connection is left usable; the message says what happened.
class NotSupported : public virtual FeatureNotSupported {
  USHER_ERROR_CONSTRUCTORS(NotSupported)
};

// pg_usher, or the function asked for, cannot be used in this database: not installed
// there (3F000, 42883), or installed without shared_preload_libraries (55000). The
// message says which and what to do; the fields are the server's.
class ExtensionUnavailable : public virtual DatabaseError {
  USHER_ERROR_CONSTRUCTORS(ExtensionUnavailable)
};

// A service that is not an enabled service of pg_usher's published registry (22023 from
// usher.pool_advice()). service() is the name asked for.
class UnknownService : public virtual DatabaseError {
 public:
  UnknownService(const std::string& message, std::string service, std::string sqlstate = "22023");
  UnknownService(const std::string& what, std::string service, ErrorFields fields);
  const std::string& service() const noexcept { return service_; }

 private:
  std::string service_;
};

// Pool::transaction: the connection was lost while COMMIT was under way and the
// transaction is known not to have committed (the server, asked with pg_xact_status,
// reports it aborted; or COMMIT itself answered ROLLBACK), with no attempt left
// (TransactionOptions::max_attempts). A ConnectionError with the lost connection's
// code; Cluster::transaction does not run it again on another node: once a COMMIT was
// sent, the attempts are Pool::transaction's (docs/ha.md).
class CommitRolledBack : public virtual ConnectionError {
  USHER_ERROR_CONSTRUCTORS(CommitRolledBack)
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

// Throws the member of the hierarchy that matches `sqlstate` (the type of its code,
// else of its class, else DatabaseError).
[[noreturn]] void throw_database_error(std::string_view sqlstate, const std::string& message);
// The same for a server's fields; what() is `what`, or error_line(fields) when empty.
[[noreturn]] void throw_database_error(ErrorFields fields, const std::string& what = {});

}  // namespace usher
