// libusher's pool through a real PgBouncer 1.18 in transaction mode (issue 14: "libusher
// works through PgBouncer transaction pooling: no session state relied on"):
// PoolConfig::transaction_pooler (no pg_usher lease, no session reset) with the statement
// cache in its PgBouncer setting (StatementCaching::unnamed). Each transaction is moved
// to the bouncer's other server connection between two borrows (bouncer_hop), so a
// pool that kept anything in the server session would find it gone.
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace usher::test {
namespace {

TEST(PoolPgBouncerTest, ATransactionPoolerPoolRunsEachTransactionOnWhicheverServerItGets) {
  const char* bouncer = pgbouncer_conninfo();
  if (!bouncer) GTEST_SKIP() << "USHER_TEST_PGBOUNCER not set (tests/suites/client.sh sets it)";
  Connection setup = Connection::open(bouncer, std::chrono::seconds(10));
  setup.exec("CREATE TABLE IF NOT EXISTS public.usher_pgbouncer_pool (id int PRIMARY KEY, server int)");
  setup.exec("TRUNCATE public.usher_pgbouncer_pool");

  PoolConfig c = test_config("pgbouncer_pool", {.min_idle = 0, .max_size = 1});
  c.conninfo = bouncer;
  c.transaction_pooler = true;
  c.statement_cache = {StatementCaching::unnamed, 16};
  Pool pool(c);
  int id = 0;
  // A transaction with parameters and a savepoint; returns the server it ran on.
  auto write = [&] {
    return pool.transaction([&](Transaction& tx) {
      int server = tx.exec("SELECT pg_backend_pid()").scalar<int>();
      tx.exec("INSERT INTO public.usher_pgbouncer_pool VALUES ($1, $2)", ++id, server);
      tx.savepoint([&](Transaction& inner) {
        inner.exec("INSERT INTO public.usher_pgbouncer_pool VALUES ($1, $2)", ++id, server);
      });
      return server;
    });
  };
  for (int round = 0; round < 3; ++round) {
    int on_y = 0;
    bouncer_hop([&] { on_y = write(); }, [&](int x) {
      // Session state another client of the bouncer left on X, the only free server: a
      // session reset from the pool (DISCARD ALL) would run there and wipe it.
      Connection other = Connection::open(bouncer, std::chrono::seconds(10));
      other.exec("SELECT pg_catalog.set_config('pgbouncer_test.mark', 'kept', false)");
      EXPECT_EQ(write(), x);  // the pool's one connection now reaches the other server
      EXPECT_NE(on_y, x);
      pool.acquire().release();  // a reset sent on return is read by the next borrow
      EXPECT_EQ(other.exec("SELECT pg_catalog.current_setting('pgbouncer_test.mark', true)")
                    .get<std::string>(0, 0),
                "kept")
          << "the pool reset a server session through the bouncer";
    });
  }
  EXPECT_EQ(setup.exec("SELECT count(*) FROM public.usher_pgbouncer_pool").scalar<long>(), 12);
  EXPECT_EQ(setup.exec("SELECT count(DISTINCT server) FROM public.usher_pgbouncer_pool").scalar<long>(), 2);
  auto stats = pool.stats();
  EXPECT_EQ(stats.total, 1u);  // one client connection to the bouncer throughout
  setup.exec("DROP TABLE public.usher_pgbouncer_pool");
}

}  // namespace
}  // namespace usher::test
