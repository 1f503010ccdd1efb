// usher.pool_advice() from the client: fetch_pool_advice() against the SQL it wraps, its
// typed errors, and pools that size themselves from it (PoolConfig::size_from_advice).
// It needs pg_usher created in the test database with the registry writable there (the
// suite's own-server cluster, whose usher.database is its default, postgres): the suite
// name starts with PoolExtension so that tests/suites/client.sh runs it there. It skips,
// saying why, anywhere else.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <ostream>

#include "test_support.hpp"

namespace usher {
// Readable failures for EXPECT_EQ on advice.
void PrintTo(const PoolAdvice& a, std::ostream* os) {
  *os << fmt::format("{{{}, instances {}, max_pool_size {}, min_idle {}, {}, \"{}\"}}", a.service,
                     a.client_instances, a.max_pool_size, a.min_idle, a.basis, a.rationale);
}
}  // namespace usher

namespace usher::test {
namespace {

using ::testing::HasSubstr;

// The advice's sessions pin the server's CPU count: the default share is 2 x cores x
// weight, and a large one lets each service's max_connections decide the answer on any
// machine. (A superuser setting: only the postgres sessions can use it.)
constexpr const char* kPinCores = "-c usher.cpu_cores=16";
constexpr const char* kTwo = "usher_advice_two";    // max_connections 2: advised 2 for 1 instance
constexpr const char* kLive = "usher_advice_live";  // max_connections 3, changed by a test
constexpr const char* kFree = "usher_advice_free";  // no limits
constexpr const char* kPoolRole = "usher_advice_pool";        // a pool role: checkout/checkin only
constexpr const char* kMonitorRole = "usher_advice_monitor";  // member of pg_monitor
constexpr const char* kBareRole = "usher_advice_bare";        // no grant at all
constexpr const char* kNoExtension = "usher_client_advice_noext";  // a database without pg_usher

std::string skip_reason;  // set by SetUpTestSuite when the server cannot run these tests

// Role and database names below are this file's constants: DDL takes no parameters.
void drop_role(Connection& c, const std::string& role) {
  if (c.exec("SELECT count(*) FROM pg_roles WHERE rolname = $1", role).scalar<long>() == 0) return;
  c.exec("DROP OWNED BY " + role);
  c.exec("DROP ROLE " + role);
}

void set_live_limit(Connection& c, int max_connections) {
  c.exec("SELECT usher.set_service($1, max_connections => $2::int)", kLive, max_connections);
}

// The row of `SELECT * FROM usher.pool_advice(...)` for `service`, as psql would show it.
PoolAdvice sql_advice(Connection& c, const std::string& service, int instances) {
  auto r = c.exec("SELECT * FROM usher.pool_advice($1::jsonb)",
                  fmt::format("{{\"{}\": {}}}", service, instances));
  for (std::size_t i = 0; i < r.rows(); ++i) {
    if (r.get<std::string>(i, "service") != service) continue;
    return PoolAdvice{service,
                      r.get<int>(i, "client_instances"),
                      r.get<int>(i, "max_pool_size"),
                      r.get<int>(i, "min_idle"),
                      r.get<std::string>(i, "basis"),
                      r.get<std::string>(i, "rationale")};
  }
  ADD_FAILURE() << "usher.pool_advice() has no row for " << service;
  return {};
}

// The E that fetch_pool_advice() throws, or nullopt when it throws nothing (any other
// exception fails the test with its message).
template <typename E>
std::optional<E> fetch_error(Connection& conn, const std::string& service) {
  try {
    fetch_pool_advice(conn, service, 1);
  } catch (const E& e) {
    return e;
  }
  return std::nullopt;
}

// Thread-safe recorder to plug into PoolConfig::logger.
class LogRecorder {
 public:
  Logger logger() {
    return [this](LogLevel level, std::string_view line) {
      std::lock_guard lk(mu_);
      lines_.emplace_back(level, std::string(line));
    };
  }
  std::vector<std::string> at(LogLevel level) const {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (const auto& [l, line] : lines_)
      if (l == level) out.push_back(line);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

class PoolExtensionAdviceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason.clear();
    try {
      Admin admin;
      auto& c = admin.conn();
      if (!c.exec("SELECT to_regprocedure('usher.pool_advice(jsonb)') IS NOT NULL").scalar<bool>()) {
        skip_reason = "usher.pool_advice(jsonb) is not installed here (CREATE EXTENSION pg_usher)";
        return;
      }
      c.exec("SELECT usher.set_service($1, max_connections => 2)", kTwo);
      set_live_limit(c, 3);
      c.exec("SELECT usher.set_service($1)", kFree);
      for (const char* role : {kPoolRole, kMonitorRole, kBareRole}) drop_role(c, role);
      c.exec(std::string("CREATE ROLE ") + kPoolRole + " LOGIN");
      c.exec(std::string("GRANT USAGE ON SCHEMA usher TO ") + kPoolRole);
      c.exec(std::string("GRANT EXECUTE ON FUNCTION usher.checkout(text), usher.checkin() TO ") + kPoolRole);
      c.exec(std::string("CREATE ROLE ") + kMonitorRole + " LOGIN IN ROLE pg_monitor");
      c.exec(std::string("CREATE ROLE ") + kBareRole + " LOGIN");
      c.exec(std::string("DROP DATABASE IF EXISTS ") + kNoExtension + " WITH (FORCE)");
      c.exec(std::string("CREATE DATABASE ") + kNoExtension);
    } catch (const std::exception& e) {
      skip_reason = std::string("cannot prepare services, roles and a database: ") + e.what();
    }
  }
  static void TearDownTestSuite() {
    if (!skip_reason.empty()) return;
    Admin admin;
    auto& c = admin.conn();
    for (const char* service : {kTwo, kLive, kFree}) c.exec("SELECT usher.drop_service($1)", service);
    for (const char* role : {kPoolRole, kMonitorRole, kBareRole}) drop_role(c, role);
    c.exec(std::string("DROP DATABASE IF EXISTS ") + kNoExtension + " WITH (FORCE)");
  }

