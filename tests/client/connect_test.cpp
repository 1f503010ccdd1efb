// Connection::open against real servers and a silent one: several hosts, each under its
// per-host timeout (connect_timeout in the conninfo winning over the caller's), the URI
// form, prefer-standby's two passes, abort_fd; and a server's refusal at login thrown
// with its SQLSTATE (missing role, wrong password, missing database, connection limit).
//
// The silent host is a listening TCP socket on 127.0.0.1 whose backlog is never
// accepted: the kernel completes the handshake, libpq sends its startup packet and no
// answer ever comes. Its pending connections show that, and how often, it was tried.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Clock = std::chrono::steady_clock;

// The test server, over TCP on 127.0.0.1 (the harness's clusters listen there).
int server_port() {
  const char* p = std::getenv("PGPORT");
  return p ? std::atoi(p) : 5432;
}

std::string database() {
  const char* d = std::getenv("PGDATABASE");
  return d ? d : "postgres";
}

int port_of(Connection& c) { return c.exec("SELECT inet_server_port()").scalar<int>(); }

Clock::duration since(Clock::time_point t) { return Clock::now() - t; }

// The per-host timeout where the real server is one of the hosts: its login must fit in
// it on a loaded machine too (a login costs this VM ~50 ms of CPU; 200 ms per host
// failed beside a build, docs/testing.md). A silent host costs the test this long.
constexpr auto kRealHostTimeout = 1s;

// --- several hosts -----------------------------------------------------------------

TEST(ConnectTest, ASilentFirstHostGivesWayToTheNextAfterThePerHostTimeout) {
  SilentServer silent;
  auto started = Clock::now();
  auto c = Connection::open(fmt::format("host=127.0.0.1,127.0.0.1 port={},{}", silent.port(),
                                        server_port()),
                            {}, ConnectLimits{started + wait_limit(), kRealHostTimeout});
  EXPECT_EQ(port_of(c), server_port());
  EXPECT_EQ(silent.take_pending(), 1);  // the silent host was tried first
  EXPECT_LT(since(started), wait_limit() / 2);  // the per-host timeout, not the deadline
}

TEST(ConnectTest, ConnectTimeoutInTheConninfoWinsOverTheCallersTimeouts) {
  SilentServer silent;
  auto conninfo = fmt::format("host=127.0.0.1,127.0.0.1 port={},{} connect_timeout=2",
                              silent.port(), server_port());
  // The old signature: the deadline only.
  auto started = Clock::now();
  auto c = Connection::open(conninfo, 10s);
  EXPECT_EQ(port_of(c), server_port());
  EXPECT_LT(since(started), 6s);  // ~2 s, not the caller's 10 s
  // Over a per-host timeout of the caller's.
  started = Clock::now();
  auto d = Connection::open(conninfo, {}, ConnectLimits{started + wait_limit(), 20s});
  EXPECT_EQ(port_of(d), server_port());
  EXPECT_LT(since(started), 6s);
  EXPECT_EQ(silent.take_pending(), 2);
}

TEST(ConnectTest, UriWithSeveralHostsAndConnectTimeoutInTheOptions) {
  SilentServer silent;
  auto uri = fmt::format("postgresql://127.0.0.1:{},127.0.0.1:{}/{}", silent.port(),
                         server_port(), database());
  auto started = Clock::now();
  auto c = Connection::open(uri + "?connect_timeout=2", {},
                            ConnectLimits{started + wait_limit(), 20s});
  EXPECT_EQ(port_of(c), server_port());
  EXPECT_LT(since(started), 6s);
  started = Clock::now();
  auto d = Connection::open(uri, {{"connect_timeout", "2"}},
                            ConnectLimits{started + wait_limit(), 20s});
  EXPECT_EQ(port_of(d), server_port());
  EXPECT_LT(since(started), 6s);
  EXPECT_EQ(silent.take_pending(), 2);
}

