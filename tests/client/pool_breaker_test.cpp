// The pool's circuit breaker and Pool::run. PoolBreakerTest: an unreachable server
// (nothing listens on 127.0.0.1:1) and the shared test server. PoolRestartBreakerTest
// stops and starts a server of its own (tests/suites/client.sh, as PoolRestartTest).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A pool whose breaker opens after 3 failed attempts and then stays open for a minute.
PoolConfig unreachable_server_config(const std::string& name) {
  auto c = test_config(name);
  c.conninfo = "host=127.0.0.1 port=1 user=alice";
  c.options = {{"password", "hunter2"}};
  c.min_idle = 1;
  c.breaker.window_size = 3;
  c.breaker.minimum_calls = 3;
  c.breaker.wait_in_open = std::chrono::minutes(1);
  return c;
}

double ms_since(Pool::Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Pool::Clock::now() - start).count();
}

// The opener's failed attempts open the breaker; from then on acquire() throws
// CircuitOpen without attempting a connection (the opener stops too).
TEST(PoolBreakerTest, UnreachableServerOpensTheBreakerAndAcquireFailsFast) {
  auto c = unreachable_server_config("breaker_unreachable");
  EventRecorder events;
  c.on_event = events.callback();
  Pool pool(c);
  // The opener counts its third failure, and the listener emits the event, just after
  // the breaker opened on it.
  ASSERT_TRUE(eventually([&] {
    auto s = pool.stats();
    return s.breaker.state == BreakerState::open && s.connect_failures == 3 &&
           events.count(PoolEventType::breaker) == 1;
  }));
  EXPECT_EQ(events.count(PoolEventType::breaker), 1u);
  auto e = events.events();
  auto it = std::find_if(e.begin(), e.end(), [](const auto& r) { return r.type == PoolEventType::breaker; });
  ASSERT_NE(it, e.end());
  EXPECT_THAT(it->reason, HasSubstr("closed -> open: failure rate 100.0% >= 50.0% over 3 calls"));

  auto before = pool.stats();
  EXPECT_EQ(before.connect_failures, 3u);
  auto start = Pool::Clock::now();
  try {
    pool.acquire();
    FAIL() << "a lease while the breaker is open";
  } catch (const CircuitOpen& e) {
    double took = ms_since(start);
    std::printf("acquire() with the breaker open failed after %.3f ms\n", took);
    EXPECT_THAT(e.what(), HasSubstr("pool \"breaker_unreachable\": circuit breaker open, no connection attempted"));
    EXPECT_THAT(e.what(), HasSubstr("last connect error"));
    EXPECT_THAT(e.what(), Not(HasSubstr("hunter2")));
  }
  EXPECT_THROW(pool.try_acquire(), CircuitOpen);
  auto after = pool.stats();
  EXPECT_EQ(after.connect_failures, before.connect_failures);  // no connection attempted
  EXPECT_EQ(after.created, 0u);
  EXPECT_EQ(after.circuit_open, 2u);
  EXPECT_EQ(after.timeouts, 0u);
  EXPECT_EQ(after.breaker.state, BreakerState::open);
  EXPECT_EQ(after.breaker.failed_total, 3u);
  EXPECT_EQ(after.breaker.opened_total, 1u);

  auto text = pool.prometheus();
  EXPECT_THAT(text, HasSubstr("usher_pool_breaker_state{pool=\"breaker_unreachable\",state=\"open\"} 1"));
  EXPECT_THAT(text, HasSubstr("usher_pool_breaker_state{pool=\"breaker_unreachable\",state=\"closed\"} 0"));
  EXPECT_THAT(text, HasSubstr("usher_pool_breaker_transitions_total{pool=\"breaker_unreachable\",to=\"open\"} 1"));
  EXPECT_THAT(text, HasSubstr("usher_pool_breaker_calls_total{pool=\"breaker_unreachable\",outcome=\"failure\"} 3"));
  EXPECT_THAT(text, HasSubstr("usher_pool_circuit_open_total{pool=\"breaker_unreachable\"} 2"));
}

// A borrower already waiting when the breaker opens gets CircuitOpen, not a PoolTimeout
// after acquire_timeout (here wait_limit(), 30 s).
TEST(PoolBreakerTest, AWaitingBorrowerGetsCircuitOpenWhenItOpens) {
  auto c = unreachable_server_config("breaker_waiter");
  c.min_idle = 0;  // the opener only works for the borrower
  Pool pool(c);
  try {
    pool.acquire();
    FAIL() << "a lease without a server";
  } catch (const CircuitOpen& e) {
    EXPECT_THAT(e.what(), HasSubstr("pool \"breaker_waiter\": circuit breaker open"));
    EXPECT_THAT(e.what(), HasSubstr("last connect error"));
    EXPECT_THAT(e.what(), Not(HasSubstr("hunter2")));
  }
  EXPECT_EQ(pool.stats().timeouts, 0u);
  EXPECT_EQ(pool.stats().connect_failures, 3u);
}

