// The error hierarchy: every SQLSTATE of PostgreSQL's errcodes.txt maps to the type of
// its class (and to its own type where it has one); retry_class() follows the table of
// docs/client.md; real server errors carry their fields and a one-line what().
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <typeindex>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// `pg_config --sharedir` of $PG_CONFIG, then of the pg_config on PATH.
std::string errcodes_path() {
  std::vector<std::string> tools;
  if (const char* env = std::getenv("PG_CONFIG"); env && *env) tools.emplace_back(env);
  tools.emplace_back("pg_config");
  for (const auto& tool : tools) {
    std::string command = "'" + tool + "' --sharedir 2>/dev/null";
    FILE* p = ::popen(command.c_str(), "r");
    if (!p) continue;
    char buf[4096];
    std::string out;
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    ::pclose(p);
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    std::string path = out + "/errcodes.txt";
    if (!out.empty() && std::filesystem::exists(path)) return path;
  }
  return {};
}

struct Code {
  std::string sqlstate;
  std::string section_class;  // the "Section: Class XX" it is listed under
};

std::vector<Code> read_errcodes(const std::string& path) {
  std::ifstream in(path);
  std::vector<Code> codes;
  std::string section;
  const std::regex section_line(R"(^Section: Class ([0-9A-Z]{2}) - )");
  const std::regex code_line(R"(^([0-9A-Z]{5})\s+[EWS]\s+)");
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_search(line, m, section_line)) section = m[1];
    else if (std::regex_search(line, m, code_line)) codes.push_back({m[1], section});
  }
  return codes;
}

using IsA = std::function<bool(const Error&)>;
template <typename T>
IsA is_a() {
  return [](const Error& e) { return dynamic_cast<const T*>(&e) != nullptr; };
}

struct ClassType {
  IsA is;
  std::type_index exact;
};
template <typename T>
ClassType class_type() {
  return {is_a<T>(), std::type_index(typeid(T))};
}

// The type of each class of errcodes.txt, as docs/client.md lists it.
const std::map<std::string, ClassType>& class_types() {
  static const std::map<std::string, ClassType> types{
      {"00", class_type<SuccessfulCompletion>()},
      {"01", class_type<Warning>()},
      {"02", class_type<NoData>()},
      {"03", class_type<SqlStatementNotYetComplete>()},
      {"08", class_type<ConnectionError>()},
      {"09", class_type<TriggeredActionException>()},
      {"0A", class_type<FeatureNotSupported>()},
      {"0B", class_type<InvalidTransactionInitiation>()},
      {"0F", class_type<LocatorException>()},
      {"0L", class_type<InvalidGrantor>()},
      {"0P", class_type<InvalidRoleSpecification>()},
      {"0Z", class_type<DiagnosticsException>()},
      {"20", class_type<CaseNotFound>()},
      {"21", class_type<CardinalityViolation>()},
      {"22", class_type<DataException>()},
      {"23", class_type<ConstraintViolation>()},
      {"24", class_type<InvalidCursorState>()},
      {"25", class_type<InvalidTransactionState>()},
      {"26", class_type<InvalidSqlStatementName>()},
      {"27", class_type<TriggeredDataChangeViolation>()},
      {"28", class_type<InvalidAuthorizationSpecification>()},
      {"2B", class_type<DependentPrivilegeDescriptorsStillExist>()},
      {"2D", class_type<InvalidTransactionTermination>()},
      {"2F", class_type<SqlRoutineException>()},
      {"34", class_type<InvalidCursorName>()},
      {"38", class_type<ExternalRoutineException>()},
      {"39", class_type<ExternalRoutineInvocationException>()},
      {"3B", class_type<SavepointException>()},
      {"3D", class_type<InvalidCatalogName>()},
      {"3F", class_type<InvalidSchemaName>()},
      {"40", class_type<TransactionRollback>()},
      {"42", class_type<SyntaxErrorOrAccessRuleViolation>()},
      {"44", class_type<WithCheckOptionViolation>()},
      {"53", class_type<InsufficientResources>()},
      {"54", class_type<ProgramLimitExceeded>()},
      {"55", class_type<ObjectNotInPrerequisiteState>()},
      {"57", class_type<OperatorIntervention>()},
      {"58", class_type<SystemError>()},
      {"72", class_type<SnapshotFailure>()},
      {"F0", class_type<ConfigFileError>()},
      {"HV", class_type<FdwError>()},
      {"P0", class_type<PlpgsqlError>()},
      {"XX", class_type<InternalError>()},
  };
  return types;
}