TEST(ConnectTest, WhenEveryHostFailsTheErrorListsEachWithoutThePassword) {
  SilentServer first, second;
  try {
    Connection::open(fmt::format("host=127.0.0.1,127.0.0.1 port={},{} password=sekrit-pw",
                                 first.port(), second.port()),
                     {}, ConnectLimits{Clock::now() + wait_limit(), 200ms});
    FAIL() << "connected to a silent server";
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.sqlstate(), "08001");
    EXPECT_TRUE(e.is_transient());
    EXPECT_THAT(e.what(), HasSubstr(fmt::format("[host=127.0.0.1 port={}] timed out", first.port())));
    EXPECT_THAT(e.what(), HasSubstr(fmt::format("[host=127.0.0.1 port={}] timed out", second.port())));
    EXPECT_THAT(e.what(), Not(HasSubstr("sekrit-pw")));
  }
  EXPECT_EQ(first.take_pending(), 1);
  EXPECT_EQ(second.take_pending(), 1);
}

TEST(ConnectTest, PreferStandbyLooksForAStandbyOnEveryHostBeforeTakingAny) {
  // No standby here: the first pass asks each host for one (the primary says no, the
  // silent host times out), the second takes the primary. One attempt per host with
  // prefer-standby kept would take the primary at once and never try the silent host.
  SilentServer silent;
  auto c = Connection::open(
      fmt::format("host=127.0.0.1,127.0.0.1 port={},{} target_session_attrs=prefer-standby",
                  server_port(), silent.port()),
      {}, ConnectLimits{Clock::now() + wait_limit(), kRealHostTimeout});
  EXPECT_EQ(port_of(c), server_port());
  EXPECT_EQ(silent.take_pending(), 1);
}

TEST(ConnectTest, ADeadlineOfTimePointMaxIsAllowed) {
  // For callers whose per-host timeouts bound the open (and abort_fd stops it).
  auto c = Connection::open("", {}, ConnectLimits{Clock::time_point::max(), kRealHostTimeout});
  EXPECT_EQ(c.exec("SELECT 1").scalar<int>(), 1);
}

// --- abort_fd ----------------------------------------------------------------------

TEST(ConnectTest, AbortFdStopsAnOpenInFlight) {
  SilentServer silent;
  int fd = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  Clock::time_point aborted_at{};
  std::thread aborter([&] {
    ASSERT_TRUE(silent.wait_for_client());  // the open is waiting for the silent server
    aborted_at = Clock::now();
    std::uint64_t one = 1;
    ASSERT_EQ(::write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  });
  auto limits = ConnectLimits{Clock::now() + 2 * wait_limit(), 2 * wait_limit(), fd};
  EXPECT_THROW(Connection::open(fmt::format("host=127.0.0.1 port={}", silent.port()), {}, limits),
               ConnectAborted);
  auto returned_at = Clock::now();
  aborter.join();
  EXPECT_LT(returned_at - aborted_at, wait_limit());  // not the timeouts (2 x wait_limit)
  EXPECT_EQ(silent.take_pending(), 1);
  // Already readable: nothing is tried.
  try {
    Connection::open(fmt::format("host=127.0.0.1 port={} password=sekrit-pw", silent.port()),
                     {}, limits);
    FAIL() << "not aborted";
  } catch (const ConnectAborted& e) {
    EXPECT_FALSE(e.is_transient());
    EXPECT_THAT(e.what(), Not(HasSubstr("sekrit-pw")));
  }
  EXPECT_EQ(silent.take_pending(), 0);
  ::close(fd);
}

// --- refusals at login -------------------------------------------------------------

TEST(ConnectTest, RefusedTcpIsConnectionError08001) {
  int port;
  { SilentServer gone; port = gone.port(); }  // closed: nothing listens there now
  try {
    Connection::open(fmt::format("host=127.0.0.1 port={}", port), wait_limit());
    FAIL() << "connected to a closed port";
  } catch (const DatabaseError&) {
    FAIL() << "a libpq-level failure has no server SQLSTATE";
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.sqlstate(), "08001");
    EXPECT_TRUE(e.is_transient());
  }
}

