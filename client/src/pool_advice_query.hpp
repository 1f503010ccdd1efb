#pragma once
// Internal: reading usher.pool_advice() within ExecOptions, for the pool's own threads
// (fetch_pool_advice() blocks like Connection::exec; a pool thread must never hang).

#include <string_view>

#include "usher/connection.hpp"
#include "usher/pool_advice.hpp"

namespace usher::detail {

// The same statement, parameters and errors as fetch_pool_advice(), within `options`:
// at its deadline or when its abort_fd is readable the connection is closed and
// ConnectionError or ConnectAborted thrown (Connection::exec).
PoolAdvice fetch_pool_advice(Connection& conn, std::string_view service, int instances,
                             const ExecOptions& options);

}  // namespace usher::detail
