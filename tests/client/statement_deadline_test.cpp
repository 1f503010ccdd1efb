// Connection::exec(ExecOptions, ...): a statement bounded by a deadline is cancelled
// when it passes and the connection stays usable; with no time for the cancel's
// answer, or when the abort descriptor fires, the connection is closed, never left with
// a statement in an unknown state. pg_sleep(30) is still running at any deadline these
// tests set, whatever the machine's load: the cases do not depend on timing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

class StatementDeadlineTest : public ::testing::Test {
 protected:
  Connection conn = Connection::open("", 10s);
  ExecOptions in(std::chrono::milliseconds ms) { return {Connection::Clock::now() + ms}; }
};

TEST_F(StatementDeadlineTest, AStatementThatFinishesInTimeReturnsItsResult) {
  EXPECT_EQ(conn.exec(in(10s), "SELECT $1::int + 1", 41).scalar<int>(), 42);
  EXPECT_EQ(conn.exec(ExecOptions{}, "SELECT 'no deadline'").scalar<std::string>(), "no deadline");
}

TEST_F(StatementDeadlineTest, PastItsDeadlineTheStatementIsCancelledAndTheConnectionGoesOn) {
  conn.exec("BEGIN");
  try {
    conn.exec(in(100ms), "SELECT pg_sleep(30)");
    FAIL() << "pg_sleep(30) returned before a 100 ms deadline";
  } catch (const QueryCanceled& e) {
    EXPECT_EQ(e.sqlstate(), "57014");
    EXPECT_THAT(e.what(), HasSubstr("cancelled at its deadline"));
  }
  EXPECT_TRUE(conn.is_open());
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::in_error);  // the caller's transaction
  conn.exec("ROLLBACK");
  EXPECT_EQ(conn.exec("SELECT 1").scalar<int>(), 1);
}

TEST_F(StatementDeadlineTest, WithNoTimeForTheCancelTheConnectionIsClosed) {
  ExecOptions o = in(100ms);
  o.cancel_wait = 0ms;
  try {
    conn.exec(o, "SELECT pg_sleep(30)");
    FAIL() << "pg_sleep(30) returned before a 100 ms deadline";
  } catch (const ConnectionError& e) {
    EXPECT_EQ(e.sqlstate(), "08006");
    EXPECT_THAT(e.what(), HasSubstr("still running at its deadline: connection closed"));
    EXPECT_TRUE(e.is_transient());
  }
  EXPECT_FALSE(conn.is_open());
  EXPECT_THROW(conn.exec("SELECT 1"), ConnectionError);  // 08003, not a hang or a crash
}

TEST_F(StatementDeadlineTest, AReadableAbortDescriptorClosesTheConnectionAtOnce) {
  int fd = ::eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  std::uint64_t one = 1;
  ASSERT_EQ(::write(fd, &one, sizeof one), static_cast<ssize_t>(sizeof one));
  ExecOptions o;  // no deadline: only the descriptor ends the wait
  o.abort_fd = fd;
  // Without the descriptor this would return after 30 s, without an exception.
  EXPECT_THROW(conn.exec(o, "SELECT pg_sleep(30)"), ConnectAborted);
  EXPECT_FALSE(conn.is_open());
  ::close(fd);
}

TEST_F(StatementDeadlineTest, ErrorsAndRefusalsAreTheSameAsWithoutADeadline) {
  EXPECT_THROW(conn.exec(in(10s), "SELECT 1/0"), DatabaseError);
  EXPECT_THROW(conn.exec(in(10s), "SELECT $1::text", std::string("a\0b", 3)), InvalidParameter);
  EXPECT_THROW(conn.exec(in(10s), "COPY (SELECT 1) TO STDOUT"), NotSupported);
  EXPECT_EQ(conn.exec(in(10s), "SELECT 2").scalar<int>(), 2);
}

}  // namespace
}  // namespace usher::test
