// Pool::transaction: commit, rollback on exceptions, retries of serialization failures
// (a real one, from a concurrent serializable transaction) and of a real deadlock between
// two threads, which errors retry, the isolation level sent, per-transaction timeouts and
// max_elapsed, nested transactions (savepoints on the same connection), and a connection
// lost inside the function or during COMMIT (resolved: pool_commit_outcome_test.cpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;

// A table of its own per test, made afresh (the suite runs again under sanitizers), and
// the configuration of a pool of the same name.
PoolConfig fresh_table(Admin& admin, const std::string& name) {
  admin.conn().exec("DROP TABLE IF EXISTS " + name);
  admin.conn().exec("CREATE TABLE " + name + " (k int PRIMARY KEY, v int NOT NULL)");
  return test_config(name);
}


struct Boom {
  int code;
};

TEST(PoolTransactionTest, CommitsAndReturnsWhatTheFunctionReturns) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_commit"));
  int attempts = 0;
  long n = pool.transaction([&](Connection& c) {
    ++attempts;
    c.exec("INSERT INTO txn_commit VALUES ($1, $2)", 1, 10);
    return c.exec("SELECT count(*) FROM txn_commit").scalar<long>();
  });
  EXPECT_EQ(n, 1);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(admin.count_rows("txn_commit"), 1);
  // void functions too; the connection comes back idle, not in a transaction.
  pool.transaction([](Connection& c) { c.exec("INSERT INTO txn_commit VALUES (2, 20)"); });
  EXPECT_EQ(admin.count_rows("txn_commit"), 2);
  EXPECT_EQ(pool.stats().in_use, 0u);
  auto lease = pool.acquire();
  EXPECT_EQ(lease->transaction_status(), TransactionStatus::idle);
}

TEST(PoolTransactionTest, AnExceptionRollsBackAndIsRethrownAsIs) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_rollback"));
  int attempts = 0;
  try {
    pool.transaction([&](Connection& c) {
      ++attempts;
      c.exec("INSERT INTO txn_rollback VALUES (1, 1)");
      throw Boom{42};
    });
    FAIL() << "no exception";
  } catch (const Boom& b) {
    EXPECT_EQ(b.code, 42);
  }
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(admin.count_rows("txn_rollback"), 0);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(PoolTransactionTest, ASerializationFailureIsRetriedOnAFreshAttempt) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_serial"));
  admin.conn().exec("INSERT INTO txn_serial VALUES (1, 0)");
  auto other = Connection::open("", 10s);
  TransactionOptions opts = fast_retries(3);
  opts.isolation = Isolation::serializable;
  std::vector<std::string> failures_seen;
  int final_attempt = pool.transaction(
      [&](Connection& c, int attempt) {
        int v = c.exec("SELECT v FROM txn_serial WHERE k = 1").scalar<int>();  // snapshot
        if (attempt == 1) {
          // A concurrent serializable transaction changes the row and commits first.
          other.exec("BEGIN ISOLATION LEVEL SERIALIZABLE");
          other.exec("UPDATE txn_serial SET v = v + 10 WHERE k = 1");
          other.exec("COMMIT");
        }
        try {
          c.exec("UPDATE txn_serial SET v = $1 WHERE k = 1", v + 1);
        } catch (const TransientError& e) {
          failures_seen.push_back(e.sqlstate());
          throw;
        }
        return attempt;
      },
      opts);
  EXPECT_EQ(final_attempt, 2);
  EXPECT_EQ(failures_seen, std::vector<std::string>{"40001"});
  // Attempt 2 read the other transaction's 10 and added 1: no lost update.
  EXPECT_EQ(admin.conn().exec("SELECT v FROM txn_serial WHERE k = 1").scalar<int>(), 11);
}

