#pragma once
// Internal: reading usher.pool_advice() against a deadline, for the pool's own threads
// (fetch_pool_advice() blocks like Connection::exec; a pool thread must never hang).

#include <chrono>
#include <string_view>

#include "usher/connection.hpp"
#include "usher/pool_advice.hpp"

namespace usher::detail {

// The same statement, parameters and errors as fetch_pool_advice(). When the deadline
// passes or the connection breaks it throws ConnectionError; the connection may then
// still have the statement running: check its transaction status before reusing it.
PoolAdvice fetch_pool_advice_until(Connection& conn, std::string_view service, int instances,
                                   std::chrono::steady_clock::time_point deadline);

}  // namespace usher::detail
