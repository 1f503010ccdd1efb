// acquire + release on the hot path: the connection was used within validate_after_idle,
// so no round trip happens. One pool of 8 connections shared by 1, 2, 8 and 32 threads.
// Connection settings: the PG* environment.
#include <benchmark/benchmark.h>

#include <usher/usher.hpp>

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
  usher::PoolConfig config;
  config.name = "bench_hotpath";
  config.min_idle = 8;
  config.max_size = 8;
  config.validate_after_idle = std::chrono::hours(1);  // hot path: never a round trip
  config.acquire_timeout = std::chrono::seconds(30);
  usher::Pool p(config);
  pool = &p;
  {  // open all 8 before measuring
    std::vector<usher::Lease> warm;
    for (int i = 0; i < 8; ++i) warm.push_back(p.acquire());
  }
  benchmark::RunSpecifiedBenchmarks();
  auto s = p.stats();
  std::fprintf(stderr, "pool: created %llu, validations %llu, acquired %llu, acquire wait p50 %lld ns p99 %lld ns\n",
               static_cast<unsigned long long>(s.created), static_cast<unsigned long long>(s.validations),
               static_cast<unsigned long long>(s.acquired), static_cast<long long>(s.acquire_wait.p50.count()),
               static_cast<long long>(s.acquire_wait.p99.count()));
  benchmark::Shutdown();
}
