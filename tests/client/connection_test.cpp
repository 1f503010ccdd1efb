// usher::Connection against the real server: parameters, typed results, the error
// hierarchy by SQLSTATE, notices, cancel.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

using ConnectionTest = ConnectionFixture;

TEST_F(ConnectionTest, ParametersRoundTrip) {
  auto r = conn.exec("SELECT $1::int, $2::bigint, $3::float8, $4::bool, $5::text, $6::text, $7::smallint",
                     42, std::int64_t{1} << 40, 2.5, true, std::string("héllo"), "literal", short{-7});
  ASSERT_EQ(r.rows(), 1u);
  EXPECT_EQ(r.get<int>(0, 0), 42);
  EXPECT_EQ(r.get<std::int64_t>(0, 1), std::int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(r.get<double>(0, 2), 2.5);
  EXPECT_TRUE(r.get<bool>(0, 3));
  EXPECT_EQ(r.get<std::string>(0, 4), "héllo");
  EXPECT_EQ(r.get<std::string>(0, 5), "literal");
  EXPECT_EQ(r.get<short>(0, 6), -7);
}

TEST_F(ConnectionTest, FloatsKeepEveryDigitAndSpecialValues) {
  double third = 1.0 / 3.0;
  auto r = conn.exec("SELECT $1::float8, $2::float8, $3::float8", third,
                     std::numeric_limits<double>::infinity(), std::nan(""));
  EXPECT_EQ(r.get<double>(0, 0), third);
  EXPECT_TRUE(std::isinf(r.get<double>(0, 1)));
  EXPECT_TRUE(std::isnan(r.get<double>(0, 2)));
}

TEST_F(ConnectionTest, NullsTravelAsOptional) {
  std::optional<int> none, some = 5;
  auto r = conn.exec("SELECT $1::int AS a, $2::int AS b", none, some);
  EXPECT_TRUE(r.is_null(0, 0));
  EXPECT_EQ(r.get<std::optional<int>>(0, "a"), std::nullopt);
  EXPECT_EQ(r.get<std::optional<int>>(0, "b"), 5);
  EXPECT_THROW(r.get<int>(0, "a"), NullValue);
  try {
    r.get<int>(0, "a");
  } catch (const NullValue& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"a\""));
  }
}

TEST_F(ConnectionTest, ValuesAreNeverPastedIntoSql) {
  std::string evil = "x'); DROP TABLE pg_class; --";
  auto r = conn.exec("SELECT $1::text = $2::text, length($1::text)", evil, evil);
  EXPECT_TRUE(r.get<bool>(0, 0));
  EXPECT_EQ(r.get<std::size_t>(0, 1), evil.size());
}

TEST_F(ConnectionTest, TypeMismatchAndBadIndexesAreClear) {
  auto r = conn.exec("SELECT 'abc'::text AS word, 300 AS big");
  EXPECT_THROW(r.get<int>(0, "word"), TypeMismatch);
  EXPECT_THROW(r.get<bool>(0, "word"), TypeMismatch);
  EXPECT_THROW(r.get<std::int8_t>(0, "big"), TypeMismatch);  // does not fit
  try {
    r.get<int>(0, "word");
  } catch (const TypeMismatch& e) {
    EXPECT_THAT(e.what(), HasSubstr("word"));
    EXPECT_THAT(e.what(), HasSubstr("abc"));
  }
  EXPECT_THROW(r.get<int>(1, 0), std::out_of_range);
  EXPECT_THROW(r.get<int>(0, 2), std::out_of_range);
  EXPECT_THROW(r.get<int>(0, "nope"), std::out_of_range);
  EXPECT_EQ(r.column_name(1), "big");
  EXPECT_EQ(r.column_type(1), type_oids::int4);
}

TEST_F(ConnectionTest, AffectedRowsAndEmptyResults) {
  conn.exec("CREATE TEMP TABLE t (id int PRIMARY KEY)");
  EXPECT_EQ(conn.exec("INSERT INTO t SELECT generate_series(1, $1::int)", 3).affected_rows(), 3u);
  auto r = conn.exec("SELECT id FROM t WHERE id > $1", 10);
  EXPECT_TRUE(r.empty());
  EXPECT_THROW(r.scalar<int>(), std::out_of_range);
}

