// usher::Cluster against a real primary and a real streaming standby of their own
// (tests/suites/client.sh starts them: USHER_TEST_PRIMARY_PORT, USHER_TEST_STANDBY_PORT
// on 127.0.0.1, and the commands that stop, start and promote them). Lag is made real
// with pg_wal_replay_pause() on the standby; every wait polls with a bound.
// ClusterFailover* stops the primary and promotes the standby: client.sh runs it last,
// on its own.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

const char* env(const char* name) { return std::getenv(name); }

std::string endpoint(const char* port_var) { return std::string("127.0.0.1:") + env(port_var); }

Connection open_node(const char* port_var) {
  return Connection::open(std::string("host=127.0.0.1 port=") + env(port_var), 10s);
}

void run_command(const char* var) {
  ASSERT_EQ(std::system(env(var)), 0) << env(var);
}

ClusterConfig cluster_config(const std::string& name) {
  ClusterConfig c;
  c.endpoints = {endpoint("USHER_TEST_PRIMARY_PORT"), endpoint("USHER_TEST_STANDBY_PORT")};
  c.pool = test_config(name, {.min_idle = 0, .max_size = 4});
  c.health_interval = 50ms;
  c.health_timeout = 5s;
  return c;
}

// Which node ran it: true on the standby.
bool in_recovery(Connection& c) { return c.exec("SELECT pg_catalog.pg_is_in_recovery()").scalar<bool>(); }

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!env("USHER_TEST_PRIMARY_PORT") || !env("USHER_TEST_STANDBY_PORT"))
      GTEST_SKIP() << "USHER_TEST_PRIMARY_PORT/STANDBY_PORT not set (tests/suites/client.sh sets them)";
    primary = open_node("USHER_TEST_PRIMARY_PORT");
    standby = open_node("USHER_TEST_STANDBY_PORT");
    primary.exec("CREATE TABLE IF NOT EXISTS cluster_t (id bigint PRIMARY KEY, pad text)");
    primary.exec("TRUNCATE cluster_t");
    ASSERT_TRUE(caught_up());
  }
  void TearDown() override {
    if (standby.is_open()) standby.exec("SELECT pg_catalog.pg_wal_replay_resume()");
  }
  // The standby has replayed everything the primary has flushed so far.
  bool caught_up() {
    auto target = primary.exec("SELECT pg_catalog.pg_current_wal_flush_lsn()::text").scalar<std::string>();
    return eventually([&] {
      return standby.exec("SELECT pg_catalog.pg_last_wal_replay_lsn() >= $1::pg_lsn", target).scalar<bool>();
    });
  }
  Connection primary, standby;
};

TEST_F(ClusterTest, FindsTheRolesAndRoutesReadsToTheStandbyWritesToThePrimary) {
  Cluster cluster(cluster_config("cl-roles"));
  auto nodes = cluster.nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].role, NodeRole::primary);
  EXPECT_TRUE(nodes[0].is_primary);
  EXPECT_EQ(nodes[1].role, NodeRole::standby);
  EXPECT_TRUE(nodes[1].healthy);
  EXPECT_FALSE(cluster.write([](Connection& c) { return in_recovery(c); }));
  EXPECT_FALSE(cluster.transaction([](Connection& c) { return in_recovery(c); }));
  EXPECT_EQ(cluster.nodes()[0].writes, 2u);  // the write and the transaction
  cluster.current_token();                   // a read of the primary's position: not a write
  EXPECT_EQ(cluster.nodes()[0].writes, 2u);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(cluster.read([](Connection& c) { return in_recovery(c); }));
  ReadOptions strong;
  strong.consistency = Consistency::primary;
  EXPECT_FALSE(cluster.read([](Connection& c) { return in_recovery(c); }, strong));
  EXPECT_EQ(cluster.nodes()[1].reads, 5u);
}

