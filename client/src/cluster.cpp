// usher::Cluster: the nodes and their pools, the health thread (roles, WAL positions,
// lag), and the routes of reads and writes.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>

#include "cluster_core.hpp"
#include "usher/redact.hpp"

namespace usher {
namespace {

using Clock = Cluster::Clock;
using std::chrono::milliseconds;

[[noreturn]] void bad_setting(std::string_view setting, std::string_view why) {
  throw std::invalid_argument(fmt::format("ClusterConfig.{}: {}", setting, why));
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::size_t from = 0;
  for (;;) {
    auto comma = s.find(',', from);
    out.push_back(s.substr(from, comma - from));
    if (comma == std::string::npos) return out;
    from = comma + 1;
  }
}

struct HostPort {
  std::string host, port;
};

// "host:port", "host", "[::1]:5432", "/run/postgresql:5433" (a socket directory).
HostPort parse_endpoint(const std::string& e) {
  HostPort hp;
  if (e.starts_with('[')) {
    auto close = e.find(']');
    if (close == std::string::npos) bad_setting("endpoints", fmt::format("'{}': no closing ']'", e));
    hp.host = e.substr(1, close - 1);
    if (close + 1 < e.size()) {
      if (e[close + 1] != ':') bad_setting("endpoints", fmt::format("'{}': ':port' expected after ']'", e));
      hp.port = e.substr(close + 2);
    }
  } else if (auto colon = e.rfind(':'); colon != std::string::npos) {
    hp.host = e.substr(0, colon);
    hp.port = e.substr(colon + 1);
  } else {
    hp.host = e;
  }
  if (hp.host.empty()) bad_setting("endpoints", fmt::format("'{}': no host", e));
  if (!hp.port.empty() &&
      (hp.port.size() > 5 || hp.port.find_first_not_of("0123456789") != std::string::npos ||
       std::stoi(hp.port) < 1 || std::stoi(hp.port) > 65535))
    bad_setting("endpoints", fmt::format("'{}': the port must be 1 to 65535", e));
  return hp;
}

// The host and port lists of a multi-host conninfo.
std::vector<HostPort> hosts_of(const std::string& conninfo, bool& has_hostaddr) {
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &err);
  if (!parsed) {
    PQfreemem(err);
    bad_setting("pool.conninfo", "cannot be parsed as keyword=value pairs or a postgresql:// URI");
  }
  std::string hosts, ports;
  for (auto* o = parsed; o->keyword; ++o) {
    if (!o->val) continue;
    std::string_view k = o->keyword;
    if (k == "host") hosts = o->val;
    if (k == "port") ports = o->val;
    if (k == "hostaddr" && *o->val) has_hostaddr = true;
  }
  PQconninfoFree(parsed);
  std::vector<HostPort> out;
  if (hosts.empty()) return out;
  auto h = split_commas(hosts);
  auto p = ports.empty() ? std::vector<std::string>{} : split_commas(ports);
  if (p.size() > 1 && p.size() != h.size())
    bad_setting("pool.conninfo", fmt::format("{} hosts but {} ports", h.size(), p.size()));
  for (std::size_t i = 0; i < h.size(); ++i)
    out.push_back({h[i], p.empty() ? "" : p.size() == 1 ? p[0] : p[i]});
  return out;
}

void log(const ClusterConfig& c, LogLevel level, const std::string& message) {
  if (c.pool.logger) {
    c.pool.logger(level, message);
  } else if (level >= LogLevel::warning) {
    std::fprintf(stderr, "usher cluster %s: %s\n", c.pool.name.c_str(), message.c_str());
  }
}

std::int64_t ticks(Clock::time_point t) { return t.time_since_epoch().count(); }

}  // namespace