// Off, the pool behaves as before: borrowers wait out acquire_timeout.
TEST(PoolBreakerTest, DisabledItNeverOpens) {
  auto c = unreachable_server_config("breaker_off");
  c.breaker_enabled = false;
  c.breaker.window_size = 0;  // not validated when off
  c.acquire_timeout = 200ms;
  Pool pool(c);
  ASSERT_TRUE(eventually([&] { return pool.stats().connect_failures >= 5; }));
  EXPECT_THROW(pool.acquire(), PoolTimeout);
  EXPECT_EQ(pool.stats().breaker.state, BreakerState::closed);
  EXPECT_EQ(pool.stats().breaker.failed_total, 0u);
}

TEST(PoolBreakerTest, ConfigValidationNamesTheBreakerSetting) {
  auto c = test_config("breaker_config");
  c.breaker.failure_rate_threshold = 150;
  try {
    Pool pool(c);
    FAIL() << "accepted a failure rate of 150 %";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("PoolConfig.breaker.failure_rate_threshold: must be a percentage in (0, 100] (got 150)"));
  }
  c.breaker = {};
  c.breaker.wait_in_open = 0ms;
  EXPECT_THROW(c.validate(), std::invalid_argument);
}

// Pool::run: the value of fn on a healthy server; a transient error (the backend killed
// under fn) retried on a fresh borrow; a permanent one propagates even with a fallback.
TEST(PoolBreakerTest, RunRetriesTransientErrorsOnAFreshConnection) {
  auto c = test_config("breaker_run");
  c.max_size = 2;
  Pool pool(c);
  EXPECT_EQ(pool.run([](Connection& conn) { return conn.exec("SELECT 41 + 1").scalar<int>(); }), 42);

  RetryPolicy policy;
  policy.initial_delay = 1ms;
  std::vector<int> pids;
  int answer = pool.run(
      [&](Connection& conn, int attempt) {
        pids.push_back(conn.backend_pid());
        if (attempt == 1) conn.exec("SELECT pg_terminate_backend(pg_backend_pid())");
        return conn.exec("SELECT $1::int", attempt).scalar<int>();
      },
      policy);
  EXPECT_EQ(answer, 2);
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_NE(pids[0], pids[1]);

  int fallbacks = 0;
  int attempts = 0;
  EXPECT_THROW(pool.run(
                   [&](Connection& conn) {
                     ++attempts;
                     return conn.exec("SELECT no_such_column").scalar<int>();
                   },
                   policy, [&](const Error&) { return ++fallbacks; }),
               DatabaseError);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(fallbacks, 0);
}

// With the server unavailable, run() answers from the fallback: with the breaker open
// at once (CircuitOpen, fn never runs), and when the policy gives up on a transient error.
TEST(PoolBreakerTest, RunAnswersFromTheFallbackWhenTheServerIsUnavailable) {
  auto c = unreachable_server_config("breaker_fallback");
  Pool pool(c);
  ASSERT_TRUE(eventually([&] { return pool.stats().breaker.state == BreakerState::open; }));
  std::string seen;
  int ran = 0;
  auto answer = pool.run([&](Connection&) { ++ran; return std::string("from the database"); },
                         RetryPolicy{},
                         [&](const Error& e) {
                           seen = e.what();
                           return std::string("from the cache");
                         });
  EXPECT_EQ(answer, "from the cache");
  EXPECT_EQ(ran, 0);
  EXPECT_THAT(seen, HasSubstr("circuit breaker open"));

  // Breaker off: the policy retries PoolTimeout (transient) and gives up.
  auto off = unreachable_server_config("breaker_fallback_off");
  off.breaker_enabled = false;
  off.acquire_timeout = 20ms;
  Pool plain(off);
  RetryPolicy policy;
  policy.max_attempts = 2;
  policy.initial_delay = 1ms;
  int tries = 0;
  policy.on_retry = [&](const std::exception&, int, RetryPolicy::Clock::duration) { ++tries; };
  const Error* last = nullptr;
  bool timeout = false;
  int n = plain.run([](Connection&) { return 1; }, policy, [&](const Error& e) {
    last = &e;
    timeout = dynamic_cast<const PoolTimeout*>(&e) != nullptr;
    return -1;
  });
  EXPECT_EQ(n, -1);
  EXPECT_NE(last, nullptr);
  EXPECT_TRUE(timeout);
  EXPECT_EQ(tries, 1);
}

// ---- against a server of its own, stopped and started (tests/suites/client.sh)

