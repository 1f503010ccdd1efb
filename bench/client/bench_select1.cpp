// SELECT 1 from 8 threads, three ways, in the same run (use
// --benchmark_enable_random_interleaving so that drift hits all three alike):
//   Pool             8 threads share a libusher pool of 8 connections (default settings:
//                    each used lease's session is reset, DISCARD ALL)
//   PoolNoReset      the same with session_reset = none: the pool's own cost alone
//   RawPersistent    each thread keeps its own libpq connection (the ceiling)
//   RawPersistentReset  the same, each SELECT 1 followed by the DISCARD ALL the pool
//                    sends for a used lease: raw connections doing the pool's work, to
//                    compare the default pool with
//   RawPipelinedReset   the same with the DISCARD ALL pipelined ahead of the next SELECT 1
//                    (libpq pipeline mode, one round trip for both): the most a pool
//                    could gain by pipelining its reset
//   ConnectPerQuery  each query opens and closes a libpq connection (the floor)
//   PoolLeaseHeld    like Pool, but each thread keeps one lease for all its queries:
//                    the same connections without acquire/release, to tell the cost
//                    of the pool's code from differences between connections
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <cstdio>
#include <stdexcept>
#include <usher/usher.hpp>

#include "bench_support.hpp"

namespace {

usher::Pool* pool = nullptr;
usher::Pool* pool_no_reset = nullptr;

using usher_bench::check;
using usher_bench::select1;

// A new backend's first statements fill its caches; both sides get the same warm-up.
void warm(PGconn* c) {
  for (int i = 0; i < 200; ++i) check(select1(c));
}

void BM_Pool(benchmark::State& state) {
  for (auto _ : state) {
    auto lease = pool->acquire();
    check(select1(lease->native()));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PoolNoReset(benchmark::State& state) {
  for (auto _ : state) {
    auto lease = pool_no_reset->acquire();
    check(select1(lease->native()));
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_PoolLeaseHeld(benchmark::State& state) {
  auto lease = pool->acquire();
  for (auto _ : state) check(select1(lease->native()));
  state.SetItemsProcessed(state.iterations());
}

void BM_RawPersistent(benchmark::State& state) {
  PGconn* c = PQconnectdb("");  // before the loop: not measured
  if (PQstatus(c) != CONNECTION_OK) state.SkipWithError(PQerrorMessage(c));
  warm(c);
  for (auto _ : state) check(select1(c));
  PQfinish(c);
  state.SetItemsProcessed(state.iterations());
}

void BM_RawPersistentReset(benchmark::State& state) {
  PGconn* c = PQconnectdb("");
  if (PQstatus(c) != CONNECTION_OK) state.SkipWithError(PQerrorMessage(c));
  warm(c);
  for (auto _ : state) {
    check(select1(c));
    PGresult* r = PQexecParams(c, "DISCARD ALL", 0, nullptr, nullptr, nullptr, nullptr, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) throw std::runtime_error(PQresultErrorMessage(r));
    PQclear(r);
  }
  PQfinish(c);
  state.SetItemsProcessed(state.iterations());
}

void expect(PGconn* c, ExecStatusType status) {
  PGresult* r = PQgetResult(c);
  if (!r || PQresultStatus(r) != status)
    throw std::runtime_error(r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  PQclear(r);
}

void BM_RawPipelinedReset(benchmark::State& state) {
  PGconn* c = PQconnectdb("");
  if (PQstatus(c) != CONNECTION_OK) state.SkipWithError(PQerrorMessage(c));
  warm(c);
  if (!PQenterPipelineMode(c)) state.SkipWithError(PQerrorMessage(c));
  bool reset_pending = false;
  for (auto _ : state) {
    PQsendQueryParams(c, "SELECT 1", 0, nullptr, nullptr, nullptr, nullptr, 0);
    PQpipelineSync(c);
    if (reset_pending) {  // the reset's answer, then its end of pipeline segment
      expect(c, PGRES_COMMAND_OK);
      if (PQgetResult(c)) throw std::runtime_error("extra result");
      expect(c, PGRES_PIPELINE_SYNC);
    }
    expect(c, PGRES_TUPLES_OK);
    if (PQgetResult(c)) throw std::runtime_error("extra result");
    expect(c, PGRES_PIPELINE_SYNC);
    // "Return": send the reset, read it with the next statement.
    PQsendQueryParams(c, "DISCARD ALL", 0, nullptr, nullptr, nullptr, nullptr, 0);
    PQpipelineSync(c);
    reset_pending = true;
  }
  PQfinish(c);
  state.SetItemsProcessed(state.iterations());
}

void BM_ConnectPerQuery(benchmark::State& state) {
  for (auto _ : state) {
    PGconn* c = PQconnectdb("");
    if (PQstatus(c) != CONNECTION_OK) {
      state.SkipWithError(PQerrorMessage(c));
      PQfinish(c);
      break;
    }
    check(select1(c));
    PQfinish(c);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_Pool)->Threads(8)->UseRealTime();
BENCHMARK(BM_PoolNoReset)->Threads(8)->UseRealTime();
BENCHMARK(BM_RawPersistent)->Threads(8)->UseRealTime();
BENCHMARK(BM_RawPersistentReset)->Threads(8)->UseRealTime();
BENCHMARK(BM_RawPipelinedReset)->Threads(8)->UseRealTime();
BENCHMARK(BM_ConnectPerQuery)->Threads(8)->UseRealTime();
BENCHMARK(BM_PoolLeaseHeld)->Threads(8)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  auto config = usher_bench::fixed_pool_config("bench_select1", 8, std::chrono::seconds(30));
  usher::Pool p(config);
  pool = &p;
  config.name = "bench_select1_no_reset";
  config.session_reset = usher::SessionReset::none;
  usher::Pool q(config);
  pool_no_reset = &q;
  for (usher::Pool* each : {&p, &q})
    usher_bench::open_all(*each, 8, [](usher::Lease& l) { warm(l->native()); });
  benchmark::RunSpecifiedBenchmarks();
  usher_bench::print_pool_stats(p);
  benchmark::Shutdown();
}
