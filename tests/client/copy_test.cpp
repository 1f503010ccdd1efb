// COPY with the client (Connection::copy_from / copy_to, usher/copy.hpp): a million
// rows in and out, values escaped both ways, and every failure in the middle -- a row
// the server refuses, the caller's callback throwing, the connection lost -- reported
// as its typed error with nothing loaded and the connection usable (or closed).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

using CopyTest = ConnectionFixture;

constexpr long million = 1'000'000;

void expect_usable(Connection& conn) {
  EXPECT_TRUE(conn.is_open());
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::idle);
  EXPECT_EQ(conn.exec("SELECT 1").scalar<int>(), 1);
}

TEST_F(CopyTest, AMillionRowsInAndOut) {
  conn.exec("CREATE TEMP TABLE big (id bigint, name text)");
  std::size_t loaded = conn.copy_from("COPY big (id, name) FROM STDIN", [](CopyWriter& w) {
    for (long i = 1; i <= million; ++i) w.row(i, i % 1000 == 0 ? "tab\there" : "n");
  });
  EXPECT_EQ(loaded, static_cast<std::size_t>(million));
  EXPECT_EQ(conn.exec("SELECT count(*) FROM big WHERE name = E'tab\\there'").scalar<long>(), 1000);

  long rows = 0, sum = 0, tabs = 0;
  std::size_t sent = conn.copy_to("COPY big (id, name) TO STDOUT", [&](std::string_view line) {
    auto f = copy_text_fields(line);
    ++rows;
    sum += std::stol(*f.at(0));
    if (*f.at(1) == "tab\there") ++tabs;
  });
  EXPECT_EQ(sent, static_cast<std::size_t>(million));
  EXPECT_EQ(rows, million);
  EXPECT_EQ(sum, million * (million + 1) / 2);
  EXPECT_EQ(tabs, 1000);
  expect_usable(conn);
}

TEST_F(CopyTest, ARowViolatingAConstraintInTheMiddleLoadsNothing) {
  conn.exec("CREATE TEMP TABLE checked (id bigint CHECK (id <> 500000))");
  try {
    conn.copy_from("COPY checked FROM STDIN", [](CopyWriter& w) {
      for (long i = 1; i <= million; ++i) w.row(i);
    });
    FAIL() << "the row violating the CHECK was loaded";
  } catch (const CheckViolation& e) {
    EXPECT_EQ(e.sqlstate(), "23514");
    EXPECT_EQ(e.constraint(), "checked_id_check");
  }
  expect_usable(conn);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM checked").scalar<long>(), 0);
  // Raw data with a field that does not convert: the server's 22P02 at finish().
  auto w = conn.copy_from("COPY checked FROM STDIN");
  w.write("1\n2\nthree\n4\n");
  EXPECT_THROW(w.finish(), InvalidTextRepresentation);
  EXPECT_FALSE(w.active());
  expect_usable(conn);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM checked").scalar<long>(), 0);
}

TEST_F(CopyTest, ValuesAreEscapedAndComeBackAsTheyWere) {
  conn.exec("CREATE TEMP TABLE odd (t text, n int, b bytea)");
  Bytes all;
  for (int b = 0; b < 256; ++b) all.data.push_back(static_cast<char>(b));
  const std::string nasty = "a\tb\nc\\d\re \\N é";
  auto w = conn.copy_from("COPY odd FROM STDIN");
  w.row(nasty, 1, all);
  w.row(std::string(), std::optional<int>{}, std::nullopt);
  w.row("\\N", -2, Bytes{});
  EXPECT_THROW(w.row(std::string("x\0y", 3), 3, Bytes{}), InvalidParameter);  // no half row
  EXPECT_EQ(w.finish(), 3u);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM odd WHERE t = $1 AND b = $2", nasty, all).scalar<long>(), 1);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM odd WHERE t = '' AND n IS NULL AND b IS NULL").scalar<long>(), 1);

  std::vector<std::vector<std::optional<std::string>>> rows;
  auto reader = conn.copy_to("COPY (SELECT t, n FROM odd ORDER BY n NULLS LAST) TO STDOUT");
  while (auto line = reader.next()) rows.push_back(copy_text_fields(*line));
  EXPECT_EQ(reader.rows(), 3u);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::optional<std::string>>{"\\N", "-2"}));
  EXPECT_EQ(rows[1], (std::vector<std::optional<std::string>>{nasty, "1"}));
  EXPECT_EQ(rows[2], (std::vector<std::optional<std::string>>{"", std::nullopt}));
  EXPECT_EQ(copy_text_fields("\\101\\x42\\\\\\v"), (std::vector<std::optional<std::string>>{"AB\\\v"}));
}