// 25006 from the node writes go to makes the cluster ask the nodes; when the node is
// still the primary (the caller asked for a read-only transaction) the error is the
// caller's, at once, and the primary stays.
TEST_F(ClusterTest, AReadOnlyTransactionsErrorOnThePrimaryIsTheCallersAndThePrimaryStays) {
  auto config = cluster_config("cl-readonly");
  config.primary_wait = 2s;
  Cluster cluster(config);
  TransactionOptions ro;
  ro.read_only = true;
  int runs = 0;
  EXPECT_THROW(cluster.transaction([&](Connection& c) {
                 ++runs;
                 c.exec("INSERT INTO cluster_t VALUES (1, 'x')");
               }, ro),
               ReadOnlySqlTransaction);
  EXPECT_EQ(runs, 1);  // not run again on "another primary" within primary_wait
  EXPECT_TRUE(cluster.nodes()[0].is_primary);
  EXPECT_FALSE(cluster.write([](Connection& c) { return in_recovery(c); }));
}

TEST_F(ClusterTest, TakesTheNodesFromAMultiHostConninfoWhateverItsOrder) {
  ClusterConfig c = cluster_config("cl-multihost");
  c.endpoints.clear();
  // Standby first, and target_session_attrs that each node's pool must not inherit.
  c.pool.conninfo = std::string("host=127.0.0.1,127.0.0.1 port=") + env("USHER_TEST_STANDBY_PORT") +
                    "," + env("USHER_TEST_PRIMARY_PORT") + " target_session_attrs=read-write";
  Cluster cluster(c);
  auto nodes = cluster.nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].endpoint, endpoint("USHER_TEST_STANDBY_PORT"));
  EXPECT_EQ(nodes[0].role, NodeRole::standby);
  EXPECT_TRUE(nodes[1].is_primary);
  EXPECT_TRUE(cluster.read([](Connection& c) { return in_recovery(c); }));
  EXPECT_FALSE(cluster.write([](Connection& c) { return in_recovery(c); }));
}

TEST_F(ClusterTest, RejectsBadSettingsNamingThem) {
  ClusterConfig c = cluster_config("cl-bad");
  c.endpoints = {"127.0.0.1:99999"};
  EXPECT_THROW({ Cluster x(c); }, std::invalid_argument);
  c = cluster_config("cl-bad");
  c.health_interval = 0ms;
  try {
    Cluster x(c);
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("ClusterConfig.health_interval"), std::string::npos) << e.what();
  }
  EXPECT_EQ(Lsn::parse("16/B374D848").value, 0x16B374D848u);
  EXPECT_EQ(Lsn::parse("16/B374D848").to_string(), "16/B374D848");
  EXPECT_THROW(Lsn::parse("16B374D848"), std::invalid_argument);
}

// Replay paused, then a write: the standby really lags (it does not have the row).
// Reads with a byte bound move to the primary once the lag exceeds it, reads without a
// bound stay on the standby and see the old data, and after resume the bounded reads
// come back to the standby.
TEST_F(ClusterTest, ByteLagMovesBoundedReadsToThePrimaryAndBackAfterResume) {
  Cluster cluster(cluster_config("cl-bytes"));
  ReadOptions bounded;
  bounded.max_lag_bytes = 1024;
  ASSERT_TRUE(eventually([&] { return cluster.read([](Connection& c) { return in_recovery(c); }, bounded); }));

  standby.exec("SELECT pg_catalog.pg_wal_replay_pause()");
  primary.exec("INSERT INTO cluster_t SELECT g, pg_catalog.repeat('x', 1000) FROM generate_series(1, 20) g");
  auto count = [](Connection& c) {
    return std::pair(in_recovery(c), c.exec("SELECT count(*) FROM cluster_t").scalar<long>());
  };
  ASSERT_TRUE(eventually([&] { return !cluster.read(count, bounded).first; }));
  EXPECT_EQ(cluster.read(count, bounded), std::pair(false, 20L));
  EXPECT_EQ(cluster.read(count), std::pair(true, 0L));  // unbounded: the lagging standby
  auto lagging = cluster.nodes()[1];
  ASSERT_TRUE(lagging.lag_bytes);
  EXPECT_GT(*lagging.lag_bytes, 1024u);
  EXPECT_TRUE(lagging.replay_paused);

  // Within 1 kB of the primary is not "has the commit": wait for the rows themselves.
  standby.exec("SELECT pg_catalog.pg_wal_replay_resume()");
  ASSERT_TRUE(eventually([&] { return cluster.read(count, bounded) == std::pair(true, 20L); }));
}