// The codes with a type of their own.
const std::map<std::string, std::type_index>& code_types() {
  static const std::map<std::string, std::type_index> types{
      {"22003", typeid(NumericValueOutOfRange)},
      {"22012", typeid(DivisionByZero)},
      {"22P02", typeid(InvalidTextRepresentation)},
      {"23502", typeid(NotNullViolation)},
      {"23503", typeid(ForeignKeyViolation)},
      {"23505", typeid(UniqueViolation)},
      {"23514", typeid(CheckViolation)},
      {"23P01", typeid(ExclusionViolation)},
      {"25006", typeid(ReadOnlySqlTransaction)},
      {"25P02", typeid(InFailedSqlTransaction)},
      {"25P03", typeid(IdleInTransactionSessionTimeout)},
      {"28P01", typeid(InvalidPassword)},
      {"40001", typeid(SerializationFailure)},
      {"40002", typeid(TransactionIntegrityConstraintViolation)},
      {"40003", typeid(StatementCompletionUnknown)},
      {"40P01", typeid(DeadlockDetected)},
      {"42501", typeid(InsufficientPrivilege)},
      {"42601", typeid(SyntaxError)},
      {"42703", typeid(UndefinedColumn)},
      {"42883", typeid(UndefinedFunction)},
      {"42P01", typeid(UndefinedTable)},
      {"53300", typeid(TooManyConnections)},
      {"55006", typeid(ObjectInUse)},
      {"55P03", typeid(LockNotAvailable)},
      {"57014", typeid(QueryCanceled)},
      {"57P01", typeid(AdminShutdown)},
      {"57P02", typeid(CrashShutdown)},
      {"57P03", typeid(CannotConnectNow)},
      {"57P04", typeid(DatabaseDropped)},
      {"57P05", typeid(IdleSessionTimeout)},
  };
  return types;
}

// The session is gone with these: a ConnectionError whatever the class.
bool ends_session(const std::string& s) {
  return s.starts_with("08") || s == "25P03" || (s.starts_with("57P") && s != "57P00");
}

// docs/client.md, "Errors": what retry_class() says of each server code.
RetryClass documented_retry_class(const std::string& s) {
  if (s == "57P04") return RetryClass::never;
  if (ends_session(s) || s == "53300") return RetryClass::reconnect_first;
  if (s == "40001" || s == "40P01" || s == "55P03" || s.starts_with("53") || s.starts_with("72"))
    return RetryClass::retry_transaction;
  return RetryClass::never;
}

void thrown_for(const std::string& sqlstate, const std::function<void(const Error&)>& check) {
  try {
    throw_database_error(sqlstate, "message of " + sqlstate);
  } catch (const Error& e) {
    check(e);
  }
}

