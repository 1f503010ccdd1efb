// With pg_usher's leases (issue 3) installed, the pool records its borrowers on the
// server. These tests skip until usher.checkout(text) exists in the test database;
// they start running by themselves once it does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace usher::test {
namespace {

class PoolExtensionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!admin.has_extension_leases())
      GTEST_SKIP() << "usher.checkout(text) / usher.leases not installed (pg_usher leases, "
                      "issue 3): the pool uses its plain validation instead";
  }
  Admin admin;
};

TEST_F(PoolExtensionTest, DetectsTheExtension) {
  Pool pool(test_config("ext_detect"));
  pool.acquire();
  EXPECT_EQ(pool.extension_detected(), std::optional<bool>(true));
}

TEST_F(PoolExtensionTest, LeakedHolderAppearsInUsherLeases) {
  auto c = test_config("ext_leak");
  c.leak_detection_threshold = 50ms;
  EventRecorder events(c);
  Pool pool(c);
  auto leaked = pool.acquire();
  ASSERT_TRUE(eventually([&] { return events.count(PoolEventType::leak) == 1; }));
  auto leak = pool.leaks().at(0);
  auto r = admin.conn().exec("SELECT holder FROM usher.leases WHERE pid = $1::int", leaked->backend_pid());
  ASSERT_EQ(r.rows(), 1u);
  EXPECT_EQ(r.get<std::string>(0, 0), leak.holder);

  // Returning it checks in (sent on the return path; the server processes it at once).
  int pid = leaked->backend_pid();
  leaked.release();
  EXPECT_TRUE(eventually([&] {
    return admin.conn().exec("SELECT count(*) FROM usher.leases WHERE pid = $1::int", pid).scalar<long>() == 0;
  }));
  // And the connection is fine for the next borrower, who reads the checkin's answer.
  auto next = pool.acquire();
  EXPECT_EQ(next->exec("SELECT 1").scalar<int>(), 1);
}

TEST(PoolNoExtensionTest, FallsBackWhenDisabled) {
  auto c = test_config("ext_disabled");
  c.use_extension = false;
  c.validate_after_idle = 0ms;
  Pool pool(c);
  EXPECT_EQ(pool.acquire()->exec("SELECT 1").scalar<int>(), 1);
  EXPECT_EQ(pool.stats().validations, 1u);
}

TEST(PoolNoExtensionTest, ReportsWhetherTheExtensionIsThere) {
  Admin admin;
  Pool pool(test_config("ext_report"));
  EXPECT_EQ(pool.extension_detected(), std::nullopt);  // no connection yet (min_idle 0)
  pool.acquire();
  bool functions = admin.conn()
                       .exec("SELECT to_regprocedure('usher.checkout(text)') IS NOT NULL"
                             " AND to_regprocedure('usher.checkin()') IS NOT NULL")
                       .scalar<bool>();
  EXPECT_EQ(pool.extension_detected(), std::optional<bool>(functions));
}

}  // namespace
}  // namespace usher::test
