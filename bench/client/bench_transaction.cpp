// A transaction with a savepoint from 8 threads, through pool.transaction and the same
// statements on raw libpq connections, in the same run (use
// --benchmark_enable_random_interleaving so that drift hits all alike):
//   PoolTransaction         pool.transaction: BEGIN, SELECT 1, tx.savepoint(SELECT 1),
//                           COMMIT, on a pool of 8 (session_reset none: a transaction
//                           leaves no session state, SET LOCAL ends with it)
//   PoolTransactionReset    the same on a pool with the default session_reset
//                           (DISCARD ALL sent on return of a used lease, read by the next
//                           borrower)
//   RawTransaction          each thread keeps its own libpq connection and sends the
//                           statements the pool sends: BEGIN ISOLATION LEVEL READ
//                           COMMITTED READ WRITE, SELECT 1, SAVEPOINT, SELECT 1, RELEASE
//                           SAVEPOINT, COMMIT (the ceiling). The pool also reads
//                           pg_current_xact_id_if_assigned() in the COMMIT's round trip
//                           (pipelined): part of what is measured.
//   RawTransactionXid       the raw statements with that xid query pipelined ahead of
//                           COMMIT as the pool does (one round trip, a flush request
//                           between): the pool's own cost apart from the extra statement
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <stdexcept>
#include <usher/usher.hpp>

namespace {

usher::Pool* pool = nullptr;
usher::Pool* pool_reset = nullptr;

void run(PGconn* c, const char* sql, ExecStatusType expected) {
  PGresult* r = PQexecParams(c, sql, 0, nullptr, nullptr, nullptr, nullptr, 0);
  if (PQresultStatus(r) != expected) {
    std::string m = PQresultErrorMessage(r);
    PQclear(r);
    throw std::runtime_error(m);
  }
  PQclear(r);
}

// The transaction's statements up to its COMMIT, as the pool sends them.
void raw_body(PGconn* c) {
  run(c, "BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE", PGRES_COMMAND_OK);
  run(c, "SELECT 1", PGRES_TUPLES_OK);
  run(c, "SAVEPOINT usher_savepoint_1", PGRES_COMMAND_OK);
  run(c, "SELECT 1", PGRES_TUPLES_OK);
  run(c, "RELEASE SAVEPOINT usher_savepoint_1", PGRES_COMMAND_OK);
}

void raw_transaction(PGconn* c) {
  raw_body(c);
  run(c, "COMMIT", PGRES_COMMAND_OK);
}

void raw_transaction_xid(PGconn* c) {
  raw_body(c);
  PQenterPipelineMode(c);
  PQsendQueryParams(c, "SELECT pg_catalog.pg_current_xact_id_if_assigned()", 0, nullptr, nullptr,
                    nullptr, nullptr, 0);
  PQsendFlushRequest(c);
  PQsendQueryParams(c, "COMMIT", 0, nullptr, nullptr, nullptr, nullptr, 0);
  PQpipelineSync(c);
  for (int ends = 0; ends < 2;) {
    PGresult* r = PQgetResult(c);
    if (!r) { ++ends; continue; }
    if (PQresultStatus(r) == PGRES_FATAL_ERROR) throw std::runtime_error(PQresultErrorMessage(r));
    PQclear(r);
  }
  PGresult* sync = PQgetResult(c);
  if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC) throw std::runtime_error("no sync");
  PQclear(sync);
  PQexitPipelineMode(c);
}

void pool_transaction(usher::Pool& p) {
  p.transaction([](usher::Transaction& tx) {
    tx.exec("SELECT 1");
    tx.savepoint([](usher::Connection& c) { c.exec("SELECT 1"); });
  });
}

void warm(PGconn* c) {
  for (int i = 0; i < 200; ++i) raw_transaction(c);
}

void BM_PoolTransaction(benchmark::State& state) {
  for (auto _ : state) pool_transaction(*pool);
  state.SetItemsProcessed(state.iterations());
}

void BM_PoolTransactionReset(benchmark::State& state) {
  for (auto _ : state) pool_transaction(*pool_reset);
  state.SetItemsProcessed(state.iterations());
}

void BM_RawTransaction(benchmark::State& state) {
  PGconn* c = PQconnectdb("");  // before the loop: not measured
  if (PQstatus(c) != CONNECTION_OK) state.SkipWithError(PQerrorMessage(c));
  warm(c);
  for (auto _ : state) raw_transaction(c);
  PQfinish(c);
  state.SetItemsProcessed(state.iterations());
}

void BM_RawTransactionXid(benchmark::State& state) {
  PGconn* c = PQconnectdb("");
  if (PQstatus(c) != CONNECTION_OK) state.SkipWithError(PQerrorMessage(c));
  warm(c);
  for (auto _ : state) raw_transaction_xid(c);
  PQfinish(c);
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_PoolTransaction)->Threads(8)->UseRealTime();
BENCHMARK(BM_PoolTransactionReset)->Threads(8)->UseRealTime();
BENCHMARK(BM_RawTransaction)->Threads(8)->UseRealTime();
BENCHMARK(BM_RawTransactionXid)->Threads(8)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  usher::PoolConfig config;
  config.name = "bench_transaction";
  config.min_idle = 8;
  config.max_size = 8;
  config.acquire_timeout = std::chrono::seconds(30);
  config.session_reset = usher::SessionReset::none;
  usher::Pool p(config);
  pool = &p;
  config.name = "bench_transaction_reset";
  config.session_reset = usher::PoolConfig{}.session_reset;
  usher::Pool q(config);
  pool_reset = &q;
  for (usher::Pool* each : {&p, &q}) {
    std::vector<usher::Lease> leases;
    for (int i = 0; i < 8; ++i) leases.push_back(each->acquire());
    for (auto& l : leases) warm(l->native());
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