TEST(ErrcodesTest, EverySqlstateOfErrcodesTxtMapsToItsClassAndType) {
  const std::string path = errcodes_path();
  ASSERT_FALSE(path.empty()) << "errcodes.txt not found under `$PG_CONFIG --sharedir` nor "
                                "`pg_config --sharedir` (package postgresql-15)";
  auto codes = read_errcodes(path);
  ASSERT_GT(codes.size(), 250u) << path;  // PostgreSQL 15 lists 267
  std::set<std::string> classes_seen, codes_seen;
  for (const auto& code : codes) {
    SCOPED_TRACE(code.sqlstate);
    // A code's class is its first two characters. Section 42 also lists 26000, 34000,
    // 3D000 and 3F000 again (ERRCODE_UNDEFINED_CURSOR ...: C aliases of the codes in
    // their own sections).
    const std::string cls_code = code.sqlstate.substr(0, 2);
    if (cls_code != code.section_class)
      EXPECT_EQ(code.sqlstate.substr(2), "000") << "listed under class " << code.section_class;
    codes_seen.insert(code.sqlstate);
    classes_seen.insert(cls_code);
    auto cls = class_types().find(cls_code);
    if (cls == class_types().end()) {
      ADD_FAILURE() << "class " << cls_code << " of errcodes.txt has no type here";
      continue;
    }
    thrown_for(code.sqlstate, [&](const Error& e) {
      EXPECT_EQ(e.sqlstate(), code.sqlstate);
      EXPECT_EQ(e.message(), "message of " + code.sqlstate);
      EXPECT_TRUE(cls->second.is(e)) << typeid(e).name();
      auto own = code_types().find(code.sqlstate);
      EXPECT_EQ(std::type_index(typeid(e)), own != code_types().end() ? own->second : cls->second.exact)
          << typeid(e).name();
      EXPECT_TRUE(dynamic_cast<const DatabaseError*>(&e) || dynamic_cast<const ConnectionError*>(&e));
      EXPECT_EQ(dynamic_cast<const ConnectionError*>(&e) != nullptr, ends_session(code.sqlstate));
      EXPECT_EQ(retry_class(e), documented_retry_class(code.sqlstate));
      EXPECT_EQ(is_transient(e), documented_retry_class(code.sqlstate) != RetryClass::never);
      EXPECT_EQ(e.is_transient(), is_transient(e));
    });
  }
  // Nothing in the tables here that errcodes.txt does not have (a typo would hide).
  for (const auto& [cls, type] : class_types()) EXPECT_TRUE(classes_seen.count(cls)) << cls;
  for (const auto& [code, type] : code_types()) EXPECT_TRUE(codes_seen.count(code)) << code;
}

TEST(ErrcodesTest, OldNamesStillCatchWhatTheyCaught) {
  for (const char* s : {"40001", "40P01", "55P03", "53000", "53100", "53200", "53300", "53400"})
    thrown_for(s, [&](const Error& e) { EXPECT_TRUE(dynamic_cast<const TransientError*>(&e)) << s; });
  for (const char* s : {"42501", "28000", "28P01"})
    thrown_for(s, [&](const Error& e) { EXPECT_TRUE(dynamic_cast<const PermissionDenied*>(&e)) << s; });
  for (const char* s : {"57P01", "57P02", "57P03", "08000", "08006"})
    thrown_for(s, [&](const Error& e) { EXPECT_TRUE(dynamic_cast<const ConnectionError*>(&e)) << s; });
  // One Error inside, however many categories: a catch by any base finds it.
  try {
    throw_database_error("40001", "x");
  } catch (const Error& e) {
    EXPECT_EQ(e.sqlstate(), "40001");
  }
  try {
    throw_database_error("57P01", "x");
  } catch (const DatabaseError& e) {
    EXPECT_TRUE(dynamic_cast<const ConnectionError*>(&e));
  }
  // Unknown and empty codes: DatabaseError itself.
  for (const char* s : {"ZZ000", "", "2200"})
    thrown_for(s, [&](const Error& e) { EXPECT_EQ(typeid(e), typeid(DatabaseError)) << s; });
}

TEST(RetryClassTest, LibraryErrorsAndOtherExceptions) {
  EXPECT_EQ(retry_class(PoolTimeout("t")), RetryClass::retry_transaction);
  EXPECT_EQ(retry_class(PoolClosed("c")), RetryClass::never);
  EXPECT_EQ(retry_class(ConnectAborted("a")), RetryClass::never);
  // Its code is the lost connection's, but the outcome is unknown: never.
  EXPECT_EQ(retry_class(CommitUnknown("u", "08006")), RetryClass::never);
  EXPECT_EQ(retry_class(ConnectionError("lost", "08006")), RetryClass::reconnect_first);
  EXPECT_EQ(retry_class(ConnectionError("no sqlstate")), RetryClass::reconnect_first);
  EXPECT_EQ(retry_class(NullValue("n")), RetryClass::never);
  EXPECT_EQ(retry_class(InvalidParameter("p", "22021")), RetryClass::never);
  EXPECT_EQ(retry_class(std::runtime_error("other")), RetryClass::never);
  EXPECT_FALSE(is_transient(std::logic_error("other")));
  EXPECT_TRUE(is_transient(PoolTimeout("t")));
  EXPECT_TRUE(PoolTimeout("t").is_transient());
  EXPECT_TRUE(ConnectionError("lost", "08006").is_transient());
  EXPECT_FALSE(CommitUnknown("u", "08006").is_transient());
}