// The server raises each SQLSTATE for real; retried ones run max_attempts times.
TEST(PoolTransactionTest, RetriesSerializationDeadlockAndLockErrorsUpToMaxAttempts) {
  Pool pool(test_config("txn_exhaust"));
  struct Case {
    const char* condition;
    const char* sqlstate;
    int expected_attempts;
  };
  for (const Case& k : {Case{"serialization_failure", "40001", 4},
                        Case{"deadlock_detected", "40P01", 4},
                        Case{"lock_not_available", "55P03", 4},
                        Case{"disk_full", "53100", 1}}) {
    SCOPED_TRACE(k.condition);
    int attempts = 0;
    try {
      pool.transaction(
          [&](Connection& c) {
            ++attempts;
            c.exec(std::string("DO $$BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = '") +
                   k.condition + "'; END$$");
          },
          fast_retries(4));
      ADD_FAILURE() << "no exception";
    } catch (const TransientError& e) {
      EXPECT_EQ(e.sqlstate(), k.sqlstate);
    }
    EXPECT_EQ(attempts, k.expected_attempts);
  }
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(PoolTransactionTest, ANonTransientErrorIsNotRetried) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_unique"));
  admin.conn().exec("INSERT INTO txn_unique VALUES (1, 1)");
  int attempts = 0;
  EXPECT_THROW(pool.transaction(
                   [&](Connection& c) {
                     ++attempts;
                     c.exec("INSERT INTO txn_unique VALUES (2, 2)");
                     c.exec("INSERT INTO txn_unique VALUES (1, 1)");
                   },
                   fast_retries(5)),
               ConstraintViolation);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(admin.count_rows("txn_unique"), 1);  // row 2 rolled back
}

TEST(PoolTransactionTest, ACaughtStatementErrorIsNotCommitted) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_swallow"));
  try {
    pool.transaction([](Connection& c) {
      c.exec("INSERT INTO txn_swallow VALUES (1, 1)");
      try {
        c.exec("SELECT 1/0");
      } catch (const DatabaseError&) {
      }
    });
    FAIL() << "no exception";
  } catch (const DatabaseError& e) {
    EXPECT_EQ(e.sqlstate(), "25P02");
  }
  EXPECT_EQ(admin.count_rows("txn_swallow"), 0);
}

TEST(PoolTransactionTest, SetsTheIsolationLevelAndAccessMode) {
  Pool pool(test_config("txn_isolation"));
  auto show = [&](TransactionOptions o) {
    return pool.transaction(
        [](Connection& c) {
          return c.exec("SHOW transaction_isolation").scalar<std::string>() + "/" +
                 c.exec("SHOW transaction_read_only").scalar<std::string>() + "/" +
                 c.exec("SHOW transaction_deferrable").scalar<std::string>();
        },
        o);
  };
  TransactionOptions o;
  EXPECT_EQ(show(o), "read committed/off/off");
  o.isolation = Isolation::repeatable_read;
  EXPECT_EQ(show(o), "repeatable read/off/off");
  o.isolation = Isolation::serializable;
  EXPECT_EQ(show(o), "serializable/off/off");
  o.read_only = true;
  EXPECT_EQ(show(o), "serializable/on/off");
  o.deferrable = true;
  EXPECT_EQ(show(o), "serializable/on/on");
  o.isolation = Isolation::read_committed;
  EXPECT_THROW(show(o), std::invalid_argument);
  o.deferrable = false;
  EXPECT_EQ(show(o), "read committed/on/off");
  o.max_attempts = 0;
  EXPECT_THROW(show(o), std::invalid_argument);
}

TEST(PoolTransactionTest, ABackendKilledInsideTheFunctionIsAConnectionErrorNotRetried) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_killed"));
  int attempts = 0;
  EXPECT_THROW(pool.transaction(
                   [&](Connection& c) {
                     ++attempts;
                     c.exec("INSERT INTO txn_killed VALUES (1, 1)");
                     admin.terminate(c.backend_pid());
                     c.exec("INSERT INTO txn_killed VALUES (2, 2)");
                   },
                   fast_retries(3)),
               ConnectionError);
  EXPECT_EQ(attempts, 1);
  EXPECT_EQ(admin.count_rows("txn_killed"), 0);
  // The broken connection was closed, not lent again: the next transaction works.
  pool.transaction([](Connection& c) { c.exec("INSERT INTO txn_killed VALUES (3, 3)"); });
  EXPECT_EQ(admin.count_rows("txn_killed"), 1);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

