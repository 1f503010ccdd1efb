// SQLSTATE -> member of the error hierarchy, and what to do about each before trying
// again (docs/client.md, "Errors").
#include "usher/errors.hpp"

#include <iterator>

namespace usher {
namespace {

// Line breaks (DETAIL of a deadlock spans lines) and runs of blanks as one space.
void append_folded(std::string& out, std::string_view text) {
  for (char c : text) {
    bool space = c == '\n' || c == '\r' || c == '\t' || c == ' ';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
}

std::shared_ptr<const ErrorFields> with_message(const std::string& message, std::string sqlstate) {
  auto f = std::make_shared<ErrorFields>();
  f->sqlstate = std::move(sqlstate);
  f->message = message;
  return f;
}

template <typename T>
[[noreturn]] void raise(ErrorFields&& fields, const std::string& what) {
  if (what.empty()) throw T(std::move(fields));
  throw T(what, std::move(fields));
}

using Thrower = void (*)(ErrorFields&&, const std::string&);
struct Mapping {
  std::string_view sqlstate;  // a whole code, or a class (two characters)
  Thrower thrower;
};

// The codes with a type of their own.
constexpr Mapping kCodes[] = {
    {"22003", raise<NumericValueOutOfRange>},
    {"22012", raise<DivisionByZero>},
    {"22P02", raise<InvalidTextRepresentation>},
    {"23502", raise<NotNullViolation>},
    {"23503", raise<ForeignKeyViolation>},
    {"23505", raise<UniqueViolation>},
    {"23514", raise<CheckViolation>},
    {"23P01", raise<ExclusionViolation>},
    {"25006", raise<ReadOnlySqlTransaction>},
    {"25P02", raise<InFailedSqlTransaction>},
    {"25P03", raise<IdleInTransactionSessionTimeout>},
    {"28P01", raise<InvalidPassword>},
    {"40001", raise<SerializationFailure>},
    {"40002", raise<TransactionIntegrityConstraintViolation>},
    {"40003", raise<StatementCompletionUnknown>},
    {"40P01", raise<DeadlockDetected>},
    {"42501", raise<InsufficientPrivilege>},
    {"42601", raise<SyntaxError>},
    {"42703", raise<UndefinedColumn>},
    {"42883", raise<UndefinedFunction>},
    {"42P01", raise<UndefinedTable>},
    {"53300", raise<TooManyConnections>},
    {"55006", raise<ObjectInUse>},
    {"55P03", raise<LockNotAvailable>},
    {"57014", raise<QueryCanceled>},
    {"57P01", raise<AdminShutdown>},
    {"57P02", raise<CrashShutdown>},
    {"57P03", raise<CannotConnectNow>},
    {"57P04", raise<DatabaseDropped>},
    {"57P05", raise<IdleSessionTimeout>},
};

// Every class of errcodes.txt (PostgreSQL 15).
constexpr Mapping kClasses[] = {
    {"00", raise<SuccessfulCompletion>},
    {"01", raise<Warning>},
    {"02", raise<NoData>},
    {"03", raise<SqlStatementNotYetComplete>},
    {"08", raise<ConnectionError>},
    {"09", raise<TriggeredActionException>},
    {"0A", raise<FeatureNotSupported>},
    {"0B", raise<InvalidTransactionInitiation>},
    {"0F", raise<LocatorException>},
    {"0L", raise<InvalidGrantor>},
    {"0P", raise<InvalidRoleSpecification>},
    {"0Z", raise<DiagnosticsException>},
    {"20", raise<CaseNotFound>},
    {"21", raise<CardinalityViolation>},
    {"22", raise<DataException>},
    {"23", raise<ConstraintViolation>},
    {"24", raise<InvalidCursorState>},
    {"25", raise<InvalidTransactionState>},
    {"26", raise<InvalidSqlStatementName>},
    {"27", raise<TriggeredDataChangeViolation>},
    {"28", raise<InvalidAuthorizationSpecification>},
    {"2B", raise<DependentPrivilegeDescriptorsStillExist>},
    {"2D", raise<InvalidTransactionTermination>},
    {"2F", raise<SqlRoutineException>},
    {"34", raise<InvalidCursorName>},
    {"38", raise<ExternalRoutineException>},
    {"39", raise<ExternalRoutineInvocationException>},
    {"3B", raise<SavepointException>},
    {"3D", raise<InvalidCatalogName>},
    {"3F", raise<InvalidSchemaName>},
    {"40", raise<TransactionRollback>},
    {"42", raise<SyntaxErrorOrAccessRuleViolation>},
    {"44", raise<WithCheckOptionViolation>},
    {"53", raise<InsufficientResources>},
    {"54", raise<ProgramLimitExceeded>},
    {"55", raise<ObjectNotInPrerequisiteState>},
    {"57", raise<OperatorIntervention>},
    {"58", raise<SystemError>},
    {"72", raise<SnapshotFailure>},
    {"F0", raise<ConfigFileError>},
    {"HV", raise<FdwError>},
    {"P0", raise<PlpgsqlError>},
    {"XX", raise<InternalError>},
};

Thrower find(std::string_view sqlstate) {
  if (sqlstate.size() != 5) return raise<DatabaseError>;
  for (const auto& m : kCodes)
    if (m.sqlstate == sqlstate) return m.thrower;
  for (const auto& m : kClasses)
    if (m.sqlstate == sqlstate.substr(0, 2)) return m.thrower;
  return raise<DatabaseError>;
}

}  // namespace

std::string error_line(const ErrorFields& f) {
  std::string out;
  append_folded(out, f.message);
  if (!f.detail.empty()) {
    out += out.empty() ? "DETAIL: " : "; DETAIL: ";
    append_folded(out, f.detail);
  }
  if (!f.hint.empty()) {
    out += out.empty() ? "HINT: " : "; HINT: ";
    append_folded(out, f.hint);
  }
  return out;
}

Error::Error(const std::string& message, std::string sqlstate)
    : std::runtime_error(message), fields_(with_message(message, std::move(sqlstate))) {}

Error::Error(ErrorFields fields)
    : std::runtime_error(error_line(fields)),
      fields_(std::make_shared<const ErrorFields>(std::move(fields))) {}

Error::Error(const std::string& what, ErrorFields fields)
    : std::runtime_error(what), fields_(std::make_shared<const ErrorFields>(std::move(fields))) {}

Error::Error() : std::runtime_error("usher::Error"), fields_(with_message(what(), {})) {}

bool Error::is_transient() const noexcept { return retry_class(*this) != RetryClass::never; }

UnknownService::UnknownService(const std::string& message, std::string service, std::string sqlstate)
    : Error(message, std::move(sqlstate)), service_(std::move(service)) {}

UnknownService::UnknownService(const std::string& what, std::string service, ErrorFields fields)
    : Error(what, std::move(fields)), service_(std::move(service)) {}

RetryClass retry_class(const std::exception& error) noexcept {
  const auto* e = dynamic_cast<const Error*>(&error);
  if (!e) return RetryClass::never;
  // Nothing was sent: borrowing again is the whole cure.
  if (dynamic_cast<const PoolTimeout*>(e)) return RetryClass::retry_transaction;
  // CommitUnknown carries the lost connection's class 08 code: its type decides first.
  if (!dynamic_cast<const DatabaseError*>(e) && !dynamic_cast<const ConnectionError*>(e))
    return RetryClass::never;  // CommitUnknown, PoolClosed, ConnectAborted, ResultError, ...
  const std::string& s = e->sqlstate();
  if (s == "57P04") return RetryClass::never;  // the database is gone
  if (dynamic_cast<const ConnectionError*>(e) || s == "53300") return RetryClass::reconnect_first;
  if (s == "40001" || s == "40P01" || s == "55P03" || s.starts_with("53") || s.starts_with("72"))
    return RetryClass::retry_transaction;
  return RetryClass::never;
}

bool is_transient(const std::exception& error) noexcept {
  const auto* e = dynamic_cast<const Error*>(&error);
  return e && e->is_transient();
}

void throw_database_error(std::string_view sqlstate, const std::string& message) {
  ErrorFields fields;
  fields.sqlstate = std::string(sqlstate);
  fields.message = message;
  find(sqlstate)(std::move(fields), message);
  std::terminate();  // every thrower throws
}

void throw_database_error(ErrorFields fields, const std::string& what) {
  Thrower thrower = find(fields.sqlstate);
  thrower(std::move(fields), what);
  std::terminate();
}

}  // namespace usher
