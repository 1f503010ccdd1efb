#pragma once
// What the client benchmarks share: a pool of a fixed size whose connections are all
// open before measuring, and the pool's own figures printed after the run.

#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

#include <usher/usher.hpp>

namespace usher_bench {

// Throws the server's message unless `r` holds rows; frees `r` either way.
inline void check(PGresult* r) {
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::string message = PQresultErrorMessage(r);
    PQclear(r);
    throw std::runtime_error(message);
  }
  PQclear(r);
}

// SELECT 1 on raw libpq, the baseline the pool is measured against.
inline PGresult* select1(PGconn* c) {
  return PQexecParams(c, "SELECT 1", 0, nullptr, nullptr, nullptr, nullptr, 0);
}

// A pool configuration of `size` connections, no more and no fewer (min_idle =
// max_size), connecting through the PG* environment.
inline usher::PoolConfig fixed_pool_config(const std::string& name, std::size_t size,
                                           std::chrono::milliseconds acquire_timeout) {
  usher::PoolConfig config;
  config.name = name;
  config.min_idle = size;
  config.max_size = size;
  config.acquire_timeout = acquire_timeout;
  return config;
}

// Opens every connection of the pool before measuring: as many leases at once as the
// pool has connections; `warm` runs on each lease before they all go back.
template <typename Warm>
void open_all(usher::Pool& pool, std::size_t size, Warm&& warm) {
  std::vector<usher::Lease> leases;
  for (std::size_t i = 0; i < size; ++i) leases.push_back(pool.acquire());
  for (auto& lease : leases) warm(lease);
}
inline void open_all(usher::Pool& pool, std::size_t size) {
  open_all(pool, size, [](usher::Lease&) {});
}

// One line on stderr: the pool's connections opened, validations, leases and acquire
// wait percentiles over the whole run.
inline void print_pool_stats(const usher::Pool& pool) {
  auto s = pool.stats();
  std::fprintf(stderr,
               "pool: created %llu, validations %llu, acquired %llu, acquire wait p50 %lld ns p99 %lld ns "
               "p99.9 %lld ns\n",
               static_cast<unsigned long long>(s.created), static_cast<unsigned long long>(s.validations),
               static_cast<unsigned long long>(s.acquired), static_cast<long long>(s.acquire_wait.p50.count()),
               static_cast<long long>(s.acquire_wait.p99.count()),
               static_cast<long long>(s.acquire_wait.p999.count()));
}

}  // namespace usher_bench