// The same with a time bound: the standby is behind since the first probe that saw the
// primary ahead of it; once that is longer ago than max_lag_time, reads go to the primary.
TEST_F(ClusterTest, TimeLagMovesBoundedReadsToThePrimaryAndBackAfterResume) {
  Cluster cluster(cluster_config("cl-time"));
  ReadOptions bounded;
  bounded.max_lag_time = 300ms;
  ASSERT_TRUE(eventually([&] { return cluster.read([](Connection& c) { return in_recovery(c); }, bounded); }));

  standby.exec("SELECT pg_catalog.pg_wal_replay_pause()");
  primary.exec("INSERT INTO cluster_t VALUES (1, 'one')");
  auto where_and_count = [](Connection& c) {
    return std::pair(in_recovery(c), c.exec("SELECT count(*) FROM cluster_t").scalar<long>());
  };
  ASSERT_TRUE(eventually([&] { return !cluster.read(where_and_count, bounded).first; }));
  EXPECT_EQ(cluster.read(where_and_count, bounded), std::pair(false, 1L));
  auto lagging = cluster.nodes()[1];
  ASSERT_TRUE(lagging.lag_time);
  EXPECT_GT(*lagging.lag_time, 300ms);
  EXPECT_EQ(cluster.read(where_and_count), std::pair(true, 0L));

  standby.exec("SELECT pg_catalog.pg_wal_replay_resume()");
  ASSERT_TRUE(eventually([&] { return cluster.read(where_and_count, bounded) == std::pair(true, 1L); }));
}

// Time lag is not the age of the last replayed transaction (issue 13: "correct when the
// primary is idle"): once the standby has replayed everything and the primary writes
// nothing, reads with a time bound stay on the standby however long ago the last commit
// was -- here until that age is past the bound, which is the state polled for.
TEST_F(ClusterTest, AnIdlePrimarysStandbyIsNotLaggingWhateverTheAgeOfItsLastCommit) {
  Cluster cluster(cluster_config("cl-idle"));
  primary.exec("INSERT INTO cluster_t VALUES (1, 'one')");
  ASSERT_TRUE(caught_up());
  ASSERT_TRUE(eventually([&] {
    return standby.exec("SELECT pg_catalog.clock_timestamp() - pg_catalog.pg_last_xact_replay_timestamp()"
                        " > interval '400 ms'").scalar<bool>();
  }));
  ReadOptions bounded;
  bounded.max_lag_time = 300ms;
  bounded.fallback = ReadFallback::fail;
  auto where_and_count = [](Connection& c) {
    return std::pair(in_recovery(c), c.exec("SELECT count(*) FROM cluster_t").scalar<long>());
  };
  // eventually: a checkpoint or other WAL of the idle primary lags it for a probe or two.
  ASSERT_TRUE(eventually([&] {
    try {
      return cluster.read(where_and_count, bounded) == std::pair(true, 1L);
    } catch (const NoReplica&) {
      return false;
    }
  }));
}