  void SetUp() override {
    if (!skip_reason.empty()) GTEST_SKIP() << skip_reason;
    advisor = Connection::open(std::string("options='") + kPinCores + "'", 10s);
  }

  // A pool of `service` that sizes itself from the advice, as the postgres superuser
  // with the pinned CPU count.
  PoolConfig advised(const std::string& name, const char* service) {
    auto c = test_config(name);
    c.service = service;
    c.size_from_advice = true;
    c.options = {{"options", kPinCores}};
    c.on_event = events.callback();
    c.logger = logs.logger();
    return c;
  }

  // fetch_pool_advice() read between two SQL reads that agree: the rationale counts the
  // history samples, which move on every usher.sample_interval.
  std::pair<PoolAdvice, PoolAdvice> fetched_and_sql(Connection& conn, const std::string& service,
                                                    int instances) {
    PoolAdvice fetched, sql;
    bool steady = eventually([&] {
      PoolAdvice before = sql_advice(advisor, service, instances);
      fetched = fetch_pool_advice(conn, service, instances);
      sql = sql_advice(advisor, service, instances);
      return before == sql;
    });
    EXPECT_TRUE(steady) << "the advice for " << service << " never held still for three reads";
    return {fetched, sql};
  }

  Admin admin;
  Connection advisor;
  EventRecorder events;
  LogRecorder logs;
};

TEST_F(PoolExtensionAdviceTest, FetchedAdviceIsTheSqlRow) {
  for (const char* service : {"default", kTwo, kLive, kFree}) {
    SCOPED_TRACE(service);
    auto [fetched, sql] = fetched_and_sql(advisor, service, 1);
    EXPECT_EQ(fetched, sql);
    EXPECT_EQ(fetched.service, service);
    EXPECT_EQ(fetched.client_instances, 1);
    EXPECT_GE(fetched.max_pool_size, 1);
    EXPECT_THAT(fetched.basis, ::testing::AnyOf("observed", "default share"));
    EXPECT_THAT(fetched.rationale, HasSubstr("max pool per instance"));
  }
}

TEST_F(PoolExtensionAdviceTest, InstancesChangeTheAnswerLikeTheSql) {
  std::map<int, PoolAdvice> by_instances;
  for (int n : {1, 2, 3, 100000}) {
    SCOPED_TRACE(n);
    auto [fetched, sql] = fetched_and_sql(advisor, kTwo, n);
    EXPECT_EQ(fetched, sql);
    EXPECT_EQ(fetched.client_instances, n);
    by_instances[n] = fetched;
  }
  // max_connections 2 shared by more instances: fewer connections each.
  EXPECT_EQ(by_instances[1].max_pool_size, 2);
  EXPECT_EQ(by_instances[2].max_pool_size, 1);
  EXPECT_EQ(by_instances[100000].max_pool_size, 1);
}

TEST_F(PoolExtensionAdviceTest, UnknownServiceIsTypedAndNamed) {
  auto e = fetch_error<UnknownService>(advisor, "usher_advice_nope");
  ASSERT_TRUE(e) << "no error for an unknown service";
  EXPECT_EQ(e->service(), "usher_advice_nope");
  EXPECT_EQ(e->sqlstate(), "22023");
  EXPECT_THAT(e->what(), HasSubstr("service \"usher_advice_nope\""));
  EXPECT_EQ(advisor.exec("SELECT 1").scalar<int>(), 1);  // the connection is still fine
}

TEST_F(PoolExtensionAdviceTest, BadArgumentsNeverReachTheServer) {
  EXPECT_THROW(fetch_pool_advice(advisor, "", 1), std::invalid_argument);
  EXPECT_THROW(fetch_pool_advice(advisor, kTwo, 0), std::invalid_argument);
  EXPECT_THROW(fetch_pool_advice(advisor, kTwo, 100001), std::invalid_argument);
}

TEST_F(PoolExtensionAdviceTest, ServiceNameTravelsAsAValue) {
  // A service name that would end the JSON or the statement if it were pasted in: it is
  // a value, so the server simply does not know it.
  std::string odd = "x\"}') OR true; --";
  auto e = fetch_error<UnknownService>(advisor, odd);
  ASSERT_TRUE(e) << "no error for an unknown service";
  EXPECT_EQ(e->service(), odd);
}

TEST_F(PoolExtensionAdviceTest, WithoutTheGrantPermissionDeniedSaysWhichGrant) {
  auto pool_role = Connection::open(std::string("user=") + kPoolRole, 10s);
  auto e = fetch_error<PermissionDenied>(pool_role, kFree);
  ASSERT_TRUE(e) << "a pool role without pg_monitor read the advice";
  EXPECT_EQ(e->sqlstate(), "42501");
  EXPECT_THAT(e->what(), HasSubstr(std::string("GRANT pg_monitor TO \"") + kPoolRole + "\""));
  // And that grant is enough.
  auto monitor = Connection::open(std::string("user=") + kMonitorRole, 10s);
  EXPECT_EQ(fetch_pool_advice(monitor, kFree, 1).service, kFree);
}

TEST_F(PoolExtensionAdviceTest, WithoutTheExtensionSaysSo) {
  auto conn = Connection::open(std::string("dbname=") + kNoExtension, 10s);
  auto e = fetch_error<ExtensionUnavailable>(conn, kFree);
  ASSERT_TRUE(e) << "no error without pg_usher";
  EXPECT_EQ(e->sqlstate(), "3F000");
  EXPECT_THAT(e->what(), HasSubstr("CREATE EXTENSION pg_usher"));
  EXPECT_THAT(e->what(), HasSubstr(kNoExtension));
}

TEST_F(PoolExtensionAdviceTest, PoolTakesTheAdvisedSizes) {
  auto c = advised("advice_sized", kTwo);
  c.max_size = 10;
  Pool pool(c);
  auto first = pool.acquire();  // the first connection reads the advice before it is lent
  ASSERT_TRUE(pool.advice().has_value());
  PoolAdvice expected = sql_advice(advisor, kTwo, 1);
  EXPECT_EQ(pool.advice()->max_pool_size, expected.max_pool_size);
  EXPECT_EQ(pool.advice()->min_idle, expected.min_idle);
  ASSERT_LT(expected.max_pool_size, 10) << "the advice should be below the configured max";

  auto s = pool.stats();
  EXPECT_EQ(s.max_size, static_cast<std::size_t>(expected.max_pool_size));
  EXPECT_EQ(s.min_idle, static_cast<std::size_t>(expected.min_idle));
  EXPECT_EQ(pool.config().max_size, 10u);  // the configuration as given
  EXPECT_THAT(pool.prometheus(),
              HasSubstr(fmt::format("usher_pool_max_connections{{pool=\"advice_sized\"}} {}",
                                    expected.max_pool_size)));

  // Reported as an event and as one info line.
  ASSERT_EQ(events.count(PoolEventType::advice), 1u);
  EXPECT_EQ(events.count(PoolEventType::advice,
                         fmt::format("max_size {} (advised {}, configured 10), min_idle {}",
                                     expected.max_pool_size, expected.max_pool_size,
                                     expected.min_idle)),
            1u);
  auto info = logs.at(LogLevel::info);
  ASSERT_EQ(info.size(), 1u);
  EXPECT_THAT(info[0], HasSubstr("sized from usher.pool_advice() for service \"usher_advice_two\""));
  EXPECT_TRUE(logs.at(LogLevel::warning).empty());

  // The pool holds the advised size: with all of them lent, the next caller waits.
  std::vector<Lease> held;
  for (int i = 1; i < expected.max_pool_size; ++i) held.push_back(pool.acquire());
  try {
    pool.acquire(Pool::Clock::now() + 100ms);
    FAIL() << "lent more than the advised max_pool_size";
  } catch (const PoolTimeout& e) {
    EXPECT_THAT(e.what(), HasSubstr(fmt::format("max_size {}", expected.max_pool_size)));
  }
  EXPECT_EQ(pool.stats().total, static_cast<std::size_t>(expected.max_pool_size));
}

TEST_F(PoolExtensionAdviceTest, ConfiguredMaxSizeIsTheCeiling) {
  auto c = advised("advice_ceiling", kTwo);
  c.max_size = 1;
  Pool pool(c);
  pool.acquire();
  ASSERT_TRUE(pool.advice().has_value());
  ASSERT_GT(pool.advice()->max_pool_size, 1) << "the advice should be above the configured max";
  EXPECT_EQ(pool.stats().max_size, 1u);
  EXPECT_EQ(pool.stats().min_idle, 1u);
  EXPECT_EQ(events.count(PoolEventType::advice,
                         fmt::format("max_size 1 (advised {}, configured 1)", pool.advice()->max_pool_size)),
            1u);
}

TEST_F(PoolExtensionAdviceTest, WithoutTheGrantThePoolKeepsItsSizesAndWarnsOnce) {
  auto c = test_config("advice_no_grant");
  c.conninfo = std::string("user=") + kPoolRole;
  c.service = kFree;
  c.size_from_advice = true;
  c.advice_interval = 10ms;  // fail again and again: still one warning
  c.max_size = 3;
  c.min_idle = 2;
  c.on_event = events.callback();
  c.logger = logs.logger();
  Pool pool(c);
  auto lease = pool.acquire();
  EXPECT_EQ(lease->exec("SELECT 1").scalar<int>(), 1);
  ASSERT_TRUE(eventually([&] { return events.count(PoolEventType::advice_failure) >= 3; }));

  EXPECT_FALSE(pool.advice().has_value());
  EXPECT_EQ(pool.stats().max_size, 3u);
  EXPECT_EQ(pool.stats().min_idle, 2u);
  EXPECT_EQ(pool.extension_detected(), std::optional<bool>(true));  // checkout is granted
  auto warnings = logs.at(LogLevel::warning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("keeping max_size 3 and min_idle 2"));
  EXPECT_THAT(warnings[0], HasSubstr(std::string("GRANT pg_monitor TO \"") + kPoolRole + "\""));
}

TEST_F(PoolExtensionAdviceTest, WithoutTheExtensionThePoolKeepsItsSizes) {
  auto c = advised("advice_no_ext", kFree);
  c.conninfo = std::string("dbname=") + kNoExtension;
  c.max_size = 3;
  c.min_idle = 1;
  Pool pool(c);
  EXPECT_EQ(pool.acquire()->exec("SELECT 1").scalar<int>(), 1);
  EXPECT_EQ(events.count(PoolEventType::advice_failure), 1u);  // read before the lend
  EXPECT_EQ(pool.stats().max_size, 3u);
  EXPECT_EQ(pool.stats().min_idle, 1u);
  EXPECT_EQ(pool.extension_detected(), std::optional<bool>(false));
  auto warnings = logs.at(LogLevel::warning);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_THAT(warnings[0], HasSubstr("CREATE EXTENSION pg_usher"));
}

TEST_F(PoolExtensionAdviceTest, ARoleWithoutTheUsherSchemaStillGetsConnections) {
  // No USAGE on schema usher: looking for checkout there must not fail the connection.
  auto c = test_config("advice_bare");
  c.conninfo = std::string("user=") + kBareRole;
  c.service = kFree;
  c.size_from_advice = true;
  c.max_size = 2;
  c.on_event = events.callback();
  c.logger = logs.logger();
  Pool pool(c);
  EXPECT_EQ(pool.acquire()->exec("SELECT current_user").scalar<std::string>(), kBareRole);
  EXPECT_EQ(pool.extension_detected(), std::optional<bool>(false));
  EXPECT_EQ(pool.stats().max_size, 2u);
  EXPECT_EQ(pool.stats().connect_failures, 0u);
  ASSERT_EQ(logs.at(LogLevel::warning).size(), 1u);
  EXPECT_THAT(logs.at(LogLevel::warning)[0], HasSubstr("GRANT pg_monitor"));
}

TEST_F(PoolExtensionAdviceTest, ASmallerAdviceRetiresIdleConnectionsNeverLeasedOnes) {
  auto c = advised("advice_shrink", kLive);
  c.max_size = 10;
  c.advice_interval = 10ms;
  Pool pool(c);
  auto kept = pool.acquire();
  ASSERT_TRUE(pool.advice().has_value());
  std::size_t advised = pool.advice()->max_pool_size;
  ASSERT_GE(advised, 2u) << "max_connections 3 should allow more than one connection";
  {
    std::vector<Lease> more;
    for (std::size_t i = 1; i < advised; ++i) more.push_back(pool.acquire());
    ASSERT_EQ(pool.stats().total, advised);
  }  // back, idle
  auto kept_id = kept.connection_id();
  int kept_pid = kept->backend_pid();

  set_live_limit(admin.conn(), 1);
  ASSERT_TRUE(eventually([&] {
    auto s = pool.stats();
    return s.max_size == 1 && s.total == 1;
  })) << "max_size " << pool.stats().max_size << ", total " << pool.stats().total;
  // The leased connection stayed with its borrower; only idle ones went.
  EXPECT_EQ(kept->exec("SELECT pg_backend_pid()").scalar<int>(), kept_pid);
  EXPECT_EQ(events.count(PoolEventType::retire, "above max_size"), advised - 1) << events.describe();
  for (const auto& e : events.events())
    if (e.type == PoolEventType::retire) EXPECT_NE(e.connection_id, kept_id) << e.reason;

  // A larger answer lets it grow again (up to the configured max).
  kept.release();
  set_live_limit(admin.conn(), 3);
  EXPECT_TRUE(eventually([&] {
    auto now = static_cast<std::size_t>(sql_advice(advisor, kLive, 1).max_pool_size);
    return now > 1 && pool.stats().max_size == now;
  }));
}

}  // namespace
}  // namespace usher::test