// Raises an error with the given SQLSTATE on the server (through a temporary function,
// so that the code travels as a parameter like every other value).
void raise(Connection& c, const std::string& sqlstate) {
  c.exec("CREATE OR REPLACE FUNCTION pg_temp.raise_state(code text) RETURNS void"
         " LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'raised' USING ERRCODE = code; END $$");
  c.exec("SELECT pg_temp.raise_state($1)", sqlstate);
}

TEST_F(ConnectionTest, ErrorsAreTypedBySqlstate) {
  EXPECT_THROW(raise(conn, "40001"), TransientError);
  EXPECT_THROW(raise(conn, "40P01"), TransientError);
  EXPECT_THROW(raise(conn, "55P03"), TransientError);
  EXPECT_THROW(raise(conn, "53300"), TransientError);
  EXPECT_THROW(raise(conn, "23505"), ConstraintViolation);
  EXPECT_THROW(raise(conn, "42501"), PermissionDenied);
  EXPECT_THROW(raise(conn, "57014"), QueryCanceled);
  EXPECT_THROW(raise(conn, "22012"), DatabaseError);
  try {
    raise(conn, "40001");
  } catch (const Error& e) {
    EXPECT_EQ(e.sqlstate(), "40001");
    EXPECT_TRUE(e.is_transient());
    EXPECT_THAT(e.what(), HasSubstr("raised"));
  }
  try {
    conn.exec("SELECT 1 / $1::int", 0);
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.sqlstate(), "22012");
    EXPECT_FALSE(e.is_transient());
  }
}

TEST_F(ConnectionTest, RealConstraintViolation) {
  conn.exec("CREATE TEMP TABLE u (id int PRIMARY KEY)");
  conn.exec("INSERT INTO u VALUES ($1)", 1);
  try {
    conn.exec("INSERT INTO u VALUES ($1)", 1);
    FAIL();
  } catch (const ConstraintViolation& e) {
    EXPECT_EQ(e.sqlstate(), "23505");
  }
}

TEST_F(ConnectionTest, StatementTimeoutIsQueryCanceled) {
  conn.exec("SET statement_timeout = 50");
  EXPECT_THROW(conn.exec("SELECT pg_sleep(5)"), QueryCanceled);
}

TEST_F(ConnectionTest, LostConnectionIsConnectionError) {
  try {
    conn.exec("SELECT pg_terminate_backend(pg_backend_pid())");
    FAIL();
  } catch (const ConnectionError& e) {
    EXPECT_TRUE(e.is_transient());
  }
  EXPECT_FALSE(conn.is_open());
  EXPECT_THROW(conn.exec("SELECT 1"), ConnectionError);
}

TEST_F(ConnectionTest, NoticesReachTheHandler) {
  std::vector<std::string> notices;
  conn.set_notice_handler([&](std::string_view m) { notices.emplace_back(m); });
  conn.exec("DO $$ BEGIN RAISE NOTICE 'hello %', 42; END $$");
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0], "hello 42");
}

TEST_F(ConnectionTest, CancelFromAnotherThread) {
  int pid = conn.backend_pid();
  Admin admin;
  std::atomic<bool> done{false};
  std::thread canceller([&] {
    // Cancel only once the statement runs: a cancel that arrives first is ignored.
    eventually([&] {
      return done || admin.conn()
                         .exec("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int"
                               " AND wait_event = 'PgSleep'", pid)
                         .scalar<long>() == 1;
    });
    EXPECT_TRUE(conn.cancel());
  });
  EXPECT_THROW(conn.exec("SELECT pg_sleep(60)"), QueryCanceled);
  done = true;
  canceller.join();
  EXPECT_EQ(conn.exec("SELECT 1").scalar<int>(), 1);  // still usable
}

TEST_F(ConnectionTest, StatusAndNativeHandle) {
  EXPECT_TRUE(conn.is_open());
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::idle);
  conn.exec("BEGIN");
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::in_transaction);
  EXPECT_THROW(conn.exec("SELECT nosuchcolumn"), DatabaseError);
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::in_error);
  conn.exec("ROLLBACK");
  EXPECT_EQ(PQbackendPID(conn.native()), conn.backend_pid());
  Connection moved = std::move(conn);
  EXPECT_TRUE(moved.is_open());
  EXPECT_FALSE(conn.is_open());  // NOLINT(bugprone-use-after-move): moved-from is empty
}

}  // namespace
}  // namespace usher::test