TEST(ErrorLineTest, OneLineWithDetailAndHint) {
  ErrorFields f;
  f.message = "deadlock detected";
  f.detail = "Process 1 waits for ShareLock.\nProcess 2 waits for ShareLock.";
  f.hint = "See server log for query details.";
  EXPECT_EQ(error_line(f), "deadlock detected; DETAIL: Process 1 waits for ShareLock. Process 2 "
                           "waits for ShareLock.; HINT: See server log for query details.");
  DeadlockDetected e(f);
  EXPECT_STREQ(e.what(), error_line(f).c_str());
  DeadlockDetected copy = e;  // shares the fields
  EXPECT_EQ(&copy.fields(), &e.fields());
}

// Real server errors: the fields come from the server, what() is one line.
class ErrorFieldsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    conn.exec("CREATE TEMP TABLE parent (id int CONSTRAINT parent_pk PRIMARY KEY)");
    conn.exec("CREATE TEMP TABLE child (id int NOT NULL, parent int CONSTRAINT child_parent_fk "
              "REFERENCES parent, qty int CONSTRAINT child_qty_positive CHECK (qty > 0))");
    conn.exec("INSERT INTO parent VALUES (1)");
    schema = conn.exec("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()")
                 .scalar<std::string>();
  }

  // Runs `sql` and returns what it threw as T (failing the test otherwise).
  template <typename T, typename... Args>
  std::optional<T> error_of(const std::string& sql, Args&&... args) {
    try {
      conn.exec(sql, std::forward<Args>(args)...);
      ADD_FAILURE() << "no error: " << sql;
    } catch (const T& e) {
      EXPECT_EQ(e.severity(), "ERROR");
      EXPECT_THAT(e.what(), Not(HasSubstr("ERROR:")));
      EXPECT_THAT(e.what(), Not(HasSubstr("\n")));
      EXPECT_THAT(e.what(), HasSubstr(e.message()));
      return e;
    } catch (const Error& e) {
      ADD_FAILURE() << "wrong type " << typeid(e).name() << ": " << e.sqlstate() << " " << e.what();
    }
    return std::nullopt;
  }

  Connection conn = Connection::open("", 10s);
  std::string schema;
};

TEST_F(ErrorFieldsTest, UniqueViolationNamesConstraintAndTable) {
  auto e = error_of<UniqueViolation>("INSERT INTO parent VALUES ($1)", 1);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "23505");
  EXPECT_EQ(e->constraint(), "parent_pk");
  EXPECT_EQ(e->table(), "parent");
  EXPECT_EQ(e->schema(), schema);
  EXPECT_EQ(e->detail(), "Key (id)=(1) already exists.");
  EXPECT_EQ(std::string(e->what()),
            "duplicate key value violates unique constraint \"parent_pk\"; DETAIL: Key (id)=(1) "
            "already exists.");
  EXPECT_TRUE(dynamic_cast<const ConstraintViolation*>(&*e));
  EXPECT_EQ(retry_class(*e), RetryClass::never);
}

TEST_F(ErrorFieldsTest, ForeignKeyNotNullAndCheck) {
  auto fk = error_of<ForeignKeyViolation>("INSERT INTO child VALUES (1, $1, 1)", 2);
  ASSERT_TRUE(fk);
  EXPECT_EQ(fk->constraint(), "child_parent_fk");
  EXPECT_EQ(fk->table(), "child");

  auto nn = error_of<NotNullViolation>("INSERT INTO child VALUES (NULL, 1, 1)");
  ASSERT_TRUE(nn);
  EXPECT_EQ(nn->column(), "id");
  EXPECT_EQ(nn->table(), "child");

  auto check = error_of<CheckViolation>("INSERT INTO child VALUES (1, 1, $1)", -1);
  ASSERT_TRUE(check);
  EXPECT_EQ(check->constraint(), "child_qty_positive");
  EXPECT_EQ(check->table(), "child");
}

