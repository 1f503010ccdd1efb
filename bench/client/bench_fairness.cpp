// Fairness: 64 threads share 4 connections for USHER_FAIRNESS_SECONDS (default 10).
// Each thread loops acquire -> SELECT 1 -> release. Reported as counters:
//   max_min_ratio   most-served thread / least-served thread (target <= 1.5)
//   wait_p50_us, wait_p99_us, wait_p999_us   acquire wait, measured by the caller
//   served          queries in total
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <thread>
#include <usher/usher.hpp>

#include "bench_support.hpp"

namespace {

constexpr int kThreads = 64;

void BM_Fairness64On4(benchmark::State& state) {
  const char* env = std::getenv("USHER_FAIRNESS_SECONDS");
  auto duration = std::chrono::duration<double>(env ? std::atof(env) : 10.0);
  usher::Pool pool(usher_bench::fixed_pool_config("bench_fairness", 4, std::chrono::seconds(60)));
  usher_bench::open_all(pool, 4);
  for (auto _ : state) {
    std::vector<long> served(kThreads, 0);
    std::vector<std::vector<double>> waits(kThreads);
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        waits[t].reserve(1 << 16);
        while (!stop.load(std::memory_order_relaxed)) {
          auto start = std::chrono::steady_clock::now();
          auto lease = pool.acquire();
          waits[t].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
          PQclear(PQexecParams(lease->native(), "SELECT 1", 0, nullptr, nullptr, nullptr, nullptr, 0));
          ++served[t];
        }
      });
    }
    std::this_thread::sleep_for(duration);
    stop = true;
    for (auto& th : threads) th.join();

    std::vector<double> all;
    for (auto& w : waits) all.insert(all.end(), w.begin(), w.end());
    std::sort(all.begin(), all.end());
    auto q = [&](double p) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<std::size_t>(p * all.size()))]; };
    auto [lo, hi] = std::minmax_element(served.begin(), served.end());
    state.counters["max_min_ratio"] = *lo ? static_cast<double>(*hi) / static_cast<double>(*lo) : 1e9;
    state.counters["most_served"] = static_cast<double>(*hi);
    state.counters["least_served"] = static_cast<double>(*lo);
    state.counters["served"] = static_cast<double>(all.size());
    state.counters["wait_p50_us"] = q(0.50);
    state.counters["wait_p99_us"] = q(0.99);
    state.counters["wait_p999_us"] = q(0.999);
    auto s = pool.stats();
    state.counters["pool_wait_p999_us"] = static_cast<double>(s.acquire_wait.p999.count()) / 1000.0;
  }
}
BENCHMARK(BM_Fairness64On4)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