// With replay paused the token cannot be met on the standby: the session's read goes to
// the primary and sees its write, while a read without the token (same cluster) is
// served by the standby and does not. After resume the session reads from the standby.
TEST_F(ClusterTest, ACausalReadNeverMissesItsSessionsWrite) {
  auto config = cluster_config("cl-causal");
  config.read.causal_wait = 20ms;
  Cluster cluster(config);
  standby.exec("SELECT pg_catalog.pg_wal_replay_pause()");
  auto s = cluster.session();
  s.write([](Connection& c) { c.exec("INSERT INTO cluster_t VALUES (7, 'seven')"); });
  EXPECT_TRUE(s.token());
  auto seen = [](Connection& c) {
    return std::pair(in_recovery(c), c.exec("SELECT count(*) FROM cluster_t WHERE id = 7").scalar<long>());
  };
  EXPECT_EQ(s.read(seen), std::pair(false, 1L));
  // Replicas only: NoReplica, saying why each node was passed over.
  ReadOptions replica_only = config.read;
  replica_only.fallback = ReadFallback::fail;
  try {
    s.read(seen, replica_only);
    ADD_FAILURE() << "no NoReplica";
  } catch (const NoReplica& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(endpoint("USHER_TEST_STANDBY_PORT") + ": tried for this read"), std::string::npos) << what;
    EXPECT_NE(what.find(endpoint("USHER_TEST_PRIMARY_PORT") + ": the primary"), std::string::npos) << what;
  }
  EXPECT_EQ(cluster.read(seen), std::pair(true, 0L));  // no token: stale, as expected
  standby.exec("SELECT pg_catalog.pg_wal_replay_resume()");
  ASSERT_TRUE(eventually([&] { return s.read(seen).first; }));
  EXPECT_EQ(s.read(seen), std::pair(true, 1L));
}

// Write then read at once, 1,000 times, with the token: never stale. Prints the share
// the standby served (not asserted: it depends on replay speed).
TEST_F(ClusterTest, ReadYourWritesAThousandTimesWithoutAStaleRead) {
  Cluster cluster(cluster_config("cl-ryw"));
  auto s = cluster.session();
  int stale = 0, on_standby = 0;
  for (int i = 1; i <= 1000; ++i) {
    s.write([&](Connection& c) { c.exec("INSERT INTO cluster_t VALUES ($1, 'x')", i); });
    auto [standby_read, n] = s.read([&](Connection& c) {
      return std::pair(in_recovery(c), c.exec("SELECT count(*) FROM cluster_t WHERE id = $1", i).scalar<long>());
    });
    stale += n != 1;
    on_standby += standby_read;
  }
  EXPECT_EQ(stale, 0);
  std::printf("read-your-writes: 1000 reads, 0 stale expected, %d stale, %d served by the standby\n",
              stale, on_standby);
}

// The standby stops: reads go to the primary and no error reaches the caller; it comes
// back when the standby is started again.
TEST_F(ClusterTest, StandbyStoppedReadsGoToThePrimaryWithoutAnError) {
  if (!env("USHER_TEST_STANDBY_STOP") || !env("USHER_TEST_STANDBY_START"))
    GTEST_SKIP() << "USHER_TEST_STANDBY_STOP/START not set";
  auto config = cluster_config("cl-standby-stop");
  config.pool.min_idle = 2;  // connections to the standby that die with it
  Cluster cluster(config);
  ASSERT_TRUE(wait_idle(cluster.pool(1), 2));
  ASSERT_TRUE(cluster.read([](Connection& c) { return in_recovery(c); }));
  standby.exec("SELECT 1");
  standby = Connection();
  run_command("USHER_TEST_STANDBY_STOP");
  int errors = 0, on_primary = 0;
  for (int i = 0; i < 50; ++i) {
    try {
      on_primary += !cluster.read([](Connection& c) { return in_recovery(c); });
    } catch (const std::exception& e) {
      ++errors;
      ADD_FAILURE() << e.what();
    }
  }
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(on_primary, 50);
  EXPECT_FALSE(cluster.nodes()[1].healthy);
  run_command("USHER_TEST_STANDBY_START");
  standby = open_node("USHER_TEST_STANDBY_PORT");
  ASSERT_TRUE(eventually([&] { return cluster.read([](Connection& c) { return in_recovery(c); }); }));
}

