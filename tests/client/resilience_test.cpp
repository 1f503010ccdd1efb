// RetryPolicy and CircuitBreaker without a server: an injected clock, sleep and random
// source make every backoff bound and every breaker transition happen on demand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "usher/usher.hpp"

namespace usher::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// A clock that moves only when told to.
struct ManualClock {
  Clock::time_point t = Clock::time_point(std::chrono::hours(1000));
  std::function<Clock::time_point()> fn() {
    return [this] { return t; };
  }
  void advance(Clock::duration d) { t += d; }
};

// ---- RetryPolicy

RetryPolicy manual_policy(ManualClock& clock, std::vector<Clock::duration>& sleeps) {
  RetryPolicy p;
  p.now = clock.fn();
  p.sleep = [&clock, &sleeps](Clock::duration d) {
    sleeps.push_back(d);
    clock.advance(d);
  };
  return p;
}

TEST(RetryPolicyTest, CapGrowsByTheMultiplierUpToMaxDelay) {
  RetryPolicy p;
  p.initial_delay = 10ms;
  p.multiplier = 3;
  p.max_delay = 500ms;
  std::vector<Clock::duration> expected = {10ms, 30ms, 90ms, 270ms, 500ms, 500ms};
  for (int n = 1; n <= 6; ++n) EXPECT_EQ(p.delay_cap(n), expected[n - 1]) << "retry " << n;
  EXPECT_EQ(p.delay_cap(10000), 500ms);  // no overflow on the way to the cap
  p.jitter = false;
  EXPECT_EQ(p.delay(3, 0.0), 90ms);
}

// Full jitter: every sleep lies in [0, min(max_delay, initial * multiplier^(n-1))], the
// extremes of the random source included, and the real generator too.
TEST(RetryPolicyTest, FullJitterStaysWithinZeroAndTheCap) {
  RetryPolicy p;
  p.initial_delay = 7ms;
  p.multiplier = 2.5;
  p.max_delay = 300ms;
  for (int n = 1; n <= 12; ++n) {
    double cap_ms = std::min(300.0, 7.0 * std::pow(2.5, n - 1));
    auto cap = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(cap_ms));
    for (double u : {0.0, 1e-9, 0.25, 0.5, 0.999999999}) {
      auto d = p.delay(n, u);
      EXPECT_GE(d, Clock::duration::zero());
      EXPECT_LE(d, cap) << "retry " << n << " u " << u;
    }
    EXPECT_EQ(p.delay(n, 0.0), Clock::duration::zero());
  }

  // Through retry() with the default random source: 200 attempts that all fail.
  ManualClock clock;
  std::vector<Clock::duration> sleeps;
  auto q = manual_policy(clock, sleeps);
  q.initial_delay = 1ms;
  q.multiplier = 2;
  q.max_delay = 64ms;
  q.max_attempts = 200;
  int attempts = 0;
  EXPECT_THROW(retry(q, [&] {
                 ++attempts;
                 throw ConnectionError("down");
               }),
               ConnectionError);
  EXPECT_EQ(attempts, 200);
  ASSERT_EQ(sleeps.size(), 199u);
  bool some_below_cap = false;
  for (std::size_t i = 0; i < sleeps.size(); ++i) {
    auto cap = q.delay_cap(static_cast<int>(i) + 1);
    EXPECT_GE(sleeps[i], Clock::duration::zero());
    EXPECT_LE(sleeps[i], cap);
    some_below_cap = some_below_cap || sleeps[i] < cap;
  }
  EXPECT_TRUE(some_below_cap);  // it is jittered, not the cap every time
}