TEST_F(CopyTest, ACallbackThrowingAbortsTheCopyAndKeepsTheConnection) {
  conn.exec("CREATE TEMP TABLE t (n int)");
  EXPECT_THROW(conn.copy_from("COPY t FROM STDIN",
                              [](CopyWriter& w) {
                                for (int i = 0; i < 100000; ++i) w.row(i);
                                throw std::runtime_error("source failed");
                              }),
               std::runtime_error);
  expect_usable(conn);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM t").scalar<long>(), 0);

  // COPY TO: the reader's callback throws after one row of 100,000: the COPY is
  // cancelled, the rest dropped, the caller's exception is the one thrown.
  conn.exec("INSERT INTO t SELECT generate_series(1, 100000)");
  long seen = 0;
  try {
    conn.copy_to("COPY t TO STDOUT", [&](std::string_view) {
      ++seen;
      throw std::invalid_argument("consumer failed");
    });
    FAIL() << "the callback's exception was lost";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "consumer failed");
  }
  EXPECT_EQ(seen, 1);
  expect_usable(conn);

  // Inside a transaction: the transaction is the caller's to roll back, as after any
  // failed statement; a writer destroyed unfinished loads nothing.
  conn.exec("BEGIN");
  { auto w = conn.copy_from("COPY t FROM STDIN"); w.row(1); }
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::in_error);
  conn.exec("ROLLBACK");
  EXPECT_EQ(conn.exec("SELECT count(*) FROM t").scalar<long>(), 100000);
}

TEST_F(CopyTest, TheConnectionLostInTheMiddleIsAConnectionErrorAndClosesIt) {
  conn.exec("CREATE TEMP TABLE t (n int)");
  auto w = conn.copy_from("COPY t FROM STDIN");
  for (int i = 0; i < 1000; ++i) w.row(i);
  Admin admin;
  admin.terminate(conn.backend_pid());
  try {
    for (int i = 0; i < 100000; ++i) w.row(i);
    w.finish();
    FAIL() << "the COPY finished on a terminated backend";
  } catch (const ConnectionError& e) {
    EXPECT_FALSE(e.sqlstate().empty());
  }
  EXPECT_FALSE(conn.is_open());
}

TEST_F(CopyTest, AStatementThatIsNotTheRightCopyIsRefusedAndTheConnectionUsable) {
  conn.exec("CREATE TEMP TABLE t (n int)");
  try {
    conn.copy_from("SELECT 1");
    FAIL() << "copy_from ran a SELECT";
  } catch (const NotSupported& e) {
    EXPECT_THAT(e.what(), HasSubstr("copy_from() runs one COPY ... FROM STDIN"));
  }
  EXPECT_THROW(conn.copy_to("COPY t FROM STDIN"), NotSupported);
  EXPECT_THROW(conn.copy_from("COPY t TO STDOUT"), NotSupported);
  EXPECT_THROW(conn.copy_from("COPY missing FROM STDIN"), UndefinedTable);
  expect_usable(conn);
}

TEST(CopyLeaseTest, ThroughALeaseAndBackToThePoolClean) {
  Pool pool(test_config("copy-lease", {.min_idle = 0, .max_size = 1}));
  {
    auto lease = pool.acquire();
    lease->exec("CREATE TEMP TABLE t (n int)");  // temp: the pool's session reset may drop it
    lease->copy_from("COPY t FROM STDIN", [](CopyWriter& w) { for (int i = 0; i < 10; ++i) w.row(i); });
    auto reader = lease->copy_to("COPY (SELECT generate_series(1, 50000)) TO STDOUT");
    EXPECT_EQ(reader.next(), std::optional<std::string_view>("1\n"));
  }  // the reader cancelled, the lease returned
  auto lease = pool.acquire();
  EXPECT_EQ(lease->exec("SELECT 7").scalar<int>(), 7);
  EXPECT_EQ(pool.stats().total, 1u);  // the same connection: it came back clean
}

}  // namespace
}  // namespace usher::test