struct Transitions {
  std::mutex mu;
  std::vector<std::string> seen;  // "closed -> open", ...
  EventCallback callback() {
    return [this](const PoolEvent& e) {
      if (e.type != PoolEventType::breaker || !e.transition) return;
      std::lock_guard lk(mu);
      seen.push_back(std::string(to_string(e.transition->from)) + " -> " +
                     std::string(to_string(e.transition->to)));
    };
  }
  bool saw(const std::string& t, std::size_t from = 0) {
    std::lock_guard lk(mu);
    return std::find(seen.begin() + static_cast<std::ptrdiff_t>(std::min(from, seen.size())), seen.end(), t) !=
           seen.end();
  }
  std::size_t size() {
    std::lock_guard lk(mu);
    return seen.size();
  }
};

// While the cluster is stopped the breaker opens and acquire fails with CircuitOpen
// without a connection attempt; after wait_in_open it goes half-open and its probe (a
// real connection attempt) fails, so it opens again; once the cluster is back a probe
// succeeds, it closes, and the pool lends working connections again by itself.
TEST(PoolRestartBreakerTest, OpensWhileTheServerIsDownAndClosesWhenItIsBack) {
  const char* stop_cmd = std::getenv("USHER_TEST_SERVER_STOP");
  const char* start_cmd = std::getenv("USHER_TEST_SERVER_START");
  if (!stop_cmd || !start_cmd)
    GTEST_SKIP() << "USHER_TEST_SERVER_STOP/START not set (tests/suites/client.sh sets them)";

  auto c = test_config("restart_breaker");
  c.min_idle = 1;
  c.max_size = 2;
  c.validate_after_idle = 0ms;  // every borrow validates: a stopped server is seen at once
  c.acquire_timeout = 300ms;
  c.breaker.window_size = 4;
  c.breaker.minimum_calls = 2;
  c.breaker.wait_in_open = 2s;
  c.breaker.permitted_calls_in_half_open = 1;
  Transitions transitions;
  c.on_event = transitions.callback();
  Pool pool(c);
  EXPECT_EQ(pool.acquire()->exec("SELECT 1").scalar<int>(), 1);
  EXPECT_EQ(pool.breaker().state(), BreakerState::closed);

  ASSERT_EQ(std::system(stop_cmd), 0);
  // The next borrows find the connection dead; the opener's attempts fail: it opens.
  ASSERT_TRUE(eventually([&] {
    try {
      pool.acquire()->exec("SELECT 1");
    } catch (const Error&) {
    }
    return transitions.saw("closed -> open");
  }));

  // Within one open period (the same number of openings before and after, still open),
  // acquire throws CircuitOpen and no connection is attempted. The period lasts 2 s; if
  // the machine stalled that long, measure again in the next one.
  bool measured = false;
  for (int i = 0; i < 10 && !measured; ++i) {
    ASSERT_TRUE(eventually([&] { return pool.breaker().state() == BreakerState::open; }));
    auto before = pool.stats();
    auto start = Pool::Clock::now();
    std::optional<std::string> error;
    try {
      pool.acquire();
    } catch (const CircuitOpen& e) {
      error = e.what();
    } catch (const Error& e) {
      error = std::string("other: ") + e.what();
    }
    double took = ms_since(start);
    auto after = pool.stats();
    if (after.breaker.opened_total != before.breaker.opened_total ||
        after.breaker.state != BreakerState::open || before.breaker.state != BreakerState::open)
      continue;  // the period ended meanwhile
    measured = true;
    ASSERT_TRUE(error.has_value());
    EXPECT_THAT(*error, HasSubstr("circuit breaker open, no connection attempted"));
    EXPECT_EQ(after.connect_failures, before.connect_failures);
    EXPECT_EQ(after.validation_failures, before.validation_failures);
    std::printf("acquire() with the server down and the breaker open: CircuitOpen after %.3f ms\n", took);
  }
  EXPECT_TRUE(measured);

  // Half-open after the wait; the probe is a real connection attempt, which fails.
  std::size_t mark = transitions.size();
  auto failures = pool.stats().connect_failures;
  ASSERT_TRUE(eventually([&] { return transitions.saw("half_open -> open", mark); }));
  EXPECT_TRUE(transitions.saw("open -> half_open", mark));
  EXPECT_GT(pool.stats().connect_failures, failures);

  ASSERT_EQ(std::system(start_cmd), 0);
  ASSERT_TRUE(eventually([&] { return transitions.saw("half_open -> closed"); }));
  EXPECT_EQ(pool.breaker().state(), BreakerState::closed);
  EXPECT_EQ(pool.acquire()->exec("SELECT 2").scalar<int>(), 2);
  auto s = pool.stats();
  EXPECT_GE(s.breaker.opened_total, 2u);
  EXPECT_GE(s.breaker.half_opened_total, 2u);
  EXPECT_EQ(s.breaker.closed_total, 1u);
  EXPECT_GT(s.circuit_open, 0u);
  EXPECT_TRUE(pool.close(1s).clean());
}

}  // namespace
}  // namespace usher::test
