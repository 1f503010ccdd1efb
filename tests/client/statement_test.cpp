// Connection::exec's edges: a value is sent whole or refused (never cut at a NUL byte),
// binary data travels as usher::Bytes, and COPY with the client is refused with a
// clear error that leaves the connection (and its transaction) usable.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.hpp"
#include "sent_statements.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

using StatementTest = ConnectionFixture;

TEST_F(StatementTest, TextWithNulIsRefusedNotTruncated) {
  try {
    conn.exec("SELECT $1::bytea", std::string("a\0b", 3));
    FAIL() << "a string with a NUL byte was sent";
  } catch (const InvalidParameter& e) {
    EXPECT_EQ(e.sqlstate(), "22021");
    EXPECT_THAT(e.what(), HasSubstr("parameter $1 holds a NUL byte at offset 1 of 3"));
    EXPECT_THAT(e.what(), HasSubstr("usher::Bytes"));
  }
  EXPECT_THROW(conn.exec("SELECT $1::text, $2::text", "x", std::string_view("\0", 1)), InvalidParameter);
  EXPECT_EQ(conn.exec("SELECT 1").scalar<int>(), 1);  // nothing was sent: still usable
}

// The pool's own statements sent on return (session reset, checkin) are read later by
// the same loop as exec(): results, errors and "nothing pending".
TEST_F(StatementTest, ThePoolsSentStatementsAreReadByTheSameLoop) {
  using detail::SentStatements;
  ASSERT_TRUE(SentStatements::send(conn, "SELECT 42"));
  EXPECT_EQ(SentStatements::read(conn, ExecOptions{}).scalar<int>(), 42);
  EXPECT_EQ(SentStatements::read(conn, ExecOptions{}).rows(), 0);  // nothing was pending
  ASSERT_TRUE(SentStatements::send(conn, "SELECT 1/0"));
  try {
    SentStatements::read(conn, ExecOptions{});
    ADD_FAILURE() << "division by zero was not thrown";
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.sqlstate(), "22012");
  }
  EXPECT_EQ(conn.exec("SELECT 1").scalar<int>(), 1);
}

TEST_F(StatementTest, BytesTravelWholeInBothDirections) {
  Bytes nul{std::string("a\0b", 3)};
  auto r = conn.exec("SELECT $1, octet_length($1)", nul);
  EXPECT_EQ(r.get<int>(0, 1), 3);
  EXPECT_EQ(r.get<Bytes>(0, 0), nul);
  Bytes all;
  for (int b = 0; b < 256; ++b) all.data.push_back(static_cast<char>(b));
  EXPECT_EQ(conn.exec("SELECT $1::bytea", all).scalar<Bytes>(), all);
  EXPECT_EQ(conn.exec("SELECT md5($1)", all).scalar<std::string>(),
            conn.exec("SELECT md5(decode(string_agg(lpad(to_hex(b), 2, '0'), '' ORDER BY b), 'hex'))"
                      " FROM generate_series(0, 255) b").scalar<std::string>());
  EXPECT_EQ(conn.exec("SELECT $1", Bytes{}).scalar<Bytes>(), Bytes{});
  EXPECT_TRUE(conn.exec("SELECT $1::bytea IS NULL", std::optional<Bytes>{}).scalar<bool>());
  conn.exec("SET bytea_output = escape");  // the old text format reads back the same
  EXPECT_EQ(conn.exec("SELECT $1::bytea", all).scalar<Bytes>(), all);
  EXPECT_THROW(conn.exec("SELECT 'not\\bytea'::text").scalar<Bytes>(), TypeMismatch);
}

TEST_F(StatementTest, CopyToStdoutIsRefusedAndTheTransactionGoesOn) {
  conn.exec("BEGIN");
  conn.exec("CREATE TEMP TABLE copied AS SELECT g FROM generate_series(1, 5000) g");
  try {
    conn.exec("COPY copied TO STDOUT");
    FAIL() << "COPY TO STDOUT returned";
  } catch (const NotSupported& e) {
    EXPECT_EQ(e.sqlstate(), "0A000");
    EXPECT_THAT(e.what(), HasSubstr("exec() does not support COPY ... TO STDOUT"));
    EXPECT_THAT(e.what(), HasSubstr("rows it sent were read and dropped"));
  }
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::in_transaction);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM copied").scalar<long>(), 5000);
  conn.exec("COMMIT");
}

TEST_F(StatementTest, CopyFromStdinIsRefusedAndLoadsNothing) {
  conn.exec("CREATE TEMP TABLE loaded (n int)");
  try {
    conn.exec("COPY loaded FROM STDIN");
    FAIL() << "COPY FROM STDIN returned";
  } catch (const NotSupported& e) {
    EXPECT_EQ(e.sqlstate(), "0A000");
    EXPECT_THAT(e.what(), HasSubstr("exec() does not support COPY ... FROM STDIN"));
    EXPECT_THAT(e.what(), HasSubstr("nothing was loaded"));
  }
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::idle);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM loaded").scalar<long>(), 0);
}

}  // namespace
}  // namespace usher::test
