#pragma once
// usher::Cluster's state: the nodes (a pool each, and what the health thread last saw
// of them), the primary, the health thread and the primary's WAL history that time lag
// is measured against. Routing reads only atomics; the health thread writes them.
// With Patroni (ClusterConfig::patroni_urls) the health thread also adds nodes and
// takes them out of the cluster; a node's slot is never freed while the cluster lives.
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "usher/cluster.hpp"
#include "usher/patroni.hpp"

namespace usher::detail {

// What one probe of a node found (cluster_probe.cpp): the one place that knows how a
// node is asked (pg_is_in_recovery() and the WAL functions; usher.replication_status()
// can take over here).
struct ProbeResult {
  NodeRole role = NodeRole::unknown;
  Lsn lsn;  // standby: replay position; primary: flush position
  bool replay_paused = false;
};
// Asks `conn` within `deadline`: usher.replication_status() when `with_extension`, else
// pg_is_in_recovery() and the WAL position functions; throws as Connection::exec does.
ProbeResult probe_node(Connection& conn, Cluster::Clock::time_point deadline, bool with_extension);
// Whether pg_usher's usher.replication_status() exists in the connection's database and
// its user may call it (asked once per probe connection).
bool replication_status_usable(Connection& conn, Cluster::Clock::time_point deadline);
// Whether a standby reached `token`, asked on the connection that will run the read.
// nullopt: the node is not in recovery any more (promoted).
std::optional<Lsn> replay_position(Connection& conn);

struct ClusterNode {
  std::string endpoint;  // "host:port"
  std::unique_ptr<Pool> pool;

  std::atomic<int> role{static_cast<int>(NodeRole::unknown)};
  std::atomic<bool> healthy{false};
  // In the cluster: always without Patroni; with it, listed by the last member list
  // read (a node Patroni no longer lists keeps its slot, is not probed and takes no
  // request until it is listed again).
  std::atomic<bool> member{true};
  // Patroni names it the leader (in the last member list read).
  std::atomic<bool> patroni_leader{false};
  std::atomic<std::uint64_t> lsn{0};
  std::atomic<bool> replay_paused{false};
  std::atomic<bool> lag_known{false};
  std::atomic<std::uint64_t> lag_bytes{0};
  // steady_clock ticks since its epoch of the first primary sample this standby had not
  // replayed; 0: caught up with the latest sample.
  std::atomic<std::int64_t> behind_since{0};
  std::atomic<int> outstanding{0};
  std::atomic<std::uint64_t> reads{0}, writes{0};

  // The health thread's own connection (not from the pool: probes neither wait behind
  // nor count as the application's leases).
  Connection probe;
  std::atomic<bool> probe_extension{false};  // `probe` asks usher.replication_status()
  Cluster::Clock::time_point probed_at;  // when the last probe started
  mutable std::mutex error_mu;
  std::string last_error;
  // What Patroni's last member list said of it (under error_mu).
  std::string patroni_role, patroni_state;
  std::optional<std::uint64_t> patroni_lag;

  NodeRole current_role() const noexcept { return static_cast<NodeRole>(role.load()); }
  // How long this standby has been behind at `now` (zero: caught up).
  Cluster::Clock::duration behind_for(Cluster::Clock::time_point now) const noexcept {
    auto since = behind_since.load();
    return since == 0 ? Cluster::Clock::duration::zero()
                      : now - Cluster::Clock::time_point(Cluster::Clock::duration(since));
  }
  void set_error(std::string e) {
    std::lock_guard lk(error_mu);
    last_error = std::move(e);
  }
};

// The nodes: at most kMax, appended by one thread (the constructor, then the health
// thread), read by any: a slot below size() is set before size() counts it.
class NodeList {
 public:
  static constexpr std::size_t kMax = 64;
  using Slots = std::array<std::unique_ptr<ClusterNode>, kMax>;
  std::size_t size() const noexcept { return count_.load(std::memory_order_acquire); }
  ClusterNode* operator[](std::size_t i) const noexcept { return slots_[i].get(); }
  Slots::const_iterator begin() const noexcept { return slots_.begin(); }
  Slots::const_iterator end() const noexcept { return slots_.begin() + size(); }
  // Appends `node`; false when full.
  bool push(std::unique_ptr<ClusterNode> node) {
    auto n = count_.load(std::memory_order_relaxed);
    if (n == kMax) return false;
    slots_[n] = std::move(node);
    count_.store(n + 1, std::memory_order_release);
    return true;
  }

 private:
  Slots slots_;
  std::atomic<std::size_t> count_{0};
};

class ClusterCore {
 public:
  explicit ClusterCore(ClusterConfig config);
  ~ClusterCore();

  const ClusterConfig config;
  NodeList nodes;
  // Index of the node writes go to, -1: none known.
  std::atomic<int> primary{-1};

  // Runs a round now (the health thread does it) and waits until a round that started
  // after this call is done, or `until`.
  void refresh(Cluster::Clock::time_point until);
  // Asks for a round now without waiting.
  void poke();
  // A request found the node unreachable or not what it was taken for.
  void mark_failed(std::size_t node, const std::string& why);
  // Waits until a primary is known or `until`; returns its index or -1.
  int wait_for_primary(Cluster::Clock::time_point until);
  // A lease on `node` within `deadline` (nullopt: its pool's acquire_timeout).
  Cluster::Use lease_on(std::size_t node, std::optional<Cluster::Clock::time_point> deadline,
                        std::source_location where);
  // Why the last reading of Patroni's member list failed; empty: it succeeded (or no
  // patroni_urls).
  std::string members_error() const;
  // "; <endpoint>: <state> (<last error>)" for every member, and the member list's
  // error: the tail of a NoPrimary message.
  std::string describe_nodes() const;

 private:
  void health_loop();
  void round();
  // A node (its pool) for `host` and `port` (empty: the conninfo's), named `endpoint`.
  void add_node(const std::string& endpoint, const std::string& host, const std::string& port);
  // Reads Patroni's member list and makes the nodes follow it (health thread).
  void read_members();
  void probe(ClusterNode& node);
  void update_lag();
  void choose_primary();

  std::mutex mu_;
  std::condition_variable cv_;       // the health thread waits on it
  std::condition_variable done_cv_;  // refresh() and wait_for_primary() wait on it
  std::uint64_t rounds_started_ = 0, rounds_done_ = 0;
  bool poked_ = false, stop_ = false;
  // The primary's flush positions as probes saw them (health thread only).
  struct Sample {
    Cluster::Clock::time_point at;
    std::uint64_t lsn;
  };
  std::deque<Sample> samples_;
  bool had_primary_ = false;  // one was ever found (health thread only)
  bool has_hostaddr_ = false;  // pool.conninfo has a hostaddr: cleared per node
  // Patroni: the last member list read is current (the last read succeeded); false:
  // the roles come from the nodes alone (health thread only).
  bool members_fresh_ = false;
  mutable std::mutex members_mu_;
  std::string members_error_;
  std::thread thread_;
};

}  // namespace usher::detail
