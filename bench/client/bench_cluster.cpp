// usher::Cluster against a primary and a streaming standby (bench/client/run_cluster.sh
// starts them and sets USHER_BENCH_PRIMARY_PORT / USHER_BENCH_STANDBY_PORT, 127.0.0.1).
//
//   ClusterRead      cluster.read(SELECT 1) from 8 threads: routed to the standby
//   PoolOnStandby    the same SELECT 1 through a plain usher::Pool on the standby, the
//                    same size and settings as the cluster's pool there: the baseline
//   (run both with --benchmark_enable_random_interleaving: the ratio is the routing cost)
//
// With --read-your-writes N (instead of benchmarks): N times, a session writes a row and
// reads it back at once through the cluster, while 2 threads keep the standby busy with
// reads; prints how many reads were stale (must be 0) and the share the standby served.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include <usher/usher.hpp>

#include "bench_support.hpp"

namespace {

usher::Cluster* cluster = nullptr;
usher::Pool* standby_pool = nullptr;

std::string port(const char* var) {
  const char* v = std::getenv(var);
  if (!v) throw std::runtime_error(std::string(var) + " is not set (bench/client/run_cluster.sh sets it)");
  return v;
}

using usher_bench::check;
using usher_bench::select1;

void BM_ClusterRead(benchmark::State& state) {
  for (auto _ : state) cluster->read([](usher::Connection& c) { check(select1(c.native())); });
  state.SetItemsProcessed(state.iterations());
}

void BM_PoolOnStandby(benchmark::State& state) {
  for (auto _ : state) {
    auto lease = standby_pool->acquire();
    check(select1(lease->native()));
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_ClusterRead)->Threads(8)->UseRealTime();
BENCHMARK(BM_PoolOnStandby)->Threads(8)->UseRealTime();

usher::PoolConfig node_config(const std::string& name) {
  auto config = usher_bench::fixed_pool_config(name, 8, std::chrono::seconds(30));
  return config;
}

int read_your_writes(long n) {
  {
    auto admin = usher::Connection::open("host=127.0.0.1 port=" + port("USHER_BENCH_PRIMARY_PORT"));
    admin.exec("DROP TABLE IF EXISTS bench_ryw");
    admin.exec("CREATE TABLE bench_ryw (id bigint PRIMARY KEY, pad text)");
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> load;
  for (int t = 0; t < 2; ++t)
    load.emplace_back([&] {
      while (!stop)
        cluster->read([](usher::Connection& c) { c.exec("SELECT count(*) FROM pg_catalog.generate_series(1, 20000)"); });
    });
  auto s = cluster->session();
  long stale = 0, on_standby = 0;
  auto start = std::chrono::steady_clock::now();
  for (long i = 1; i <= n; ++i) {
    s.write([&](usher::Connection& c) { c.exec("INSERT INTO bench_ryw VALUES ($1, 'x')", i); });
    auto [standby_read, found] = s.read([&](usher::Connection& c) {
      auto r = c.exec("SELECT pg_catalog.pg_is_in_recovery(), count(*) FROM bench_ryw WHERE id = $1", i);
      return std::pair(r.get<bool>(0, 0), r.get<long>(0, 1));
    });
    stale += found != 1;
    on_standby += standby_read;
  }
  auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  stop = true;
  for (auto& t : load) t.join();
  std::printf("read-your-writes: %ld write+read pairs in %.1f s, %ld stale reads, %ld served by the "
              "standby (%.1f%%), %ld by the primary\n",
              n, secs, stale, on_standby, 100.0 * on_standby / n, n - on_standby);
  return stale == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  long ryw = 0;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--read-your-writes") == 0) ryw = std::atol(argv[i + 1]);
  usher::ClusterConfig cc;
  cc.endpoints = {"127.0.0.1:" + port("USHER_BENCH_PRIMARY_PORT"), "127.0.0.1:" + port("USHER_BENCH_STANDBY_PORT")};
  cc.pool = node_config("bench_cluster");
  usher::Cluster c(cc);
  cluster = &c;
  if (ryw > 0) return read_your_writes(ryw);

  benchmark::Initialize(&argc, argv);
  auto pc = node_config("bench_standby");
  pc.conninfo = "host=127.0.0.1 port=" + port("USHER_BENCH_STANDBY_PORT");
  usher::Pool p(pc);
  standby_pool = &p;
  usher_bench::open_all(p, 8);
  usher_bench::open_all(c.pool(1), 8);
  benchmark::RunSpecifiedBenchmarks();
  usher_bench::print_pool_stats(c.pool(1));
  usher_bench::print_pool_stats(p);
  benchmark::Shutdown();
}
