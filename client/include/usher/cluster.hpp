#pragma once
// usher::Cluster: a primary and its streaming replicas behind one object. Writes go to
// the primary, reads to a healthy replica within a lag bound (else the primary), a
// causal token (the commit's WAL position) gives read-your-writes, and a health thread
// follows promotions. See docs/replicas.md.
//
//   usher::ClusterConfig cfg;
//   cfg.endpoints = {"db1:5432", "db2:5432"};
//   cfg.pool.conninfo = "dbname=app user=app";          // shared by every node
//   usher::Cluster cluster(cfg);
//   auto s = cluster.session();                          // keeps the causal token
//   s.write([](usher::Connection& c) { c.exec("INSERT INTO t VALUES (1)"); });
//   auto n = s.read([](usher::Connection& c) {           // a replica that has the insert
//     return c.exec("SELECT count(*) FROM t").scalar<long>();
//   });

#include <atomic>
#include <chrono>
#include <compare>
#include <cstdint>
#include <optional>
#include <source_location>
#include <string>
#include <string_view>
#include <vector>

#include "usher/errors.hpp"
#include "usher/pool.hpp"
#include "usher/pool_config.hpp"
#include "usher/transaction.hpp"

namespace usher {

// A position in the write-ahead log (PostgreSQL's pg_lsn). 0: none.
struct Lsn {
  std::uint64_t value = 0;
  // "16/B374D848" (pg_lsn's text); throws std::invalid_argument naming the text.
  static Lsn parse(std::string_view text);
  std::string to_string() const;
  explicit operator bool() const noexcept { return value != 0; }
  auto operator<=>(const Lsn&) const = default;
};
// A causal token: the WAL position a read must see (the end of a write's commit).
using CausalToken = Lsn;

enum class NodeRole { unknown, primary, standby };
std::string_view to_string(NodeRole role) noexcept;

// Where a read may go.
enum class Consistency {
  eventual,  // any healthy replica within the lag bounds
  causal,    // ... that has replayed ReadOptions::after (the token); eventual when 0
  primary,   // the primary only
};
// What a read does when no replica qualifies.
enum class ReadFallback {
  primary,  // runs on the primary
  fail,     // throws usher::NoReplica
};

struct ReadOptions {
  Consistency consistency = Consistency::eventual;
  // Replicas further behind than this are skipped (nullopt: no bound). Time lag is how
  // long the replica has been missing WAL the primary had (docs/replicas.md): an idle
  // primary means no lag, whatever the age of the last replayed transaction. Give a
  // bound above ClusterConfig::health_interval, which is its resolution.
  std::optional<std::chrono::milliseconds> max_lag_time;
  std::optional<std::uint64_t> max_lag_bytes;
  // Consistency::causal: the token (Cluster::Session fills it in).
  CausalToken after;
  // Consistency::causal: how long a replica that has not replayed `after` yet (as last
  // seen) is given to catch up, polled on the connection that will run the read; then
  // the fallback.
  std::chrono::milliseconds causal_wait{100};
  ReadFallback fallback = ReadFallback::primary;
};

struct ClusterConfig {
  using ms = std::chrono::milliseconds;

  // The nodes: "host:port", "host" (port from pool.conninfo / PGPORT / 5432), "[::1]:5432".
  // Empty: the host and port lists of pool.conninfo (a libpq multi-host string,
  // "host=a,b port=5432,5433" or "postgres://a:5432,b:5433/app").
  std::vector<std::string> endpoints;
  // Or Patroni's REST API ("http://10.0.0.11:8008", "https://user:password@db1:8008"):
  // the nodes are the members of GET <url>/cluster, the first URL that answers (each
  // tried in turn within health_timeout), read again every health_interval; Patroni's
  // leader takes the writes once it answers as primary itself (docs/ha.md). Not with
  // `endpoints`. Only http and https; redirects are not followed.
  std::vector<std::string> patroni_urls;
  // Every node's pool: conninfo and options carry what the nodes share (dbname, user,
  // password, sslmode, ...); host, port and target_session_attrs are set per node. The
  // pool of a node is named "<name>@<host:port>".
  PoolConfig pool;
  // How often the health thread asks every node its role and WAL position.
  ms health_interval = std::chrono::seconds(1);
  // Bound of one node's probe (connecting included).
  ms health_timeout = std::chrono::seconds(2);
  // write()/transaction() with no primary known (failover under way): wait up to this
  // for one, asking the nodes at once rather than at the next interval. 0: throw
  // usher::NoPrimary at once.
  ms primary_wait = ms::zero();
  // read(fn)'s options.
  ReadOptions read;

