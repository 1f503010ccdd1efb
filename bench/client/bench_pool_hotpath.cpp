// acquire + release on the hot path: the connection was used within validate_after_idle,
// so no round trip happens. One pool of 8 connections shared by 1, 2, 8 and 32 threads.
// Connection settings: the PG* environment.
#include <benchmark/benchmark.h>

#include <usher/usher.hpp>

#include "bench_support.hpp"

namespace {

usher::Pool* pool = nullptr;

void BM_AcquireRelease(benchmark::State& state) {
  for (auto _ : state) {
    auto lease = pool->acquire();
    benchmark::DoNotOptimize(lease.connection_id());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AcquireRelease)->Threads(1)->Threads(2)->Threads(8)->Threads(32)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  auto config = usher_bench::fixed_pool_config("bench_hotpath", 8, std::chrono::seconds(30));
  config.validate_after_idle = std::chrono::hours(1);  // hot path: never a round trip
  usher::Pool p(config);
  pool = &p;
  usher_bench::open_all(p, 8);  // before measuring
  benchmark::RunSpecifiedBenchmarks();
  usher_bench::print_pool_stats(p);
  benchmark::Shutdown();
}
