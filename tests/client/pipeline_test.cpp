// Connection::exec_pipeline (usher/pipeline.hpp): a batch in one round trip, one Result
// per statement; a failing statement reported by its index, the ones after it skipped,
// the batch rolled back, and the connection usable (out of pipeline mode) after it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <functional>
#include <stdexcept>
#include <string_view>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

using PipelineTest = ConnectionFixture;

// The Parse messages sent on `conn` while `run` runs (libpq's protocol trace).
int parses_sent(Connection& conn, const std::function<void()>& run) {
  ProtocolTrace trace(conn.native());
  run();
  int n = 0;
  for (std::string_view l : trace.stop())
    if (l.starts_with("F\t") && l.find("\tParse\t") != std::string_view::npos) ++n;
  return n;
}

TEST_F(PipelineTest, EveryStatementsResultInOrder) {
  conn.exec("CREATE TEMP TABLE p (id int PRIMARY KEY, body text)");
  Pipeline batch;
  for (int i = 0; i < 100; ++i) batch.add("INSERT INTO p VALUES ($1, $2)", i, "x");
  std::size_t select = batch.add("SELECT count(*), $1::text FROM p", std::string("tail"));
  std::vector<Result> results = conn.exec_pipeline(batch);
  ASSERT_EQ(results.size(), 101u);
  EXPECT_EQ(results[0].affected_rows(), 1u);
  EXPECT_EQ(results[select].get<long>(0, 0), 100);
  EXPECT_EQ(results[select].get<std::string>(0, 1), "tail");
  EXPECT_EQ(conn.exec("SELECT count(*) FROM p").scalar<long>(), 100);
  EXPECT_TRUE(conn.exec_pipeline(Pipeline{}).empty());
}

TEST_F(PipelineTest, AFailingStatementIsNamedByItsIndexAndTheRestSkipped) {
  conn.exec("CREATE TEMP TABLE p (id int PRIMARY KEY)");
  Pipeline batch;
  batch.add("INSERT INTO p VALUES ($1)", 1);
  batch.add("INSERT INTO p VALUES ($1)", 2);
  batch.add("INSERT INTO p VALUES ($1)", 1);  // duplicate key
  batch.add("INSERT INTO p VALUES ($1)", 3);
  batch.add("SELECT 1");
  try {
    conn.exec_pipeline(batch);
    FAIL() << "the duplicate key was not reported";
  } catch (const PipelineError& e) {
    EXPECT_EQ(e.failed_index(), 2u);
    EXPECT_EQ(e.statements(), 5u);
    EXPECT_EQ(e.skipped(), 2u);
    EXPECT_EQ(e.status(1), PipelineStatus::done);
    EXPECT_EQ(e.status(2), PipelineStatus::failed);
    EXPECT_EQ(e.status(3), PipelineStatus::skipped);
    EXPECT_EQ(e.sqlstate(), "23505");
    EXPECT_EQ(e.constraint(), "p_pkey");
    EXPECT_THAT(e.what(), HasSubstr("statement 2 of the pipeline's 5 failed (2 after it skipped)"));
    EXPECT_EQ(e.results().at(1).affected_rows(), 1u);
    EXPECT_THROW(e.rethrow_cause(), UniqueViolation);
  }
  // One implicit transaction: the statements before the failure are rolled back too.
  EXPECT_EQ(conn.transaction_status(), TransactionStatus::idle);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM p").scalar<long>(), 0);
  // Not left in pipeline mode: plain statements and another pipeline work.
  Pipeline again;
  again.add("INSERT INTO p VALUES ($1)", 1);
  EXPECT_EQ(conn.exec_pipeline(again).at(0).affected_rows(), 1u);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM p").scalar<long>(), 1);
}

// A text repeated by the next statement is parsed once (the unnamed statement): its
// Parse failing is charged to the first statement of the run, and a different text
// after a run is parsed anew.
TEST_F(PipelineTest, RepeatedTextsAreParsedOnceAndTheirErrorsNamedRight) {
  Pipeline bad;
  bad.add("SELECT 1");
  bad.add("SELEC $1::int", 1);
  bad.add("SELEC $1::int", 2);
  try {
    conn.exec_pipeline(bad);
    FAIL() << "the syntax error was not reported";
  } catch (const PipelineError& e) {
    EXPECT_EQ(e.failed_index(), 1u);
    EXPECT_EQ(e.sqlstate(), "42601");
    EXPECT_EQ(e.results().at(0).scalar<int>(), 1);
  }
  Pipeline mixed;
  for (int i = 0; i < 3; ++i) mixed.add("SELECT $1::int", i);
  mixed.add("SELECT $1::text || 'x'", "a");
  for (int i = 3; i < 5; ++i) mixed.add("SELECT $1::int", i);
  std::vector<Result> r;
  // Six statements, three runs of one text: three Parses.
  EXPECT_EQ(parses_sent(conn, [&] { r = conn.exec_pipeline(mixed); }), 3);
  ASSERT_EQ(r.size(), 6u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r[i].scalar<int>(), i);
  EXPECT_EQ(r[3].scalar<std::string>(), "ax");
  EXPECT_EQ(r[4].scalar<int>(), 3);
  EXPECT_EQ(r[5].scalar<int>(), 4);
}

TEST_F(PipelineTest, ARefusedParameterSendsNothing) {
  conn.exec("CREATE TEMP TABLE p (t text)");
  Pipeline batch;
  batch.add("INSERT INTO p VALUES ($1)", "fine");
  batch.add("INSERT INTO p VALUES ($1)", std::string("a\0b", 3));
  EXPECT_THROW(conn.exec_pipeline(batch), InvalidParameter);
  EXPECT_EQ(conn.exec("SELECT count(*) FROM p").scalar<long>(), 0);
}

}  // namespace
}  // namespace usher::test
