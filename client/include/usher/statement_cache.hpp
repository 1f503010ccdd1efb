#pragma once
// How a connection prepares statements (docs/client.md, "Prepared statements and the
// statement cache"). Set per connection (Connection::set_statement_cache) or per pool
// (PoolConfig::statement_cache).

#include <cstddef>
#include <cstdint>

namespace usher {

enum class StatementCaching {
  // exec() uses the unnamed statement (Parse, Bind, Execute in one round trip, parsed
  // and planned every time); Connection::prepare() makes a named statement on the server.
  off,
  // exec() prepares the statements it runs, keyed by SQL text and parameter types, and
  // keeps up to `capacity` of them per connection (least recently used dropped first),
  // as pgx's statement cache does. A statement is prepared on its first run (one more
  // round trip) and then only bound and executed. The cache is emptied by DISCARD ALL /
  // DEALLOCATE (the pool's session reset included); a cached statement the server
  // refuses after a schema change ("cached plan must not change result type", 0A000) or
  // no longer knows (26000) is prepared again and run once more, outside a transaction
  // block.
  automatic,
  // Nothing named is ever made on the server: exec() uses the unnamed statement and
  // Connection::prepare() only checks the statement (unnamed) and remembers its text,
  // which exec_prepared() then runs unnamed. For PgBouncer in transaction mode before
  // 1.21 (and 1.21+ without max_prepared_statements), where a named statement lives on a
  // server connection the next transaction may not get.
  unnamed,
};

struct StatementCacheConfig {
  StatementCaching mode = StatementCaching::off;
  std::size_t capacity = 256;  // automatic: prepared statements kept per connection (>= 1)
};

struct StatementCacheStats {
  std::size_t cached = 0;           // statements the cache holds prepared now
  std::uint64_t hits = 0;           // exec() of a statement already prepared
  std::uint64_t misses = 0;         // exec() that prepared its statement first
  std::uint64_t evictions = 0;      // statements dropped (and deallocated) for capacity
  std::uint64_t reprepared = 0;     // statements prepared again after 0A000 / 26000
  std::uint64_t invalidations = 0;  // DISCARD ALL / DEALLOCATE seen: cache emptied
};

}  // namespace usher
