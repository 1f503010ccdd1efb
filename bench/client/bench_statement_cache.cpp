// SELECT by primary key from 8 threads through a pool of 8 connections, with the
// statement cache (StatementCaching::automatic: bound and executed, planned once) and
// without it (off: the unnamed statement, parsed and planned every time). Both pools
// use session_reset = none, so that what is compared is the statement alone (with the
// default DISCARD ALL the cache would last one lease). bench/client/ab_statement_cache.sh
// runs it in rounds and prints cached / uncached.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <usher/usher.hpp>

#include "bench_support.hpp"

namespace {

usher::Pool* cached = nullptr;
usher::Pool* uncached = nullptr;
constexpr int kRows = 10000;
const char* kSql = "SELECT id, name, balance FROM bench_pk WHERE id = $1";

void run(benchmark::State& state, usher::Pool& pool) {
  std::uint32_t id = static_cast<std::uint32_t>(state.thread_index()) * 7919u;
  for (auto _ : state) {
    id = (id * 1103515245u + 12345u) % kRows;
    auto r = pool.acquire()->exec(kSql, static_cast<int>(id) + 1);
    if (r.rows() != 1) state.SkipWithError("no row");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PkCached(benchmark::State& state) { run(state, *cached); }
void BM_PkUncached(benchmark::State& state) { run(state, *uncached); }

BENCHMARK(BM_PkCached)->Threads(8)->UseRealTime();
BENCHMARK(BM_PkUncached)->Threads(8)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  {
    auto setup = usher::Connection::open("");
    setup.exec("DROP TABLE IF EXISTS bench_pk");
    setup.exec("CREATE TABLE bench_pk (id int PRIMARY KEY, name text NOT NULL, balance numeric NOT NULL)");
    setup.exec("INSERT INTO bench_pk SELECT g, 'name ' || g, g * 1.5 FROM generate_series(1, $1) g", kRows);
    setup.exec("ANALYZE bench_pk");
  }
  auto make = [](const char* name, usher::StatementCaching mode) {
    auto config = usher_bench::fixed_pool_config(name, 8, std::chrono::seconds(30));
    config.session_reset = usher::SessionReset::none;
    config.use_extension = false;
    config.statement_cache = {mode, 64};
    return config;
  };
  usher::Pool with(make("bench_pk_cached", usher::StatementCaching::automatic));
  usher::Pool without(make("bench_pk_uncached", usher::StatementCaching::off));
  auto warm = [](usher::Lease& lease) {
    for (int i = 1; i <= 200; ++i) lease->exec(kSql, i);
  };
  usher_bench::open_all(with, 8, warm);
  usher_bench::open_all(without, 8, warm);
  cached = &with;
  uncached = &without;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
