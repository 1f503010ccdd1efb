#pragma once
// Every setting of usher::Pool with its default. Pool's constructor calls validate(),
// which throws std::invalid_argument naming the first bad setting.

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "usher/circuit_breaker.hpp"
#include "usher/connection.hpp"
#include "usher/pool_events.hpp"

namespace usher {

// What the pool does to a connection's session when a lease that used it comes back
// (a lease that ran nothing and never took native() is not reset).
enum class SessionReset {
  discard_all,  // DISCARD ALL: settings, role, prepared statements, temp tables, cursors,
                // LISTEN, advisory locks, cached plans -- as PgBouncer's server_reset_query
  reset_all,    // RESET ALL: run-time settings only (not SET ROLE / SESSION AUTHORIZATION)
  none,         // nothing: the next borrower sees what this one left
};

struct PoolConfig {
  using ms = std::chrono::milliseconds;

  // Where to connect: keyword=value or postgres:// URI; empty means libpq's defaults
  // and the PG* environment variables.
  std::string conninfo;
  // Further libpq keywords (sslmode, sslrootcert, target_session_attrs, ...); they
  // override the same keyword in conninfo. Unknown keywords are rejected.
  std::vector<std::pair<std::string, std::string>> options;
  // Pool name: the `pool` label in metrics and the prefix of lease holders.
  std::string name = "default";
  // application_name of every connection; empty: "<service>/<name>" when service is
  // set, else "usher/<name>". pg_usher assigns a connection to the service named by
  // the text before the first '/'.
  std::string application_name;
  std::string service;

  std::size_t min_idle = 5;      // idle connections kept open (and opened at start)
  std::size_t max_size = 20;     // connections open or being opened, at most
  ms connect_timeout = std::chrono::seconds(5);
  ms acquire_timeout = std::chrono::seconds(5);
  ms idle_timeout = std::chrono::seconds(60);     // 0: never; only above min_idle
  ms max_lifetime = std::chrono::minutes(30);     // 0: forever; minus up to 25% jitter
  ms keepalive_interval = std::chrono::minutes(2);  // 0: no pings of idle connections
  ms validation_timeout = std::chrono::seconds(5);
  ms validate_after_idle = std::chrono::milliseconds(500);  // 0: validate every borrow
  ms leak_detection_threshold = ms::zero();                 // 0: off
  ms maintenance_interval = std::chrono::seconds(1);  // how often the maintenance thread runs

  // Run on the pool's opener thread once per new connection, before it is first lent
  // (pgxpool's AfterConnect, HikariCP's connectionInitSql). An exception fails that
  // connection attempt like a connect error (event connect_failure, with its message);
  // it must leave no transaction open. What it SETs is undone by a session reset: put
  // settings that must last in `options` ({"options", "-c search_path=app"}), which are
  // the session defaults RESET ALL and DISCARD ALL return to.
  std::function<void(Connection&)> after_connect;
  SessionReset session_reset = SessionReset::discard_all;
  // Prepared statements of every connection (docs/client.md, "Prepared statements and
  // the statement cache"): off by default; `automatic` caches what exec() runs (with
  // session_reset discard_all the cache lasts one lease: use reset_all or none to keep
  // it); `unnamed` for PgBouncer in transaction mode before 1.21.
  StatementCacheConfig statement_cache;

  // Use pg_usher's usher.checkout()/usher.checkin() where the extension is installed.
  bool use_extension = true;

  // The pool connects to a transaction pooler (PgBouncer with pool_mode = transaction),
  // which hands each transaction whichever server session is free: no session is this
  // connection's own. Then the pool relies on no session state: no usher.checkout /
  // usher.checkin (a lease marks one server session and its checkin would land on
  // another, leaving a stale lease behind), and no session reset on return whatever
  // session_reset says (DISCARD ALL would run on some other client's server session).
  // pg_usher is still detected, so size_from_advice works. Borrowers must leave no
  // session state either: SET LOCAL inside pool.transaction(), never a bare SET.
  bool transaction_pooler = false;

  // Size the pool from usher.pool_advice() for `service` (which must be set; needs
  // use_extension). The first connection reads it; max_size and min_idle above are then
  // the ceiling: the pool uses min(advised max_pool_size, max_size) and the advised
  // min_idle below that. If the advice cannot be read (no extension, no privilege,
  // unknown service) the pool keeps these sizes and logs one warning: it never fails
  // to start because of the advice.
  bool size_from_advice = false;
  int advice_instances = 1;  // client processes (pools) of this service: 1 to 100000
  // How often the advice is read again (by the maintenance thread, on an idle
  // connection); 0: only once, at start. A smaller answer retires idle connections
  // only; leased ones are never closed for it.
  ms advice_interval = std::chrono::minutes(5);

  // The circuit breaker of this pool's server (docs/client.md, "Circuit breaker"). Its
  // calls are the pool's attempts to reach the server: connection attempts (a transient
  // connect error is a failure, a slow connect a slow call) and the validations and
  // keepalives of idle connections. While it is open, acquire() throws CircuitOpen at
  // once and no connection is attempted until breaker.wait_in_open has passed; then the
  // opener's next connection attempts are the half-open probes. Off: never opens.
  bool breaker_enabled = true;
  CircuitBreakerConfig breaker;

  // Called (outside the pool's lock, on the thread that saw it) for every PoolEvent.
  EventCallback on_event;
  // Log lines of the pool. Default (empty): warnings and errors go to stderr.
  Logger logger;

  // Throws std::invalid_argument("PoolConfig.<setting>: ...") for the first bad value.
  void validate() const;
  // application_name as it will be sent.
  std::string effective_application_name() const;
};

}  // namespace usher