// The health probe: usher.replication_status() in a database with pg_usher, PostgreSQL's
// own functions in one without (postgres here); the same roles and facts either way.
TEST_F(ClusterTest, TheProbeAsksReplicationStatusWhereTheExtensionIsInstalled) {
  if (primary.exec("SELECT count(*) FROM pg_catalog.pg_database WHERE datname = 'cluster_ext'").scalar<long>() == 0)
    primary.exec("CREATE DATABASE cluster_ext");
  {
    auto ext = Connection::open(std::string("host=127.0.0.1 dbname=cluster_ext port=") +
                                env("USHER_TEST_PRIMARY_PORT"), 10s);
    ext.exec("CREATE EXTENSION IF NOT EXISTS pg_usher");
  }
  ASSERT_TRUE(caught_up());
  standby.exec("SELECT pg_catalog.pg_wal_replay_pause()");
  for (bool with_extension : {true, false}) {
    auto cfg = cluster_config(with_extension ? "cl-probe-ext" : "cl-probe-plain");
    if (with_extension) cfg.pool.conninfo = "dbname=cluster_ext";
    Cluster cluster(cfg);
    ASSERT_TRUE(eventually([&] { return cluster.nodes()[1].replay_paused; })) << with_extension;
    auto nodes = cluster.nodes();
    for (const auto& n : nodes) {
      EXPECT_EQ(n.probe_extension, with_extension) << n.endpoint;
      EXPECT_TRUE(n.healthy) << n.endpoint;
    }
    EXPECT_EQ(nodes[0].role, NodeRole::primary);
    EXPECT_TRUE(nodes[0].is_primary);
    EXPECT_EQ(nodes[1].role, NodeRole::standby);
    EXPECT_TRUE(nodes[0].lsn);
    EXPECT_TRUE(nodes[1].lsn);
    EXPECT_FALSE(cluster.write([](Connection& c) { return in_recovery(c); }));
  }
}

// --- The commit outcome when the backend dies at COMMIT (issue 13: a fast shutdown's
// FATAL 57P01 in the same read as COMMIT's answer; an answer that never comes). The
// backend is ended by usher_test.die_at_commit() (tests/extension/commit_death.cpp) right
// after its transaction committed. Whatever happens, the body runs once and the row is
// there once; the call returns, or throws CommitUnknown (never a duplicate key).
class ClusterCommitTest : public ClusterTest {
 protected:
  void SetUp() override {
    ClusterTest::SetUp();
    if (IsSkipped()) return;
    primary.exec("CREATE EXTENSION IF NOT EXISTS pg_usher_test");
    primary.exec("CREATE TABLE IF NOT EXISTS commit_t (id bigint PRIMARY KEY)");
    primary.exec("TRUNCATE commit_t");
  }
  long rows(long id) {
    return primary.exec("SELECT count(*) FROM commit_t WHERE id = $1", id).scalar<long>();
  }
  // The body of every case: counts its runs, inserts `id`, arms the backend's death.
  auto body(long id, const char* how) {
    return [this, id, how](Connection& c) {
      ++runs;
      c.exec("INSERT INTO commit_t VALUES ($1)", id);
      c.exec("SELECT usher_test.die_at_commit($1)", how);
    };
  }
  // The commit could not be resolved (no server to ask): the row may or may not be
  // there, it is never there twice; a resolved one is there.
  void expect_once(long id, bool unknown) {
    EXPECT_EQ(runs, 1) << "the body ran again after its COMMIT was sent";
    if (unknown)
      EXPECT_LE(rows(id), 1);
    else
      EXPECT_EQ(rows(id), 1);
  }
  static TransactionOptions options(std::chrono::milliseconds resolution) {
    TransactionOptions o;
    o.max_attempts = 3;
    o.base_delay = 0ms;
    o.max_delay = 0ms;
    o.commit_resolution_timeout = resolution;
    return o;
  }
  // Primary + standby (or the primary alone), waiting for a primary as a writer that
  // rides through failovers does: every path that runs a transaction again is open.
  ClusterConfig config(const std::string& name, bool with_standby) {
    auto c = cluster_config(name);
    if (!with_standby) c.endpoints.pop_back();
    c.primary_wait = 5s;
    return c;
  }
  int runs = 0;
};