TEST(PoolTransactionTest, AConnectionLostDuringCommitIsCommitUnknownNotRetried) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_commit_lost"));
  int attempts = 0;
  try {
    pool.transaction(
        [&](Connection& c) {
          ++attempts;
          c.exec("INSERT INTO txn_commit_lost VALUES (1, 1)");
          admin.terminate(c.backend_pid());  // libpq finds out when COMMIT is sent
        },
        fast_retries(3));
    FAIL() << "no exception";
  } catch (const CommitUnknown& e) {
    EXPECT_FALSE(e.is_transient());
    EXPECT_THAT(e.what(), HasSubstr("outcome unknown"));
  }
  EXPECT_EQ(attempts, 1);
  pool.transaction([](Connection& c) { c.exec("INSERT INTO txn_commit_lost VALUES (2, 2)"); });
  EXPECT_EQ(admin.count_rows("txn_commit_lost"), 1);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// Both pooled connections die while idle: BEGIN meets a dead one, before anything of
// the transaction ran. That is retried on a fresh borrow, even with max_attempts 1.
TEST(PoolTransactionTest, AConnectionLostAtBeginIsRetriedOnAFreshBorrow) {
  Admin admin;
  auto c = fresh_table(admin, "txn_begin_lost");
  c.min_idle = c.max_size = 2;
  c.validate_after_idle = 1h;  // the pool has no reason to check them before lending
  Pool pool(c);
  ASSERT_TRUE(wait_idle(pool, 2));
  for (int pid : admin.backend_pids(c.effective_application_name())) admin.terminate(pid);
  // BEGIN goes with the body's first statement (deferred_begin_test.cpp): that statement
  // finds the connection dead, nothing reached the server, and the body runs again on a
  // fresh borrow, as the same attempt (max_attempts 1 is not used up).
  int runs = 0, lost = 0;
  pool.transaction(
      [&](Connection& conn, int attempt) {
        ++runs;
        EXPECT_EQ(attempt, 1);
        try {
          conn.exec("INSERT INTO txn_begin_lost VALUES (1, 1)");
        } catch (const ConnectionError&) {
          ++lost;
          throw;
        }
      },
      fast_retries(1));
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(lost, 1);
  EXPECT_EQ(admin.count_rows("txn_begin_lost"), 1);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

std::vector<int> keys(Admin& admin, const std::string& table) {
  auto r = admin.conn().exec("SELECT k FROM " + table + " ORDER BY k");
  std::vector<int> out;
  for (std::size_t i = 0; i < r.rows(); ++i) out.push_back(r.get<int>(i, 0));
  return out;
}

// Three savepoints deep: the innermost throws and only its work is rolled back; a
// savepoint failing with a database error is rolled back and the transaction goes on.
// Every level runs on the one connection.
TEST(PoolTransactionTest, NestedSavepointsThreeDeepRollBackOnlyTheInnerWork) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_nested"));
  pool.transaction([&](Transaction& tx) {
    int pid = tx->backend_pid();
    EXPECT_EQ(tx.depth(), 0);
    tx.exec("INSERT INTO txn_nested VALUES (1, 0)");
    tx.savepoint([&](Transaction& t1) {
      EXPECT_EQ(t1.depth(), 1);
      t1.exec("INSERT INTO txn_nested VALUES (2, 1)");
      t1.savepoint([&](Transaction& t2) {
        EXPECT_EQ(t2.depth(), 2);
        t2.exec("INSERT INTO txn_nested VALUES (3, 2)");
        try {
          t2.savepoint([&](Transaction& t3) {
            EXPECT_EQ(t3.depth(), 3);
            EXPECT_EQ(t3->backend_pid(), pid);
            t3.exec("INSERT INTO txn_nested VALUES (4, 3)");
            throw Boom{3};
          });
          ADD_FAILURE() << "no exception";
        } catch (const Boom& b) {
          EXPECT_EQ(b.code, 3);
        }
        t2.exec("INSERT INTO txn_nested VALUES (5, 2)");
      });
    });
    // A statement error inside a savepoint: rolled back to it, the transaction usable.
    EXPECT_THROW(tx.savepoint([](Connection& c) {
                   c.exec("INSERT INTO txn_nested VALUES (6, 1)");
                   c.exec("INSERT INTO txn_nested VALUES (1, 1)");
                 }),
                 ConstraintViolation);
    // A savepoint's value is returned.
    EXPECT_EQ(tx.savepoint([](Connection& c) {
                return c.exec("SELECT count(*) FROM txn_nested").scalar<long>();
              }),
              4);
    tx.exec("INSERT INTO txn_nested VALUES (7, 0)");
  });
  EXPECT_EQ(keys(admin, "txn_nested"), (std::vector<int>{1, 2, 3, 5, 7}));
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// Before savepoints, the nested call borrowed a second connection: in a pool of one it
// waited out acquire_timeout and threw PoolTimeout. Now it is a savepoint of the
// enclosing transaction, on its connection; an exception rolls back only its work.
TEST(PoolTransactionTest, ANestedCallInAPoolOfOneIsASavepointOnTheSameConnection) {
  Admin admin;
  auto config = fresh_table(admin, "txn_nested_one");
  config.max_size = 1;
  config.acquire_timeout = 2s;  // the old behaviour fails with PoolTimeout, not a hang
  Pool pool(config);
  pool.transaction([&](Connection& c) {
    c.exec("INSERT INTO txn_nested_one VALUES (1, 1)");
    int pid = c.backend_pid();
    pool.transaction([&](Connection& inner) {
      EXPECT_EQ(inner.backend_pid(), pid);
      inner.exec("INSERT INTO txn_nested_one VALUES (2, 2)");
    });
    EXPECT_THROW(pool.transaction([&](Connection& inner) {
                   inner.exec("INSERT INTO txn_nested_one VALUES (3, 3)");
                   pool.transaction([&](Connection& innermost) {  // depth 2, committed
                     innermost.exec("INSERT INTO txn_nested_one VALUES (4, 4)");
                   });
                   throw Boom{1};
                 }),
                 Boom);
    // Nested: the enclosing transaction has not committed yet.
    EXPECT_EQ(admin.count_rows("txn_nested_one"), 0);
  });
  EXPECT_EQ(keys(admin, "txn_nested_one"), (std::vector<int>{1, 2}));
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// A serialization failure inside a nested call is not retried there: it propagates,
// and the outermost call runs the whole transaction again.
TEST(PoolTransactionTest, RetriesHappenOnlyAtTheOutermostLevel) {
  Pool pool(test_config("txn_nested_retry"));
  int outer = 0, inner = 0;
  pool.transaction(
      [&](Connection&, int attempt) {
        ++outer;
        pool.transaction(
            [&](Connection& c) {
              ++inner;
              if (attempt == 1)
                c.exec("DO $$BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = "
                       "'serialization_failure'; END$$");
            },
            fast_retries(5));
      },
      fast_retries(3));
  EXPECT_EQ(outer, 2);
  EXPECT_EQ(inner, 2);
  // A nested call cannot ask for more isolation than it runs in; less is fine.
  EXPECT_THROW(pool.transaction([&](Connection&) {
                 TransactionOptions o;
                 o.isolation = Isolation::serializable;
                 pool.transaction([](Connection&) {}, o);
               }),
               std::invalid_argument);
  TransactionOptions serializable;
  serializable.isolation = Isolation::serializable;
  pool.transaction([&](Connection&) { pool.transaction([](Connection&) {}); }, serializable);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// Two threads lock two rows in opposite orders: a real deadlock. The server aborts one
// (40P01); it is run again and both increments land. The victim's second attempt waits
// until the survivor committed (else it may take its first row back before the survivor
// gets it, and deadlock again).
TEST(PoolTransactionTest, ARealDeadlockBetweenTwoThreadsIsRetried) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_deadlock"));
  admin.conn().exec("INSERT INTO txn_deadlock VALUES (1, 0), (2, 0)");
  std::latch first_locks_taken(2);
  std::latch survivor_committed(1);
  std::atomic<int> attempts{0};
  std::vector<std::string> failures;
  std::mutex mu;
  auto worker = [&](int first, int second) {
    int last = pool.transaction(
        [&](Connection& c, int attempt) {
          ++attempts;
          if (attempt > 1) survivor_committed.wait();
          c.exec("SET LOCAL deadlock_timeout = '10ms'");
          c.exec("UPDATE txn_deadlock SET v = v + 1 WHERE k = $1", first);
          if (attempt == 1) first_locks_taken.arrive_and_wait();  // both hold their first row
          try {
            c.exec("UPDATE txn_deadlock SET v = v + 1 WHERE k = $1", second);
          } catch (const TransientError& e) {
            std::lock_guard lk(mu);
            failures.push_back(e.sqlstate());
            throw;
          }
          return attempt;
        },
        fast_retries(3));
    if (last == 1) survivor_committed.count_down();
  };
  std::jthread a(worker, 1, 2), b(worker, 2, 1);
  a.join();
  b.join();
  EXPECT_EQ(failures, std::vector<std::string>{"40P01"});
  EXPECT_EQ(attempts.load(), 3);
  EXPECT_EQ(admin.conn().exec("SELECT string_agg(v::text, ',' ORDER BY k) FROM txn_deadlock")
                .scalar<std::string>(),
            "2,2");
}

// Two SERIALIZABLE pool transactions in two threads each read the whole table, then
// each inserts its count + 1 (write skew). The server fails one of them with a real
// 40001; it is run again, sees the other's row, and the data is what a serial order
// gives: 1 and 2, never 1 and 1.
TEST(PoolTransactionTest, TwoConcurrentSerializableTransactionsOneRetriedWithTheRightData) {
  Admin admin;
  Pool pool(fresh_table(admin, "txn_write_skew"));
  std::latch both_read(2);
  std::atomic<int> attempts{0};
  std::atomic<int> serialization_failures{0};
  TransactionOptions o = fast_retries(3);
  o.isolation = Isolation::serializable;
  auto worker = [&](int k) {
    pool.transaction(
        [&](Connection& c, int attempt) {
          ++attempts;
          try {
            int n = c.exec("SELECT count(*)::int FROM txn_write_skew").scalar<int>();
            if (attempt == 1) both_read.arrive_and_wait();
            c.exec("INSERT INTO txn_write_skew VALUES ($1, $2)", k, n + 1);
          } catch (const TransientError& e) {
            if (e.sqlstate() == "40001") ++serialization_failures;
            throw;
          }
        },
        o);
  };
  std::jthread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  EXPECT_EQ(admin.conn().exec("SELECT string_agg(v::text, ',' ORDER BY v) FROM txn_write_skew")
                .scalar<std::string>(),
            "1,2");
  // One failed (at its INSERT or at COMMIT, where the pool saw it) and ran again.
  EXPECT_EQ(attempts.load(), 3);
  EXPECT_LE(serialization_failures.load(), 1);
}

// statement_timeout and lock_timeout are SET LOCAL: in force inside, gone after. A lock
// held elsewhere makes a real 55P03, which is retried up to max_attempts.
TEST(PoolTransactionTest, StatementAndLockTimeoutsApplyToTheTransactionOnly) {
  Admin admin;
  auto config = fresh_table(admin, "txn_timeouts");
  config.max_size = 1;  // the same connection every time
  Pool pool(config);
  TransactionOptions o = fast_retries(2);
  o.statement_timeout = 1500ms;
  o.lock_timeout = 100ms;
  EXPECT_EQ(pool.transaction([](Connection& c) {
              return c.exec("SHOW statement_timeout").scalar<std::string>() + "/" +
                     c.exec("SHOW lock_timeout").scalar<std::string>();
            }, o),
            "1500ms/100ms");
  TransactionOptions lock_only;
  lock_only.lock_timeout = 20ms;
  EXPECT_EQ(pool.transaction([](Connection& c) {
              return c.exec("SHOW statement_timeout").scalar<std::string>() + "/" +
                     c.exec("SHOW lock_timeout").scalar<std::string>();
            }, lock_only),
            "0/20ms");
  {
    auto lease = pool.acquire();
    EXPECT_EQ(lease->exec("SHOW statement_timeout").scalar<std::string>(), "0");
    EXPECT_EQ(lease->exec("SHOW lock_timeout").scalar<std::string>(), "0");
  }
  admin.conn().exec("BEGIN");
  admin.conn().exec("LOCK TABLE txn_timeouts IN ACCESS EXCLUSIVE MODE");
  int attempts = 0;
  try {
    pool.transaction([&](Connection& c) {
      ++attempts;
      c.exec("SELECT count(*) FROM txn_timeouts");
    }, o);
    ADD_FAILURE() << "no exception";
  } catch (const TransientError& e) {
    EXPECT_EQ(e.sqlstate(), "55P03");
  }
  admin.conn().exec("ROLLBACK");
  EXPECT_EQ(attempts, 2);
  o.lock_timeout = -1ms;
  EXPECT_THROW(pool.transaction([](Connection&) {}, o), std::invalid_argument);
}

// max_elapsed ends the retries even when attempts remain.
TEST(PoolTransactionTest, MaxElapsedBoundsAllAttemptsTogether) {
  auto config = test_config("txn_elapsed");
  config.min_idle = 1;  // borrowing (bounded by max_elapsed too) finds it open
  Pool pool(config);
  ASSERT_TRUE(wait_idle(pool, 1));
  TransactionOptions o = fast_retries(1000000);
  o.max_elapsed = 300ms;
  int attempts = 0;
  try {
    pool.transaction([&](Connection& c) {
      ++attempts;
      c.exec("DO $$BEGIN RAISE EXCEPTION 'provoked' USING ERRCODE = 'serialization_failure'; END$$");
    }, o);
    ADD_FAILURE() << "no exception";
  } catch (const TransientError& e) {
    EXPECT_EQ(e.sqlstate(), "40001");
  }
  EXPECT_GE(attempts, 1);
  EXPECT_LT(attempts, 1000000);
  EXPECT_EQ(pool.stats().in_use, 0u);
}

// An error that only COMMIT reports (a deferred unique constraint) comes back like any
// statement's: its type, the server's fields, one line without "ERROR:".
TEST(PoolTransactionTest, AnErrorAtCommitCarriesTheServersFields) {
  Admin admin;
  admin.conn().exec("DROP TABLE IF EXISTS txn_deferred");
  admin.conn().exec("CREATE TABLE txn_deferred (k int CONSTRAINT txn_deferred_k UNIQUE "
                    "DEFERRABLE INITIALLY DEFERRED)");
  Pool pool(test_config("txn_deferred"));
  try {
    pool.transaction([](Connection& c) { c.exec("INSERT INTO txn_deferred VALUES (1), (1)"); });
    ADD_FAILURE() << "the duplicate was committed";
  } catch (const UniqueViolation& e) {
    EXPECT_EQ(e.constraint(), "txn_deferred_k");
    EXPECT_EQ(e.table(), "txn_deferred");
    EXPECT_EQ(std::string(e.what()).find("ERROR:"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
  }
  EXPECT_EQ(admin.count_rows("txn_deferred"), 0);
}

}  // namespace
}  // namespace usher::test
