#pragma once
// usher::Cluster's state: the nodes (a pool each, and what the health thread last saw
// of them), the primary, the health thread and the primary's WAL history that time lag
// is measured against. Routing reads only atomics; the health thread writes them.
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

class ClusterCore {
 public:
  explicit ClusterCore(ClusterConfig config);
  ~ClusterCore();

  const ClusterConfig config;
  std::vector<std::unique_ptr<ClusterNode>> nodes;
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

 private:
  void health_loop();
  void round();
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
  std::thread thread_;
};

}  // namespace usher::detail