void ClusterConfig::validate() const {
  if (health_interval <= ms::zero()) bad_setting("health_interval", "must be positive");
  if (health_timeout <= ms::zero()) bad_setting("health_timeout", "must be positive");
  if (primary_wait < ms::zero()) bad_setting("primary_wait", "must not be negative");
  if (read.causal_wait < ms::zero()) bad_setting("read.causal_wait", "must not be negative");
  if (read.max_lag_time && *read.max_lag_time < ms::zero())
    bad_setting("read.max_lag_time", "must not be negative");
  if (endpoints.size() > 64) bad_setting("endpoints", "at most 64 nodes");
  for (const auto& e : endpoints) parse_endpoint(e);
  if (!patroni_urls.empty() && !endpoints.empty())
    bad_setting("patroni_urls", "give either endpoints or patroni_urls, not both");
  for (const auto& u : patroni_urls)
    if (!u.starts_with("http://") && !u.starts_with("https://"))
      bad_setting("patroni_urls", fmt::format("'{}': only http:// and https:// URLs", redact_url(u)));
  pool.validate();
}

namespace detail {

ClusterCore::ClusterCore(ClusterConfig c) : config(std::move(c)) {
  config.validate();
  std::vector<HostPort> hosts;
  if (!config.patroni_urls.empty()) {
    hosts_of(config.pool.conninfo, has_hostaddr_);  // the nodes come from Patroni (round())
  } else if (config.endpoints.empty()) {
    hosts = hosts_of(config.pool.conninfo, has_hostaddr_);
    if (hosts.empty())
      bad_setting("endpoints", "empty, and pool.conninfo names no host: give the nodes");
    if (hosts.size() > NodeList::kMax) bad_setting("pool.conninfo", "at most 64 hosts");
  } else {
    hosts_of(config.pool.conninfo, has_hostaddr_);
    for (const auto& e : config.endpoints) hosts.push_back(parse_endpoint(e));
  }
  for (const auto& hp : hosts)
    add_node(hp.port.empty() ? hp.host : fmt::format("{}:{}", hp.host, hp.port), hp.host, hp.port);
  round();
  thread_ = std::thread([this] { health_loop(); });
}

void ClusterCore::add_node(const std::string& endpoint, const std::string& host, const std::string& port) {
  auto node = std::make_unique<ClusterNode>();
  node->endpoint = endpoint;
  PoolConfig pc = config.pool;
  pc.name = fmt::format("{}@{}", config.pool.name, node->endpoint);
  if (pc.application_name.empty()) pc.application_name = config.pool.effective_application_name();
  pc.options.emplace_back("host", host);
  if (!port.empty()) pc.options.emplace_back("port", port);
  if (has_hostaddr_) pc.options.emplace_back("hostaddr", "");
  pc.options.emplace_back("target_session_attrs", "any");
  node->pool = std::make_unique<Pool>(std::move(pc));
  if (!nodes.push(std::move(node)))
    throw PatroniError(PatroniError::Kind::bad_members,
                       fmt::format("Patroni /cluster: {} would be node {}: a cluster has at most {} (nodes that "
                                   "left keep their slot)", endpoint, NodeList::kMax + 1, NodeList::kMax));
}

// Patroni says who is in the cluster (a node it stops listing takes no more requests,
// one it starts listing gets a pool) and who leads; the nodes' own probes still say
// what each is (choose_primary). A failed read keeps the last list.
void ClusterCore::read_members() {
  std::vector<PatroniMember> members;
  try {
    members = read_patroni_members(config.patroni_urls, config.health_timeout);
    std::vector<ClusterNode*> listed;
    for (const auto& m : members) {
      auto endpoint = m.endpoint();
      ClusterNode* found = nullptr;
      for (const auto& n : nodes)
        if (n->endpoint == endpoint) found = n.get();
      if (!found) {
        add_node(endpoint, m.host, m.port ? std::to_string(*m.port) : std::string());
        found = nodes[nodes.size() - 1];
        log(config, LogLevel::info, fmt::format("{}: joined (Patroni {})", endpoint, m.role));
      } else if (!found->member) {
        log(config, LogLevel::info, fmt::format("{}: back (Patroni {})", endpoint, m.role));
      }
      {
        std::lock_guard lk(found->error_mu);
        found->patroni_role = m.role;
        found->patroni_state = m.state;
        found->patroni_lag = m.lag_bytes;
      }
      found->patroni_leader = m.role == "leader";
      found->member = true;
      listed.push_back(found);
    }
    for (const auto& n : nodes) {
      if (std::find(listed.begin(), listed.end(), n.get()) != listed.end() || !n->member) continue;
      n->member = false;
      n->patroni_leader = false;
      n->healthy = false;
      n->probe = Connection();
      {
        std::lock_guard lk(n->error_mu);
        n->patroni_role.clear();
        n->patroni_state.clear();
        n->patroni_lag.reset();
      }
      log(config, LogLevel::warning, fmt::format("{}: left (no longer a Patroni member)", n->endpoint));
    }
    members_fresh_ = true;
    bool was_failing = false;
    {
      std::lock_guard lk(members_mu_);
      was_failing = !members_error_.empty();
      members_error_.clear();
    }
    if (was_failing) log(config, LogLevel::info, "Patroni's member list read again");
  } catch (const PatroniError& e) {
    members_fresh_ = false;
    bool news = false;
    {
      std::lock_guard lk(members_mu_);
      news = members_error_.empty();
      members_error_ = e.what();
    }
    if (news)  // the logger may ask the cluster (members_error()): not under members_mu_
      log(config, LogLevel::warning,
          fmt::format("Patroni's member list: {} (keeping the last one; roles from the nodes alone)", e.what()));
  }
}

std::string ClusterCore::members_error() const {
  std::lock_guard lk(members_mu_);
  return members_error_;
}

std::string ClusterCore::describe_nodes() const {
  std::string why;
  for (const auto& n : nodes) {
    if (!n->member) continue;
    std::lock_guard lk(n->error_mu);
    why += fmt::format("; {}: {}{}", n->endpoint, n->healthy ? to_string(n->current_role()) : "unhealthy",
                       n->last_error.empty() ? "" : " (" + n->last_error + ")");
  }
  if (auto e = members_error(); !e.empty()) why += "; Patroni: " + e;
  else if (!config.patroni_urls.empty() && nodes.size() == 0) why += "; Patroni lists no member";
  return why;
}

ClusterCore::~ClusterCore() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  for (auto& n : nodes) n->pool->close(std::chrono::seconds(0));
}