  // Throws std::invalid_argument("ClusterConfig.<setting>: ...").
  void validate() const;
};

// What the health thread last saw of a node (Cluster::nodes()).
struct ClusterNodeStatus {
  std::string endpoint;  // "host:port"
  NodeRole role = NodeRole::unknown;
  bool healthy = false;  // the last probe answered (and no request failed since)
  bool is_primary = false;  // the node writes go to
  Lsn lsn;               // a standby's replay position, the primary's flush position
  std::optional<std::uint64_t> lag_bytes;           // standbys: behind the primary
  std::optional<std::chrono::milliseconds> lag_time;
  bool replay_paused = false;
  // The health probe asks pg_usher's usher.replication_status() (installed in the
  // database and callable by the user); false: pg_is_in_recovery() and the WAL functions.
  bool probe_extension = false;
  int outstanding = 0;          // leases of the cluster's reads and writes out now
  std::uint64_t reads = 0, writes = 0;  // served since the start
  std::string last_error;       // why the last probe or request failed, password redacted
  std::size_t index = 0;        // the node's index for Cluster::pool()
  // With ClusterConfig::patroni_urls: what Patroni's member list said of the node
  // ("leader", "replica", "sync_standby", "standby_leader"; "running", "streaming", ...;
  // its lag in bytes as Patroni measures it), as of the last list read.
  std::string patroni_role, patroni_state;
  std::optional<std::uint64_t> patroni_lag_bytes;
  // Why the last reading of the member list failed (every URL's reason, passwords
  // redacted); empty when it succeeded. The nodes are then those of the last list read.
  std::string members_error;
};

// No node is primary (a failover under way, or every node down) and none became one
// within ClusterConfig::primary_wait. A ConnectionError (08000): transient.
class NoPrimary : public virtual ConnectionError {
  USHER_ERROR_CONSTRUCTORS(NoPrimary)
};

// ReadFallback::fail and no replica qualified. The message says why each was skipped.
class NoReplica : public Error {
 public:
  using Error::Error;
};

namespace detail {
class ClusterCore;
}

class Cluster {
 public:
  using Clock = std::chrono::steady_clock;
  class Session;

  // Validates `config`, makes one pool per node, asks every node its role once (each
  // within health_timeout) and starts the health thread. With patroni_urls it reads the
  // member list first; if no URL answers, the cluster starts with no node and the
  // health thread tries again every health_interval (members_error() says why).
  explicit Cluster(ClusterConfig config);
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;
  ~Cluster();

  // fn(Connection&) on the primary; returns what fn returns. With no primary, waits up
  // to primary_wait (NoPrimary). A node that refuses the write as read-only (25006: it
  // is a standby now) is asked its role again and the write goes to the new primary
  // within primary_wait (fn ran nothing that wrote). Other errors propagate: a
  // connection lost during fn leaves its outcome unknown (use transaction()).
  template <class Fn>
  detail::run_result_t<Fn> write(Fn&& fn,
                                 std::source_location where = std::source_location::current());
  // pool.transaction(fn, opts) on the primary's pool (retries, savepoints and commit
  // outcome resolution as Pool::transaction). A transaction refused as read-only, or
  // whose connection was lost before COMMIT, or that found no connection (the node is
  // down: CircuitOpen, PoolTimeout) runs again on the new primary within primary_wait.
  template <class Fn>
  detail::transaction_result_t<Fn> transaction(
      Fn&& fn, TransactionOptions opts = {},
      std::source_location where = std::source_location::current());
  // fn(Connection&) on a replica that qualifies under `opts` (the fewest outstanding
  // leases among them), else by opts.fallback. A replica that cannot be reached (or
  // whose connection breaks during fn) is marked unhealthy and fn runs on the next
  // choice, the primary last: fn must be safe to run again (a read).
  template <class Fn>
  detail::run_result_t<Fn> read(Fn&& fn, const ReadOptions& opts,
                                std::source_location where = std::source_location::current());
  template <class Fn>
  detail::run_result_t<Fn> read(Fn&& fn,
                                std::source_location where = std::source_location::current()) {
    return read(std::forward<Fn>(fn), read_options(), where);
  }