// The class, SQLSTATE and message of what Connection::open throws for `conninfo`.
template <typename Expected>
void expect_refusal(const std::string& conninfo, const std::string& sqlstate, bool transient,
                    const std::string& says) {
  SCOPED_TRACE(conninfo);
  try {
    Connection::open(conninfo, wait_limit());
    FAIL() << "connected";
  } catch (const Expected& e) {
    EXPECT_EQ(e.sqlstate(), sqlstate);
    EXPECT_EQ(e.is_transient(), transient);
    EXPECT_THAT(e.what(), HasSubstr(says));
    EXPECT_THAT(e.what(), HasSubstr(fmt::format("port={}", server_port())));  // names the server
    EXPECT_THAT(e.what(), Not(HasSubstr("LOCATION")));
    EXPECT_THAT(e.what(), Not(HasSubstr(sqlstate + ":")));
  } catch (const Error& e) {
    ADD_FAILURE() << "wrong class: " << typeid(e).name() << " " << e.sqlstate() << " " << e.what();
  }
}

TEST(ConnectTest, MissingRoleIsPermissionDenied28000) {
  expect_refusal<PermissionDenied>("user=usher_no_such_role", "28000", false,
                                   "role \"usher_no_such_role\" does not exist");
}

TEST(ConnectTest, MissingDatabaseIsDatabaseError3D000NotTransient) {
  expect_refusal<DatabaseError>("dbname=usher_no_such_db", "3D000", false,
                                "database \"usher_no_such_db\" does not exist");
  try {
    Connection::open("dbname=usher_no_such_db", wait_limit());
  } catch (const Error& e) {
    // The type of class 3D, nothing more specific; the server's fields.
    EXPECT_EQ(typeid(e), typeid(InvalidCatalogName)) << e.what();
    EXPECT_EQ(e.severity(), "FATAL");
    EXPECT_EQ(e.message(), "database \"usher_no_such_db\" does not exist");
    EXPECT_THAT(e.what(), Not(HasSubstr("FATAL")));
    EXPECT_THAT(e.what(), Not(HasSubstr("\n")));
  }
}

TEST(ConnectTest, ARefusalAfterASilentHostKeepsItsClassAndListsBoth) {
  SilentServer silent;
  try {
    Connection::open(fmt::format("host=127.0.0.1,127.0.0.1 port={},{} dbname=usher_no_such_db",
                                 silent.port(), server_port()),
                     {}, ConnectLimits{Clock::now() + wait_limit(), kRealHostTimeout});
    FAIL() << "connected";
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.sqlstate(), "3D000");
    EXPECT_THAT(e.what(), HasSubstr(fmt::format("port={}] timed out", silent.port())));
    EXPECT_THAT(e.what(), HasSubstr("database \"usher_no_such_db\" does not exist"));
  }
}

TEST(ConnectTest, ConnectionLimitIsTransientError53300) {
  Admin admin;
  admin.conn().exec("DROP ROLE IF EXISTS usher_login_limited");
  admin.conn().exec("CREATE ROLE usher_login_limited LOGIN CONNECTION LIMIT 0");
  expect_refusal<TransientError>("user=usher_login_limited", "53300", true,
                                 "too many connections for role \"usher_login_limited\"");
  admin.conn().exec("DROP ROLE usher_login_limited");
}