TEST(RetryPolicyTest, MaxElapsedStopsBeforeASleepThatWouldEndPastIt) {
  ManualClock clock;
  std::vector<Clock::duration> sleeps;
  auto p = manual_policy(clock, sleeps);
  p.max_attempts = 100;
  p.jitter = false;
  p.initial_delay = 40ms;
  p.multiplier = 2;
  p.max_delay = 1s;
  p.max_elapsed = 100ms;
  int attempts = 0;
  // Attempt 1 fails at 0 (sleep 40 ends at 40), attempt 2 at 45 (sleep 80 would end at
  // 125 > 100): two attempts, not a hundred.
  EXPECT_THROW(retry(p,
                     [&] {
                       ++attempts;
                       clock.advance(5ms * (attempts - 1));
                       throw ConnectionError("down");
                     }),
               ConnectionError);
  EXPECT_EQ(attempts, 2);
  EXPECT_EQ(sleeps, std::vector<Clock::duration>{40ms});
}

TEST(RetryPolicyTest, RetriesTransientErrorsUntilSuccessAndReportsEachRetry) {
  ManualClock clock;
  std::vector<Clock::duration> sleeps;
  auto p = manual_policy(clock, sleeps);
  p.max_attempts = 5;
  p.random = [] { return 0.5; };
  p.initial_delay = 10ms;
  std::vector<int> reported;
  p.on_retry = [&](const std::exception&, int attempt, Clock::duration) { reported.push_back(attempt); };
  int result = retry(p, [&](int attempt) {
    if (attempt == 1) throw TransientError("could not serialize access", "40001");
    if (attempt == 2) throw PoolTimeout("no connection");
    return attempt * 10;
  });
  EXPECT_EQ(result, 30);
  EXPECT_EQ(reported, (std::vector<int>{1, 2}));
  EXPECT_EQ(sleeps, (std::vector<Clock::duration>{5ms, 10ms}));  // half of 10, half of 20
}

TEST(RetryPolicyTest, DoesNotRetryWhatThePredicateRejects) {
  ManualClock clock;
  std::vector<Clock::duration> sleeps;
  auto p = manual_policy(clock, sleeps);
  int attempts = 0;
  EXPECT_THROW(retry(p,
                     [&] {
                       ++attempts;
                       throw ConstraintViolation("duplicate key", "23505");
                     }),
               ConstraintViolation);
  EXPECT_THROW(retry(p, [&] { ++attempts; throw std::logic_error("bug"); }), std::logic_error);
  EXPECT_THROW(retry(p, [&] { ++attempts; throw CircuitOpen("open"); }), CircuitOpen);
  EXPECT_THROW(retry(p, [&] { ++attempts; throw 42; }), int);
  EXPECT_EQ(attempts, 4);
  EXPECT_TRUE(sleeps.empty());

  p.retry_on = [](const std::exception& e) { return dynamic_cast<const std::logic_error*>(&e); };
  attempts = 0;
  EXPECT_THROW(retry(p, [&] { ++attempts; throw std::logic_error("again"); }), std::logic_error);
  EXPECT_EQ(attempts, 3);
}

// check(value) must throw std::invalid_argument whose message contains `needle`.
template <class T, class Check>
void expect_invalid(const T& value, Check check, const std::string& needle) {
  try {
    check(value);
    ADD_FAILURE() << "accepted: " << needle;
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr(needle));
  }
}

TEST(RetryPolicyTest, ValidateNamesTheBadValue) {
  auto expect_bad = [](const RetryPolicy& p, const std::string& needle) {
    expect_invalid(p, [](const RetryPolicy& q) { q.validate(); }, needle);
  };
  RetryPolicy p;
  p.max_attempts = 0;
  expect_bad(p, "RetryPolicy.max_attempts: must be at least 1 (got 0)");
  p = {};
  p.multiplier = 0.5;
  expect_bad(p, "RetryPolicy.multiplier: must be a finite number of at least 1 (got 0.5)");
  p = {};
  p.max_delay = 1ms;
  expect_bad(p, "RetryPolicy.max_delay: must not be below initial_delay (50 ms) (got 1 ms)");
  p = {};
  p.max_elapsed = -1ms;
  expect_bad(p, "RetryPolicy.max_elapsed: must not be negative (got -1 ms)");
  p = {};
  p.initial_delay = -3ms;
  expect_bad(p, "RetryPolicy.initial_delay: must not be negative (got -3 ms)");
}