  // A token covering every write committed on the primary so far (one round trip).
  CausalToken current_token(std::source_location where = std::source_location::current());
  // A session: its writes record their token, its reads are causal on it.
  Session session();

  // The nodes in the cluster now (with Patroni: the members of the last list read),
  // each with its index for pool().
  std::vector<ClusterNodeStatus> nodes() const;
  // With patroni_urls: why the last reading of the member list failed (empty: it
  // succeeded). Also when no node is known yet, where nodes() has nothing to say it.
  std::string members_error() const;
  // Asks every node now and returns when that round is done.
  void refresh();
  // The pool of node `index` (ClusterNodeStatus::index; without Patroni the position in
  // nodes()).
  Pool& pool(std::size_t index) const;
  const ReadOptions& read_options() const noexcept;

  // Used by the templates above (not for direct use).
  struct Use {  // a lease on one node, counted in its outstanding leases
    Use() = default;
    Use(Use&&) noexcept;
    Use& operator=(Use&&) noexcept;
    ~Use();
    Lease lease;
    std::atomic<int>* outstanding = nullptr;
  };
  class ReadRoute;
  class WriteRoute;

 private:
  detail::ClusterCore* core_;
};

// Picks nodes for one read(): each node at most once, the primary last.
class Cluster::ReadRoute {
 public:
  ReadRoute(detail::ClusterCore& core, const ReadOptions& opts, std::source_location where);
  // The next node's lease; throws NoReplica / NoPrimary / the last error when none is left.
  Use next();
  // In a catch block for an error of fn or of next(): rethrows it unless it says the node
  // of the last next() is unreachable and another node is left.
  void failed();

 private:
  // Why node `i` cannot take this read now (the NoReplica message); nullptr: it can.
  const char* skip_reason(std::size_t i, Clock::time_point now, bool causal) const;

  detail::ClusterCore& core_;
  const ReadOptions& opts_;
  std::source_location where_;
  std::uint64_t tried_ = 0;  // bit per node
  bool primary_tried_ = false;
  bool causal_waited_ = false;  // one replica was given causal_wait already
  int current_ = -1;            // the node of the last next(), -1: none chosen
};

// Finds the primary for one write() or transaction(), within primary_wait.
class Cluster::WriteRoute {
 public:
  WriteRoute(detail::ClusterCore& core, std::source_location where);
  // The primary's index, waiting up to primary_wait; throws NoPrimary.
  std::size_t primary();
  // A lease on `node` (the primary() just found), within the pool's acquire_timeout.
  Use lease(std::size_t node);
  // For transaction(), whose lease Pool::transaction takes: counts it on `node` (its
  // writes, and an outstanding lease while the result lives).
  Use count(std::size_t node);
  // In a catch block: rethrows unless the error shows the node is not (or no longer) a
  // reachable primary and nothing of the work can have committed, with time left.
  void failed(std::size_t node, bool during_fn);