// pg_usher's per-service quota refuses a login with FATAL 53300. Runs where pg_usher is
// installed: the own-server cluster of tests/suites/client.sh (ConnectExtension*).
TEST(ConnectExtensionTest, ServiceQuotaAtLoginIsTransientError53300) {
  const std::string service = "usher_login_quota";
  Admin admin;
  auto& c = admin.conn();
  if (!c.exec("SELECT to_regclass('usher.published_services') IS NOT NULL").scalar<bool>())
    GTEST_SKIP() << "pg_usher is not installed here (CREATE EXTENSION pg_usher)";
  c.exec("DROP ROLE IF EXISTS usher_login_quota_role");
  c.exec("CREATE ROLE usher_login_quota_role LOGIN");  // superusers are never refused
  c.exec("SELECT usher.set_service($1, max_connections => 1)", service);
  struct Drop {
    Connection& c;
    const std::string& service;
    ~Drop() {
      c.exec("SELECT usher.drop_service($1)", service);
      c.exec("DROP ROLE usher_login_quota_role");
    }
  } drop{c, service};
  ASSERT_TRUE(eventually([&] {  // the publisher worker publishes the quota
    return c.exec("SELECT count(*) FROM usher.published_services"
                  " WHERE name = $1 AND max_connections = 1", service).scalar<long>() == 1;
  }));
  auto first = Connection::open("application_name=" + service + "/first", wait_limit());
  expect_refusal<TransientError>(
      "user=usher_login_quota_role application_name=" + service + "/second", "53300", true,
                                 "too many connections for service \"" + service + "\"");
  // The server's HINT stays in the message, and is a field.
  expect_refusal<TransientError>(
      "user=usher_login_quota_role application_name=" + service + "/third", "53300", true,
      "HINT: Close idle connections of this service");
  try {
    Connection::open("user=usher_login_quota_role application_name=" + service + "/fourth",
                     wait_limit());
  } catch (const TooManyConnections& e) {
    EXPECT_THAT(e.hint(), HasSubstr("Close idle connections of this service"));
    EXPECT_EQ(retry_class(e), RetryClass::reconnect_first);
  }
}

// A role that logs in with a password: pg_hba.conf of the test cluster (trust for all)
// gets two lines of its own in front, for this role only, and back as it was after.
class PasswordRole {
 public:
  PasswordRole() {
    auto& c = admin_.conn();
    c.exec("DROP ROLE IF EXISTS usher_login_pw");
    c.exec("CREATE ROLE usher_login_pw LOGIN PASSWORD 'right-pw'");
    hba_ = c.exec("SELECT current_setting('hba_file')").scalar<std::string>();
    original_ = c.exec("SELECT pg_read_file($1)", hba_).scalar<std::string>();
    write("local all usher_login_pw scram-sha-256\n"
          "host all usher_login_pw 127.0.0.1/32 scram-sha-256\n" + original_);
  }
  ~PasswordRole() {
    write(original_);
    admin_.conn().exec("DROP ROLE usher_login_pw");
  }

 private:
  void write(const std::string& content) {
    auto& c = admin_.conn();
    auto id = c.exec("SELECT lo_from_bytea(0, convert_to($1::text, 'UTF8'))::bigint", content)
                  .scalar<std::int64_t>();
    c.exec("SELECT lo_export($1::bigint::oid, $2)", id, hba_);
    c.exec("SELECT lo_unlink($1::bigint::oid)", id);
    admin_.conn().exec("SELECT pg_reload_conf()");
  }

  Admin admin_;
  std::string hba_, original_;
};

TEST(ConnectTest, WrongPasswordIsPermissionDenied28P01) {
  PasswordRole role;
  const std::string wrong = "user=usher_login_pw password=wrong-pw";
  // The reload is asynchronous: wait until the server asks for the password.
  ASSERT_TRUE(eventually([&] {
    try {
      Connection::open(wrong, wait_limit());
      return false;
    } catch (const PermissionDenied&) {
      return true;
    }
  }));
  expect_refusal<PermissionDenied>(wrong, "28P01", false,
                                   "password authentication failed for user \"usher_login_pw\"");
  try {
    Connection::open(wrong, wait_limit());
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), Not(HasSubstr("wrong-pw")));
  }
  auto c = Connection::open("user=usher_login_pw password=right-pw", wait_limit());
  EXPECT_EQ(c.exec("SELECT current_user").scalar<std::string>(), "usher_login_pw");
}

TEST(ConnectTest, StatementErrorsAfterOpenAreNotVerbose) {
  auto c = Connection::open("", wait_limit());
  try {
    c.exec("SELECT 1 / $1::int", 0);
    FAIL();
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.sqlstate(), "22012");
    EXPECT_THAT(e.what(), Not(HasSubstr("LOCATION")));
    EXPECT_THAT(e.what(), Not(HasSubstr("22012")));
  }
}

}  // namespace
}  // namespace usher::test