// ---- CircuitBreaker

struct CircuitBreakerTest : ::testing::Test {
  ManualClock clock;
  std::vector<BreakerTransition> transitions;
  CircuitBreakerConfig config() {
    CircuitBreakerConfig c;
    c.window_size = 4;
    c.minimum_calls = 4;
    c.failure_rate_threshold = 50;
    c.slow_call_rate_threshold = 50;
    c.slow_call_duration = 100ms;
    c.wait_in_open = 1s;
    c.permitted_calls_in_half_open = 2;
    c.max_wait_in_half_open = 5s;
    return c;
  }
  std::unique_ptr<CircuitBreaker> make(CircuitBreakerConfig c) {
    return std::make_unique<CircuitBreaker>(
        c, [this](const BreakerTransition& t) { transitions.push_back(t); }, clock.fn());
  }
  std::unique_ptr<CircuitBreaker> opened() {
    auto b = make(config());
    for (int i = 0; i < 4; ++i) b->on_failure(1ms);
    EXPECT_EQ(b->state(), BreakerState::open);
    transitions.clear();
    return b;
  }
  std::unique_ptr<CircuitBreaker> half_opened() {
    auto b = opened();
    clock.advance(1s);
    EXPECT_EQ(b->state(), BreakerState::half_open);
    transitions.clear();
    return b;
  }
  void expect_transition(std::size_t i, BreakerState from, BreakerState to, const std::string& reason) {
    ASSERT_GT(transitions.size(), i);
    EXPECT_EQ(transitions[i].from, from);
    EXPECT_EQ(transitions[i].to, to);
    EXPECT_THAT(transitions[i].reason, HasSubstr(reason));
  }
};

TEST_F(CircuitBreakerTest, ClosedToOpenByFailureRateOverASlidingCountWindow) {
  auto b = make(config());
  b->on_failure(1ms);
  b->on_failure(1ms);
  b->on_failure(1ms);  // 3 of 3 failed, but fewer than minimum_calls
  EXPECT_EQ(b->state(), BreakerState::closed);
  EXPECT_EQ(b->metrics().failure_rate, -1);
  b->on_success(1ms);  // F F F S: 75 %
  EXPECT_EQ(b->state(), BreakerState::open);
  expect_transition(0, BreakerState::closed, BreakerState::open, "failure rate 75.0% >= 50.0% over 4 calls");

  // The window slides: the oldest outcome leaves it.
  auto c = make(config());
  for (bool failed : {true, false, false, false, true}) failed ? c->on_failure(1ms) : c->on_success(1ms);
  EXPECT_EQ(c->state(), BreakerState::closed);  // S S S F: 25 %
  EXPECT_EQ(c->metrics().failure_rate, 25);
  EXPECT_EQ(c->metrics().buffered_calls, 4u);
  c->on_failure(1ms);  // S S F F: 50 %
  EXPECT_EQ(c->state(), BreakerState::open);
  EXPECT_EQ(c->metrics().opened_total, 1u);
}

TEST_F(CircuitBreakerTest, ClosedToOpenBySlowCalls) {
  auto b = make(config());
  b->on_success(99ms);
  b->on_success(100ms);  // slow: at slow_call_duration or more
  b->on_success(1ms);
  EXPECT_EQ(b->metrics().slow_calls, 1u);
  b->on_success(250ms);  // 2 slow of 4: 50 %, no failure at all
  EXPECT_EQ(b->state(), BreakerState::open);
  expect_transition(0, BreakerState::closed, BreakerState::open, "slow-call rate 50.0% >= 50.0% over 4 calls");
}