void ClusterCore::health_loop() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, config.health_interval, [&] { return stop_ || poked_; });
    if (stop_) break;
    poked_ = false;
    ++rounds_started_;
    lk.unlock();
    try {
      round();
    } catch (const std::exception& e) {  // a bug; the thread must not die of it
      log(config, LogLevel::error, fmt::format("health round failed: {}", e.what()));
    }
    lk.lock();
    ++rounds_done_;
    done_cv_.notify_all();
  }
}

void ClusterCore::poke() {
  {
    std::lock_guard lk(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

void ClusterCore::refresh(Clock::time_point until) {
  std::unique_lock lk(mu_);
  auto target = rounds_started_ + 1;
  poked_ = true;
  cv_.notify_all();
  done_cv_.wait_until(lk, until, [&] { return stop_ || rounds_done_ >= target; });
}

int ClusterCore::wait_for_primary(Clock::time_point until) {
  int p = primary.load();
  if (p >= 0 || Clock::now() >= until) return p;
  poke();
  std::unique_lock lk(mu_);
  done_cv_.wait_until(lk, until, [&] { return stop_ || primary.load() >= 0; });
  return primary.load();
}

void ClusterCore::mark_failed(std::size_t index, const std::string& why) {
  auto& n = *nodes[index];
  n.healthy = false;
  n.set_error(why);
  int expected = static_cast<int>(index);
  primary.compare_exchange_strong(expected, -1);
  poke();
}

void ClusterCore::probe(ClusterNode& n) {
  auto start = Clock::now();
  auto deadline = start + config.health_timeout;
  auto open = [&] {
    const auto& pc = n.pool->config();
    auto options = pc.options;
    options.emplace_back("application_name", pc.effective_application_name());
    n.probe = Connection::open(pc.conninfo, options, ConnectLimits{deadline, config.health_timeout, -1});
    n.probe_extension = replication_status_usable(n.probe, deadline);
  };
  // With pg_usher: its answer; an error other than the connection's (the extension
  // dropped, its grant revoked) falls back to PostgreSQL's functions at once.
  auto ask = [&] {
    if (n.probe_extension) {
      try {
        return probe_node(n.probe, deadline, true);
      } catch (const ConnectionError&) {
        throw;
      } catch (const Error&) {
        n.probe_extension = false;
      }
    }
    return probe_node(n.probe, deadline, false);
  };
  try {
    bool reused = n.probe.is_open();
    if (!reused) open();
    ProbeResult p;
    try {
      p = ask();
    } catch (const ConnectionError&) {
      if (!reused) throw;
      open();  // the node restarted since the last probe: one new connection, at once
      p = ask();
    }
    auto was = n.current_role();
    n.role = static_cast<int>(p.role);
    n.lsn = p.lsn.value;
    n.replay_paused = p.replay_paused;
    bool was_healthy = n.healthy.exchange(true);
    n.set_error({});
    if (was != p.role || !was_healthy)
      log(config, LogLevel::info, fmt::format("{}: {}, healthy", n.endpoint, to_string(p.role)));
    n.probed_at = start;
  } catch (const std::exception& e) {
    n.probe = Connection();
    if (n.healthy.exchange(false))
      log(config, LogLevel::warning, fmt::format("{}: unhealthy: {}", n.endpoint, e.what()));
    n.set_error(redact_conninfo(e.what()));
  }
}

// A node takes the writes when it answers as primary; with Patroni's member list
// current, also only if Patroni names it the leader (a node in recovery is never one,
// whatever Patroni says; a primary Patroni does not name, such as an old leader not yet
// demoted, is not one either). With the list stale (no URL answers), the nodes alone.
void ClusterCore::choose_primary() {
  int cur = primary.load();
  const bool by_patroni = !config.patroni_urls.empty() && members_fresh_;
  auto is_primary = [&](int i) {
    return i >= 0 && nodes[i]->member && nodes[i]->healthy && nodes[i]->current_role() == NodeRole::primary &&
           (!by_patroni || nodes[i]->patroni_leader);
  };
  int chosen = -1;
  if (is_primary(cur)) {
    chosen = cur;
  } else {
    for (std::size_t i = 0; i < nodes.size(); ++i)
      if (is_primary(static_cast<int>(i))) {
        chosen = static_cast<int>(i);
        break;
      }
  }
  if (chosen != cur) {
    samples_.clear();  // another primary's positions (a new timeline)
    // The first one found is news; a change of primary, or none, is a warning.
    auto level = cur < 0 && chosen >= 0 && !had_primary_ ? LogLevel::info : LogLevel::warning;
    if (chosen >= 0)
      log(config, level, fmt::format("primary is now {}", nodes[chosen]->endpoint));
    else
      log(config, level, "no primary known (no node answers as primary)");
    had_primary_ = had_primary_ || chosen >= 0;
  }
  primary = chosen;
}

// Time lag: a standby at replay position R has been behind since the first sample of the
// primary's flush position above R (it has been missing WAL the primary had since then);
// none above R: caught up. Bytes: the latest sample minus R.
void ClusterCore::update_lag() {
  int p = primary.load();
  if (p >= 0) {
    auto& n = *nodes[p];
    std::uint64_t l = n.lsn;
    if (samples_.empty() || samples_.back().lsn < l) samples_.push_back({n.probed_at, l});
  }
  std::uint64_t min_replay = UINT64_MAX;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto& n = *nodes[i];
    if (static_cast<int>(i) == p || !n.member || n.current_role() != NodeRole::standby) {
      n.lag_known = false;
      continue;
    }
    if (samples_.empty()) {
      n.lag_known = false;
      continue;
    }
    std::uint64_t r = n.lsn;
    min_replay = std::min(min_replay, r);
    auto it = std::find_if(samples_.begin(), samples_.end(), [&](const Sample& s) { return s.lsn > r; });
    n.behind_since = it == samples_.end() ? 0 : ticks(it->at);
    n.lag_bytes = samples_.back().lsn > r ? samples_.back().lsn - r : 0;
    n.lag_known = true;
  }
  // Keep the last sample at or below every standby's position, and those after it.
  while (samples_.size() > 1 && samples_[1].lsn <= min_replay) samples_.pop_front();
  while (samples_.size() > 100000) samples_.pop_front();
}

void ClusterCore::round() {
  if (!config.patroni_urls.empty()) read_members();
  for (const auto& n : nodes)
    if (n->member) probe(*n);
  choose_primary();
  update_lag();
}

Cluster::Use ClusterCore::lease_on(std::size_t index, std::optional<Clock::time_point> deadline,
                                   std::source_location where) {
  auto& n = *nodes[index];
  Cluster::Use use;
  use.lease = deadline ? n.pool->acquire(*deadline, where) : n.pool->acquire(where);
  use.outstanding = &n.outstanding;
  ++n.outstanding;
  return use;
}

}  // namespace detail

// --- Cluster -------------------------------------------------------------------------

Cluster::Use::Use(Use&& o) noexcept
    : lease(std::move(o.lease)), outstanding(std::exchange(o.outstanding, nullptr)) {}

Cluster::Use& Cluster::Use::operator=(Use&& o) noexcept {
  if (this != &o) {
    if (outstanding) --*outstanding;
    lease = std::move(o.lease);
    outstanding = std::exchange(o.outstanding, nullptr);
  }
  return *this;
}

Cluster::Use::~Use() {
  lease.release();
  if (outstanding) --*outstanding;
}

Cluster::Cluster(ClusterConfig config) : core_(new detail::ClusterCore(std::move(config))) {}

Cluster::~Cluster() { delete core_; }

Pool& Cluster::pool(std::size_t index) const {
  if (index >= core_->nodes.size())
    throw std::out_of_range(fmt::format("Cluster::pool({}): the cluster has {} nodes", index, core_->nodes.size()));
  return *core_->nodes[index]->pool;
}

const ReadOptions& Cluster::read_options() const noexcept { return core_->config.read; }

Cluster::Session Cluster::session() { return Session(*this); }

void Cluster::refresh() {
  core_->refresh(Clock::now() + core_->config.health_timeout *
                                    (core_->nodes.size() + core_->config.patroni_urls.size() + 1));
}

std::vector<ClusterNodeStatus> Cluster::nodes() const {
  std::vector<ClusterNodeStatus> out;
  auto now = Clock::now();
  int p = core_->primary.load();
  auto members_error = core_->members_error();
  for (std::size_t i = 0; i < core_->nodes.size(); ++i) {
    const auto& n = *core_->nodes[i];
    if (!n.member) continue;
    ClusterNodeStatus s;
    s.index = i;
    s.members_error = members_error;
    s.endpoint = n.endpoint;
    s.role = n.current_role();
    s.healthy = n.healthy;
    s.is_primary = static_cast<int>(i) == p;
    s.lsn = Lsn{n.lsn};
    if (n.lag_known) {
      s.lag_bytes = n.lag_bytes.load();
      s.lag_time = std::chrono::duration_cast<milliseconds>(n.behind_for(now));
    }
    s.replay_paused = n.replay_paused;
    s.probe_extension = n.probe_extension;
    s.outstanding = n.outstanding;
    s.reads = n.reads;
    s.writes = n.writes;
    {
      std::lock_guard lk(n.error_mu);
      s.last_error = n.last_error;
      s.patroni_role = n.patroni_role;
      s.patroni_state = n.patroni_state;
      s.patroni_lag_bytes = n.patroni_lag;
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string Cluster::members_error() const { return core_->members_error(); }

CausalToken Cluster::current_token(std::source_location where) {
  WriteRoute route(*core_, where);
  for (;;) {
    std::size_t node = 0;
    try {
      node = route.primary();
      // Not one of the node's writes: a read, safe to ask again elsewhere.
      Use use = core_->lease_on(node, std::nullopt, where);
      return detail::read_token(*use.lease);
    } catch (const Error&) {
      route.failed(node, false);
    }
  }
}

// --- WriteRoute ----------------------------------------------------------------------

Cluster::WriteRoute::WriteRoute(detail::ClusterCore& core, std::source_location where)
    : core_(core), where_(where), until_(Clock::now() + core.config.primary_wait) {}

std::size_t Cluster::WriteRoute::primary() {
  int p = core_.wait_for_primary(until_);
  if (p >= 0) return static_cast<std::size_t>(p);
  std::string why = core_.describe_nodes();
  throw NoPrimary(fmt::format("cluster {}: no primary{}{}", core_.config.pool.name,
                              core_.config.primary_wait.count() > 0
                                  ? fmt::format(" within primary_wait ({} ms)", core_.config.primary_wait.count())
                                  : "",
                              why),
                  "08000");
}

Cluster::Use Cluster::WriteRoute::lease(std::size_t p) {
  Use use = core_.lease_on(p, std::nullopt, where_);
  ++core_.nodes[p]->writes;
  return use;
}

Cluster::Use Cluster::WriteRoute::count(std::size_t p) {
  auto& n = *core_.nodes[p];
  Use use;
  use.outstanding = &n.outstanding;
  ++n.outstanding;
  ++n.writes;
  return use;
}

void Cluster::WriteRoute::failed(std::size_t node, bool during_fn) {
  auto retry_or_rethrow = [&] {
    if (Clock::now() >= until_) throw;
  };
  try {
    throw;
  } catch (const NoPrimary&) {
    throw;
  } catch (const CommitUnknown&) {
    throw;
  } catch (const CommitRolledBack&) {  // a COMMIT was sent: never run again elsewhere
    throw;
  } catch (const ReadOnlySqlTransaction&) {
    // A standby now, or a read-only transaction asked for by the caller: ask the node.
    core_.refresh(std::max(until_, Clock::now() + core_.config.health_timeout));
    if (core_.primary.load() == static_cast<int>(node)) throw;
    retry_or_rethrow();
  } catch (const CircuitOpen& e) {
    core_.mark_failed(node, e.what());
    retry_or_rethrow();
  } catch (const PoolTimeout& e) {
    core_.mark_failed(node, e.what());
    retry_or_rethrow();
  } catch (const ConnectionError& e) {
    if (during_fn) {  // a statement may have run: its outcome is unknown
      core_.poke();
      throw;
    }
    core_.mark_failed(node, e.what());
    retry_or_rethrow();
  }
}

// --- ReadRoute -----------------------------------------------------------------------

Cluster::ReadRoute::ReadRoute(detail::ClusterCore& core, const ReadOptions& opts,
                              std::source_location where)
    : core_(core), opts_(opts), where_(where) {}

Cluster::Use Cluster::ReadRoute::next() {
  current_ = -1;
  auto now = Clock::now();
  const bool causal = opts_.consistency == Consistency::causal && opts_.after;
  if (opts_.consistency != Consistency::primary) {
    for (;;) {
      int best = -1;
      bool best_caught_up = false;
      int best_load = 0;
      for (std::size_t i = 0; i < core_.nodes.size(); ++i) {
        if (skip_reason(i, now, causal)) continue;
        auto& n = *core_.nodes[i];
        bool caught_up = !causal || Lsn{n.lsn} >= opts_.after;
        int load = n.outstanding;
        if (best < 0 || (caught_up && !best_caught_up) ||
            (caught_up == best_caught_up && load < best_load)) {
          best = static_cast<int>(i);
          best_caught_up = caught_up;
          best_load = load;
        }
      }
      if (best < 0) break;
      auto& n = *core_.nodes[best];
      tried_ |= std::uint64_t(1) << best;
      current_ = best;
      auto deadline = Clock::now() + std::min(n.pool->config().acquire_timeout, core_.config.health_timeout);
      Use use = core_.lease_on(static_cast<std::size_t>(best), deadline, where_);
      if (!best_caught_up) {
        // Poll the replay position on the connection that will run the read.
        causal_waited_ = true;
        auto until = Clock::now() + opts_.causal_wait;
        auto pause = std::chrono::microseconds(200);
        bool reached = false;
        for (;;) {
          auto pos = detail::replay_position(*use.lease);
          if (!pos) break;  // promoted: the role changes at the next round
          auto seen = n.lsn.load();
          while (pos->value > seen && !n.lsn.compare_exchange_weak(seen, pos->value)) {
          }
          if (*pos >= opts_.after) {
            reached = true;
            break;
          }
          if (Clock::now() + pause > until) break;
          std::this_thread::sleep_for(pause);
          pause = std::min(pause * 2, std::chrono::microseconds(5000));
        }
        if (!reached) continue;  // `use` goes back; the next replica, or the fallback
      }
      ++n.reads;
      return use;
    }
    if (opts_.fallback == ReadFallback::fail) {
      std::string why;
      for (std::size_t i = 0; i < core_.nodes.size(); ++i) {
        const char* reason = skip_reason(i, now, causal);
        if (!core_.nodes[i]->member) continue;
        why += fmt::format("; {}: {}", core_.nodes[i]->endpoint, reason ? reason : "qualifies now");
      }
      throw NoReplica(fmt::format("cluster {}: no replica qualifies for this read{}{}",
                                  core_.config.pool.name,
                                  causal ? fmt::format(" (causal after {})", opts_.after.to_string()) : "",
                                  why));
    }
  }
  if (primary_tried_)
    throw NoPrimary(fmt::format("cluster {}: the read failed on every node", core_.config.pool.name), "08000");
  primary_tried_ = true;
  int p = core_.wait_for_primary(Clock::now() + core_.config.primary_wait);
  if (p < 0)
    throw NoPrimary(fmt::format("cluster {}: no replica qualifies and no primary is known{}",
                                core_.config.pool.name, core_.describe_nodes()), "08000");
  current_ = p;
  Use use = core_.lease_on(static_cast<std::size_t>(p), std::nullopt, where_);
  ++core_.nodes[p]->reads;
  return use;
}

const char* Cluster::ReadRoute::skip_reason(std::size_t i, Clock::time_point now, bool causal) const {
  const auto& n = *core_.nodes[i];
  if (!n.member) return "not a member (Patroni no longer lists it)";
  if (static_cast<int>(i) == core_.primary.load()) return "the primary";
  if (!n.healthy) return "unhealthy";
  if (n.current_role() != NodeRole::standby) return "not a standby";
  if (tried_ & (std::uint64_t(1) << i))
    return "tried for this read (no connection, or the token not replayed within causal_wait)";
  if ((opts_.max_lag_bytes || opts_.max_lag_time) && !n.lag_known) return "lag not known yet";
  if (opts_.max_lag_bytes && n.lag_bytes > *opts_.max_lag_bytes) return "behind by more than max_lag_bytes";
  if (opts_.max_lag_time && n.behind_for(now) > *opts_.max_lag_time)
    return "behind for longer than max_lag_time";
  if (causal && causal_waited_ && Lsn{n.lsn} < opts_.after)
    return "has not replayed the token (and another replica had causal_wait already)";
  return nullptr;
}

void Cluster::ReadRoute::failed() {
  int node = current_;
  try {
    throw;
  } catch (const NoPrimary&) {
    throw;
  } catch (const CircuitOpen& e) {
    if (node < 0 || primary_tried_) throw;
    core_.mark_failed(static_cast<std::size_t>(node), e.what());
  } catch (const PoolTimeout& e) {
    if (node < 0 || primary_tried_) throw;
    core_.mark_failed(static_cast<std::size_t>(node), e.what());
  } catch (const ConnectionError& e) {
    if (node < 0 || primary_tried_) {
      core_.poke();
      throw;
    }
    core_.mark_failed(static_cast<std::size_t>(node), e.what());
  }
}

}  // namespace usher