// COMMIT answered "COMMIT", then FATAL 57P01 in the same read: committed, and the call
// says so without asking the server again (the resolution is given no time at all: a
// server shutting down could not answer it).
TEST_F(ClusterCommitTest, PoolAnAnsweredCommitFollowedByAFatalIsASuccess) {
  Pool pool(test_config("cc-pool-after", {.min_idle = 0, .max_size = 2}));
  EXPECT_NO_THROW(pool.transaction(body(1, "after_answer"), options(0ms)));
  expect_once(1, false);
}

// No answer to COMMIT: resolved through pg_xact_status on the same server, never run again.
TEST_F(ClusterCommitTest, PoolALostCommitAnswerIsResolvedNotRunAgain) {
  Pool pool(test_config("cc-pool-before", {.min_idle = 0, .max_size = 2}));
  EXPECT_NO_THROW(pool.transaction(body(2, "before_answer"), options(5s)));
  expect_once(2, false);
}

TEST_F(ClusterCommitTest, PrimaryOnlyAnAnsweredCommitFollowedByAFatalIsASuccess) {
  Cluster cluster(config("cc-primary-after", false));
  EXPECT_NO_THROW(cluster.transaction(body(3, "after_answer"), options(0ms)));
  expect_once(3, false);
}

TEST_F(ClusterCommitTest, PrimaryOnlyALostCommitAnswerIsResolvedNotRunAgain) {
  Cluster cluster(config("cc-primary-before", false));
  EXPECT_NO_THROW(cluster.transaction(body(4, "before_answer"), options(5s)));
  expect_once(4, false);
}

// Primary + standby, and the primary cannot be asked (no time for the resolution there):
// an answered COMMIT is a success; a lost answer is resolved elsewhere or CommitUnknown,
// and the transaction is never run again on any node.
TEST_F(ClusterCommitTest, WithStandbyAnAnsweredCommitFollowedByAFatalIsASuccess) {
  Cluster cluster(config("cc-standby-after", true));
  EXPECT_NO_THROW(cluster.transaction(body(5, "after_answer"), options(0ms)));
  expect_once(5, false);
}

TEST_F(ClusterCommitTest, WithStandbyALostCommitAnswerIsNeverRunAgain) {
  Cluster cluster(config("cc-standby-before", true));
  bool unknown = false;
  try {
    cluster.transaction(body(6, "before_answer"), options(0ms));
  } catch (const CommitUnknown& e) {
    unknown = true;
    EXPECT_NE(e.xid(), 0u);
  }
  expect_once(6, unknown);
}

// The connection lost during COMMIT and the transaction rolled back (FATAL before the
// commit record): the server says so, and with no attempt left the call throws
// CommitRolledBack; the cluster does not run it again on a node it waits for.
TEST_F(ClusterCommitTest, ARolledBackCommitIsNotRunAgainByTheCluster) {
  Cluster cluster(config("cc-rolled-back", true));
  auto o = options(5s);
  o.max_attempts = 1;
  EXPECT_THROW(cluster.transaction(body(7, "before_commit"), o), CommitRolledBack);
  EXPECT_EQ(runs, 1) << "the body ran again after its COMMIT was sent";
  EXPECT_EQ(rows(7), 0);
}

