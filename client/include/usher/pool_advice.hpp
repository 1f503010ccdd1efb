#pragma once
// pg_usher's pool-size advice for one service, read with usher.pool_advice(). The
// formula and its inputs are in docs/pool-advice.md; a Pool can size itself from it
// (PoolConfig::size_from_advice, docs/client.md).
//
//   auto conn = usher::Connection::open("host=db dbname=app user=monitor");
//   auto a = usher::fetch_pool_advice(conn, "orders", 12);   // 12 client processes
//   // a.max_pool_size, a.min_idle: per process; a.rationale: every step, in words

#include <string>
#include <string_view>

#include "usher/connection.hpp"

namespace usher {

// One row of usher.pool_advice().
struct PoolAdvice {
  std::string service;
  int client_instances = 1;  // the client processes (pools) of the service it is for
  int max_pool_size = 1;     // per instance
  int min_idle = 1;          // per instance
  std::string basis;         // "observed" or "default share"
  std::string rationale;     // every input and step of the computation

  bool operator==(const PoolAdvice&) const = default;
};

// Reads the advice for `service` when `instances` client processes share it. The
// statement is parameterised: the service name and the count travel as values, never
// as SQL text. Throws
// - std::invalid_argument: empty service, instances outside 1..100000 (pg_usher's range);
// - ExtensionUnavailable: pg_usher is not installed in the connection's database, has
//   no usher.pool_advice(jsonb), or is not in shared_preload_libraries;
// - PermissionDenied: the role may not read the advice; the message names the grant
//   (GRANT pg_monitor TO <role>);
// - UnknownService: `service` is not an enabled service of the published registry;
// - any other member of the usher::Error hierarchy (ConnectionError, ...).
// Runs like Connection::exec: blocking, cancellable with Connection::cancel().
PoolAdvice fetch_pool_advice(Connection& conn, std::string_view service, int instances = 1);

}  // namespace usher