TEST_F(CircuitBreakerTest, ClosedToOpenOverATimeBasedWindow) {
  auto c = config();
  c.window = SlidingWindow::time_based;
  c.window_size = 2;  // seconds
  c.minimum_calls = 2;
  auto b = make(c);
  b->on_failure(1ms);
  clock.advance(3s);  // that failure has left the window
  EXPECT_EQ(b->metrics().buffered_calls, 0u);
  b->on_failure(1ms);
  EXPECT_EQ(b->state(), BreakerState::closed);  // one call in the window
  clock.advance(1s);
  b->on_success(1ms);  // F S within two seconds: 50 %
  EXPECT_EQ(b->state(), BreakerState::open);
}

TEST_F(CircuitBreakerTest, OpenRefusesUntilTheWaitThenHalfOpen) {
  auto b = opened();
  EXPECT_FALSE(b->try_acquire());
  EXPECT_THROW(b->call([] { ADD_FAILURE() << "called while open"; }), CircuitOpen);
  clock.advance(999ms);
  EXPECT_FALSE(b->try_acquire());
  EXPECT_EQ(b->metrics().not_permitted_total, 3u);
  clock.advance(1ms);
  EXPECT_TRUE(b->try_acquire());
  EXPECT_EQ(b->state_unchecked(), BreakerState::half_open);
  expect_transition(0, BreakerState::open, BreakerState::half_open, "wait in open (1000 ms) elapsed");
}

TEST_F(CircuitBreakerTest, HalfOpenToClosedWhenTheProbesSucceed) {
  auto b = half_opened();
  EXPECT_TRUE(b->try_acquire());
  EXPECT_TRUE(b->try_acquire());
  EXPECT_FALSE(b->try_acquire());  // permitted_calls_in_half_open = 2
  b->on_success(1ms);
  EXPECT_EQ(b->state(), BreakerState::half_open);
  b->on_success(1ms);
  EXPECT_EQ(b->state(), BreakerState::closed);
  expect_transition(0, BreakerState::half_open, BreakerState::closed, "2 probe calls succeeded");
  auto m = b->metrics();
  EXPECT_EQ(m.buffered_calls, 0u);  // a fresh window
  EXPECT_EQ(m.closed_total, 1u);
  EXPECT_TRUE(b->try_acquire());
}

TEST_F(CircuitBreakerTest, HalfOpenToOpenWhenTheProbesFail) {
  auto b = half_opened();
  ASSERT_TRUE(b->try_acquire());
  ASSERT_TRUE(b->try_acquire());
  b->on_success(1ms);
  b->on_failure(1ms);  // 50 % of the probes
  EXPECT_EQ(b->state(), BreakerState::open);
  expect_transition(0, BreakerState::half_open, BreakerState::open, "probes: failure rate 50.0%");
  EXPECT_FALSE(b->try_acquire());  // a new wait in open
  clock.advance(1s);
  EXPECT_TRUE(b->try_acquire());

  // Slow probes open it too.
  auto s = half_opened();
  s->on_success(150ms);
  s->on_success(150ms);
  EXPECT_EQ(s->state(), BreakerState::open);
  expect_transition(0, BreakerState::half_open, BreakerState::open, "probes: slow-call rate 100.0%");
}

// A probe that never reports (its caller hung, or forgot) cannot keep it half-open: after
// max_wait_in_half_open it opens, and after wait_in_open offers fresh probes.
TEST_F(CircuitBreakerTest, HalfOpenGivesUpAfterMaxWait) {
  auto b = half_opened();
  ASSERT_TRUE(b->try_acquire());
  ASSERT_TRUE(b->try_acquire());
  EXPECT_FALSE(b->try_acquire());
  clock.advance(5s - 1ns);
  EXPECT_EQ(b->state(), BreakerState::half_open);
  clock.advance(1ns);
  EXPECT_EQ(b->state(), BreakerState::open);
  expect_transition(0, BreakerState::half_open, BreakerState::open,
                    "max wait in half-open (5000 ms) elapsed with 0 of 2 probe calls ended");
  clock.advance(1s);
  EXPECT_TRUE(b->try_acquire());  // half-open again, with its permits back
  EXPECT_TRUE(b->try_acquire());
  EXPECT_EQ(b->metrics().half_opened_total, 2u);
}

