// Validation before lending: it keeps its own timeout (a borrower's tiny deadline never
// costs a healthy connection), and after one connection turns out broken every
// connection not proven alive since is validated before it is lent, in whatever order
// the leases come back.
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace usher::test {
namespace {

// Every borrow validates (validate_after_idle 0), with five idle connections ready.
std::unique_ptr<Pool> validating_pool(const std::string& name, std::chrono::milliseconds acquire_timeout) {
  auto c = test_config(name);
  c.min_idle = c.max_size = 5;
  c.validate_after_idle = 0ms;
  c.acquire_timeout = acquire_timeout;
  auto pool = std::make_unique<Pool>(c);
  EXPECT_TRUE(wait_idle(*pool, 5));
  return pool;
}

TEST(PoolValidationTest, ZeroAcquireTimeoutLendsHealthyIdleConnections) {
  auto pool = validating_pool("valid-zero", 0ms);
  std::vector<Lease> leases;
  for (int i = 0; i < 5; ++i) {
    leases.push_back(pool->acquire());  // each validated by a round trip past the deadline
    EXPECT_EQ(leases.back()->exec("SELECT 1").scalar<int>(), 1);
  }
  auto s = pool->stats();
  EXPECT_EQ(s.validation_failures, 0u);
  EXPECT_EQ(s.destroyed, 0u);
  EXPECT_EQ(s.validations, 5u);
}

TEST(PoolValidationTest, DeadlineMicrosecondsAwayLendsHealthyIdleConnections) {
  auto pool = validating_pool("valid-50us", 5s);
  std::vector<Lease> leases;
  for (int i = 0; i < 5; ++i) {
    leases.push_back(pool->acquire(Pool::Clock::now() + std::chrono::microseconds(50)));
    EXPECT_EQ(leases.back()->exec("SELECT 1").scalar<int>(), 1);
  }
  auto s = pool->stats();
  EXPECT_EQ(s.validation_failures, 0u);
  EXPECT_EQ(s.destroyed, 0u);
}

// Leases a and b; both backends are killed; b's borrower sees the error. Whichever of
// the two comes back first, a (whose borrower saw nothing) must be validated before it
// is lent again: no borrower gets a dead connection.
void lease_two_kill_both(bool b_returns_first) {
  auto c = test_config(b_returns_first ? "valid-kill-ba" : "valid-kill-ab");
  c.min_idle = c.max_size = 2;
  c.validate_after_idle = 1h;  // only a broken connection can make the pool validate
  Pool pool(c);
  ASSERT_TRUE(wait_idle(pool, 2));
  Admin admin;
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    admin.terminate(a->backend_pid());
    admin.terminate(b->backend_pid());
    EXPECT_THROW(b->exec("SELECT 1"), ConnectionError);
    if (b_returns_first) {
      b.release();
      a.release();
    } else {
      a.release();
      b.release();
    }
  }
  auto x = pool.acquire();
  auto y = pool.acquire();
  EXPECT_EQ(x->exec("SELECT 1").scalar<int>(), 1);
  EXPECT_EQ(y->exec("SELECT 2").scalar<int>(), 2);
  EXPECT_EQ(pool.stats().validation_failures, 1u);  // a's, found before lending
}

TEST(PoolValidationTest, ConnectionReturnedAfterABrokenOneIsValidated) { lease_two_kill_both(true); }
TEST(PoolValidationTest, ConnectionReturnedBeforeABrokenOneIsValidated) { lease_two_kill_both(false); }

}  // namespace
}  // namespace usher::test