 private:
  detail::ClusterCore& core_;
  std::source_location where_;
  Clock::time_point until_;
};

// Read-your-writes for one client (a request, a user session): every write records
// the token of its commit, every read is causal on the latest. Copyable; copies share
// nothing (a copy starts from the same token). Not for two threads at once.
class Cluster::Session {
 public:
  explicit Session(Cluster& cluster) : cluster_(&cluster) {}
  // Cluster::write, then the token (one more round trip on the same connection).
  template <class Fn>
  detail::run_result_t<Fn> write(Fn&& fn,
                                 std::source_location where = std::source_location::current());
  // Cluster::transaction, then the token (one more round trip on the primary).
  template <class Fn>
  detail::transaction_result_t<Fn> transaction(
      Fn&& fn, TransactionOptions opts = {},
      std::source_location where = std::source_location::current());
  // Cluster::read with Consistency::causal on token() (unless opts asks for primary).
  template <class Fn>
  detail::run_result_t<Fn> read(Fn&& fn, ReadOptions opts,
                                std::source_location where = std::source_location::current());
  template <class Fn>
  detail::run_result_t<Fn> read(Fn&& fn,
                                std::source_location where = std::source_location::current()) {
    return read(std::forward<Fn>(fn), cluster_->read_options(), where);
  }
  CausalToken token() const noexcept { return token_; }
  // Adopts a token from elsewhere (another process's write), keeping the later one.
  void observe(CausalToken t) noexcept {
    if (t > token_) token_ = t;
  }

 private:
  Cluster* cluster_;
  CausalToken token_;
};

namespace detail {
// The token of the writes committed so far, read on `conn` (a primary's connection).
CausalToken read_token(Connection& conn);
}  // namespace detail

// --- templates ---------------------------------------------------------------------

template <class Fn>
detail::run_result_t<Fn> Cluster::write(Fn&& fn, std::source_location where) {
  WriteRoute route(*core_, where);
  for (;;) {
    std::size_t node = 0;
    bool during_fn = false;
    try {
      node = route.primary();
      Use use = route.lease(node);
      during_fn = true;
      return detail::invoke_run_body(fn, *use.lease, 1);
    } catch (const Error&) {
      route.failed(node, during_fn);
    }
  }
}

template <class Fn>
detail::transaction_result_t<Fn> Cluster::transaction(Fn&& fn, TransactionOptions opts,
                                                      std::source_location where) {
  WriteRoute route(*core_, where);
  for (;;) {
    std::size_t node = 0;
    try {
      node = route.primary();
      Use counted = route.count(node);
      return pool(node).transaction(fn, opts, where);
    } catch (const Error&) {
      route.failed(node, false);
    }
  }
}

template <class Fn>
detail::run_result_t<Fn> Cluster::read(Fn&& fn, const ReadOptions& opts,
                                       std::source_location where) {
  ReadRoute route(*core_, opts, where);
  for (;;) {
    try {
      Use use = route.next();
      return detail::invoke_run_body(fn, *use.lease, 1);
    } catch (const Error&) {
      route.failed();
    }
  }
}

template <class Fn>
detail::run_result_t<Fn> Cluster::Session::write(Fn&& fn, std::source_location where) {
  using R = detail::run_result_t<Fn>;
  return cluster_->write(
      [&](Connection& conn) -> R {
        if constexpr (std::is_void_v<R>) {
          detail::invoke_run_body(fn, conn, 1);
          observe(detail::read_token(conn));
        } else {
          R out = detail::invoke_run_body(fn, conn, 1);
          observe(detail::read_token(conn));
          return out;
        }
      },
      where);
}

template <class Fn>
detail::transaction_result_t<Fn> Cluster::Session::transaction(Fn&& fn, TransactionOptions opts,
                                                               std::source_location where) {
  using R = detail::transaction_result_t<Fn>;
  if constexpr (std::is_void_v<R>) {
    cluster_->transaction(std::forward<Fn>(fn), opts, where);
    observe(cluster_->current_token(where));
  } else {
    R out = cluster_->transaction(std::forward<Fn>(fn), opts, where);
    observe(cluster_->current_token(where));
    return out;
  }
}

template <class Fn>
detail::run_result_t<Fn> Cluster::Session::read(Fn&& fn, ReadOptions opts,
                                                std::source_location where) {
  if (opts.consistency != Consistency::primary) {
    opts.consistency = Consistency::causal;
    if (token_ > opts.after) opts.after = token_;
  }
  return cluster_->read(std::forward<Fn>(fn), opts, where);
}

}  // namespace usher