TEST_F(CircuitBreakerTest, ReleaseGivesAHalfOpenPermitBack) {
  auto b = half_opened();
  ASSERT_TRUE(b->try_acquire());
  ASSERT_TRUE(b->try_acquire());
  EXPECT_FALSE(b->try_acquire());
  b->release();
  EXPECT_TRUE(b->try_acquire());
}

TEST_F(CircuitBreakerTest, CallCountsExceptionsAsFailuresUnlessTold) {
  auto c = config();
  c.minimum_calls = 2;
  c.window_size = 2;
  c.failure_rate_threshold = 100;
  auto b = make(c);
  auto not_failure = [](const std::exception& e) { return !dynamic_cast<const std::logic_error*>(&e); };
  EXPECT_THROW(b->call([]() -> int { throw std::logic_error("caller's bug"); }, not_failure), std::logic_error);
  EXPECT_EQ(b->call([] { return 7; }), 7);
  EXPECT_EQ(b->state(), BreakerState::closed);
  EXPECT_EQ(b->metrics().failed_calls, 0u);
  EXPECT_THROW(b->call([]() -> int { throw ConnectionError("down"); }), ConnectionError);
  EXPECT_THROW(b->call([]() -> int { throw ConnectionError("down"); }), ConnectionError);
  EXPECT_EQ(b->state(), BreakerState::open);
  try {
    b->call([] { return 1; });
    FAIL() << "called while open";
  } catch (const CircuitOpen& e) {
    EXPECT_THAT(e.what(), HasSubstr("circuit breaker is open: calls are refused for another 1000 ms"));
  }
}

TEST_F(CircuitBreakerTest, ResetAndForceOpen) {
  auto b = make(config());
  b->force_open("maintenance");
  EXPECT_FALSE(b->try_acquire());
  expect_transition(0, BreakerState::closed, BreakerState::open, "maintenance");
  b->reset();
  EXPECT_TRUE(b->try_acquire());
  expect_transition(1, BreakerState::open, BreakerState::closed, "reset");
}

TEST(CircuitBreakerConfigTest, ValidateNamesTheBadValue) {
  auto expect_bad = [](const CircuitBreakerConfig& c, const std::string& needle) {
    expect_invalid(c, [](const CircuitBreakerConfig& d) { CircuitBreaker b(d); }, needle);
  };
  CircuitBreakerConfig c;
  c.window_size = 0;
  expect_bad(c, "CircuitBreakerConfig.window_size: must be 1 to 100000 (got 0)");
  c = {};
  c.minimum_calls = 0;
  expect_bad(c, "CircuitBreakerConfig.minimum_calls");
  c = {};
  c.failure_rate_threshold = 0;
  expect_bad(c, "CircuitBreakerConfig.failure_rate_threshold: must be a percentage in (0, 100] (got 0)");
  c = {};
  c.slow_call_rate_threshold = 101;
  expect_bad(c, "CircuitBreakerConfig.slow_call_rate_threshold: must be a percentage in (0, 100] (got 101)");
  c = {};
  c.slow_call_duration = 0ms;
  expect_bad(c, "CircuitBreakerConfig.slow_call_duration: must be greater than 0 (got 0 ms)");
  c = {};
  c.wait_in_open = -5ms;
  expect_bad(c, "CircuitBreakerConfig.wait_in_open: must be greater than 0 (got -5 ms)");
  c = {};
  c.permitted_calls_in_half_open = 0;
  expect_bad(c, "CircuitBreakerConfig.permitted_calls_in_half_open");
  c = {};
  c.max_wait_in_half_open = 0ms;
  expect_bad(c, "CircuitBreakerConfig.max_wait_in_half_open: must be greater than 0 (got 0 ms)");
}

}  // namespace
}  // namespace usher::test