// The primary stops and the standby is promoted by hand under a steady write load:
// writes wait for the new primary (primary_wait), land there, and every acknowledged
// write is present afterwards. Prints the time from the stop to the first write on the
// new primary.
TEST(ClusterFailover, PromotedStandbyTakesTheWritesAndNoAcknowledgedWriteIsLost) {
  for (const char* v : {"USHER_TEST_PRIMARY_PORT", "USHER_TEST_STANDBY_PORT", "USHER_TEST_PRIMARY_STOP",
                        "USHER_TEST_STANDBY_PROMOTE"})
    if (!env(v)) GTEST_SKIP() << v << " not set (tests/suites/client.sh sets it)";
  {
    auto p = open_node("USHER_TEST_PRIMARY_PORT");
    p.exec("CREATE TABLE IF NOT EXISTS cluster_failover (id bigint PRIMARY KEY, node int)");
  }
  auto config = cluster_config("cl-failover");
  config.primary_wait = wait_limit();
  config.pool.acquire_timeout = 2s;
  config.pool.connect_timeout = 2s;
  Cluster cluster(config);

  std::atomic<long> next_id{0};
  std::atomic<bool> stop{false};
  std::atomic<int> read_only{0};
  std::atomic<long> after_promotion{0};
  std::mutex mu;
  std::set<long> acknowledged;
  std::vector<std::string> errors;
  std::atomic<Cluster::Clock::time_point::rep> first_new_write{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&] {
      while (!stop) {
        long id = ++next_id;
        try {
          bool on_standby_port = cluster.transaction([&](Connection& c) {
            c.exec("INSERT INTO cluster_failover VALUES ($1, pg_catalog.inet_server_port())", id);
            return c.exec("SELECT pg_catalog.inet_server_port()").scalar<int>() ==
                   std::atoi(env("USHER_TEST_STANDBY_PORT"));
          });
          std::lock_guard lk(mu);
          acknowledged.insert(id);
          if (on_standby_port) {
            ++after_promotion;
            Cluster::Clock::time_point::rep zero = 0;
            first_new_write.compare_exchange_strong(zero, Cluster::Clock::now().time_since_epoch().count());
          }
        } catch (const ReadOnlySqlTransaction& e) {  // must never reach the caller
          ++read_only;
          std::lock_guard lk(mu);
          errors.push_back(e.what());
        } catch (const CommitUnknown& e) {  // not acknowledged: may or may not be there
          std::lock_guard lk(mu);
          errors.push_back(std::string("commit unknown: ") + e.what());
        } catch (const std::exception& e) {
          std::lock_guard lk(mu);
          errors.push_back(e.what());
        }
      }
    });
  ASSERT_TRUE(eventually([&] { std::lock_guard lk(mu); return acknowledged.size() >= 100; }));
  auto stopped_at = Cluster::Clock::now();
  run_command("USHER_TEST_PRIMARY_STOP");
  run_command("USHER_TEST_STANDBY_PROMOTE");
  bool resumed = eventually([&] { return after_promotion >= 100; });
  stop = true;
  for (auto& w : writers) w.join();
  ASSERT_TRUE(resumed) << "writes did not resume on the promoted standby";
  auto nodes = cluster.nodes();
  EXPECT_TRUE(nodes[1].is_primary);
  EXPECT_EQ(nodes[1].role, NodeRole::primary);
  EXPECT_FALSE(nodes[0].healthy);

  auto promoted = open_node("USHER_TEST_STANDBY_PORT");
  std::set<long> present;
  auto rows = promoted.exec("SELECT id FROM cluster_failover");
  for (std::size_t r = 0; r < rows.rows(); ++r) present.insert(rows.get<long>(r, 0));
  long missing = 0;
  for (long id : acknowledged) missing += !present.contains(id);
  EXPECT_EQ(missing, 0) << "acknowledged writes missing on the new primary";
  EXPECT_EQ(read_only, 0);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      Cluster::Clock::time_point(Cluster::Clock::duration(first_new_write.load())) - stopped_at);
  std::printf("failover by hand: %zu writes acknowledged, %zu failed (%s), first write on the new "
              "primary %lld ms after the stop command (stop + promote included)\n",
              acknowledged.size(), errors.size(), errors.empty() ? "none" : errors.front().c_str(),
              static_cast<long long>(took.count()));
}

}  // namespace
}  // namespace usher::test