TEST_F(ErrorFieldsTest, InvalidTextRepresentationHasItsPositionAndDatatypeErrorsTheirType) {
  //                                 position 8: the quote that starts 'abc'
  auto e = error_of<InvalidTextRepresentation>("SELECT 'abc'::int");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "22P02");
  EXPECT_EQ(e->position(), 8);
  EXPECT_TRUE(dynamic_cast<const DataException*>(&*e));
  // A domain's check names the domain as its datatype.
  conn.exec("CREATE DOMAIN pg_temp.positive AS int CONSTRAINT positive_check CHECK (VALUE > 0)");
  auto d = error_of<CheckViolation>("SELECT $1::pg_temp.positive", -1);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->datatype(), "positive");
  EXPECT_EQ(d->constraint(), "positive_check");
}

TEST_F(ErrorFieldsTest, ReadOnlyTransaction) {
  conn.exec("BEGIN READ ONLY");  // temporary tables stay writable: a permanent one
  auto e = error_of<ReadOnlySqlTransaction>("CREATE TABLE usher_errors_test_ro (id int)");
  conn.exec("ROLLBACK");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "25006");
  EXPECT_TRUE(dynamic_cast<const InvalidTransactionState*>(&*e));
}

TEST_F(ErrorFieldsTest, StatementTimeoutIsQueryCanceled) {
  conn.exec("SET statement_timeout = '50ms'");
  auto e = error_of<QueryCanceled>("SELECT pg_sleep(30)");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sqlstate(), "57014");
  EXPECT_EQ(e->message(), "canceling statement due to statement timeout");
  EXPECT_TRUE(dynamic_cast<const OperatorIntervention*>(&*e));
  EXPECT_FALSE(dynamic_cast<const ConnectionError*>(&*e));
  EXPECT_EQ(retry_class(*e), RetryClass::never);
}

TEST_F(ErrorFieldsTest, RaisedDetailHintAndContextAreFields) {
  conn.exec("CREATE FUNCTION pg_temp.fail() RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'no stock for %', 'widget' USING ERRCODE = '40001', "
            "DETAIL = E'line one\\nline two', HINT = 'try later'; END $$");
  auto e = error_of<SerializationFailure>("SELECT pg_temp.fail()");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->message(), "no stock for widget");
  EXPECT_EQ(e->detail(), "line one\nline two");
  EXPECT_EQ(e->hint(), "try later");
  EXPECT_THAT(e->context(), HasSubstr("PL/pgSQL function pg_temp"));
  EXPECT_EQ(std::string(e->what()), "no stock for widget; DETAIL: line one line two; HINT: try later");
  EXPECT_EQ(retry_class(*e), RetryClass::retry_transaction);
}

// A backend ended by pg_terminate_backend: the next statement reports the server's
// 57P01 (not a generic 08006), as an AdminShutdown that is a ConnectionError.
TEST_F(ErrorFieldsTest, TerminatedBackendKeepsTheServersCode) {
  Admin admin;
  admin.terminate(conn.backend_pid());
  try {
    conn.exec("SELECT 1");
    FAIL() << "the statement ran on a terminated backend";
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.sqlstate(), "57P01") << e.what();
    EXPECT_EQ(typeid(e), typeid(AdminShutdown)) << e.what();
    EXPECT_EQ(e.severity(), "FATAL");
    EXPECT_EQ(e.message(), "terminating connection due to administrator command");
    EXPECT_THAT(e.what(), Not(HasSubstr("\n")));
    EXPECT_EQ(retry_class(e), RetryClass::reconnect_first);
  }
}

}  // namespace
}  // namespace usher::test
