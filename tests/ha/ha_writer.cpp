// ha_writer: a steady write load for the Patroni failover test (tests/ha/patroni.sh).
//
//   ha_writer CONNINFO ENDPOINTS LOG [WAIT_MS]
//
// Inserts ids 1, 2, 3, ... one transaction each into public.ha_writes(id, port) on
// the primary, through libusher: usher::Cluster when this libusher has it (endpoints
// "host:port,host:port,...", primary_wait = WAIT_MS), else one usher::Pool on the libpq
// multi-host string with target_session_attrs=read-write (a failed write is retried
// for up to WAIT_MS, as primary_wait does). Every outcome is one line of LOG:
//
//   <unix ms> <id> ok <server port>     acknowledged (committed)
//   <unix ms> <id> fail <sqlstate>      not committed (refused before or at COMMIT)
//   <unix ms> <id> unknown <sqlstate>   commit outcome unknown (usher::CommitUnknown)
//
// It runs until SIGTERM/SIGINT, then exits 0. The log is flushed after every line so
// the test reads it while the writer runs.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#if __has_include(<usher/cluster.hpp>)
#include <usher/cluster.hpp>
#define HA_WRITER_CLUSTER 1
#endif
#include <usher/usher.hpp>

namespace {
std::atomic<bool> stop{false};
void on_signal(int) { stop = true; }

long long now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::size_t start = 0;
  for (;;) {
    auto end = s.find(sep, start);
    out.push_back(s.substr(start, end - start));
    if (end == std::string::npos) return out;
    start = end + 1;
  }
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: ha_writer CONNINFO HOST:PORT,... LOG [WAIT_MS]\n");
    return 2;
  }
  std::string conninfo = argv[1];
  auto endpoints = split(argv[2], ',');
  std::FILE* log = std::fopen(argv[3], "w");
  if (!log) { std::perror(argv[3]); return 2; }
  std::chrono::milliseconds wait{argc > 4 ? std::atol(argv[4]) : 0};
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);

  usher::PoolConfig pool;
  pool.name = "ha_writer";
  pool.application_name = "ha_writer";
  pool.min_idle = 1;
  pool.max_size = 2;
  pool.connect_timeout = std::chrono::seconds(2);
  pool.acquire_timeout = std::chrono::seconds(2);
  pool.breaker_enabled = false;  // the writer counts every refusal itself
  usher::TransactionOptions topts;
  topts.max_attempts = 1;
  const std::string insert =
      "INSERT INTO public.ha_writes(id, port) VALUES ($1, pg_catalog.inet_server_port()) "
      "RETURNING port";

#ifdef HA_WRITER_CLUSTER
  usher::ClusterConfig cfg;
  cfg.endpoints = endpoints;
  pool.conninfo = conninfo;
  cfg.pool = pool;
  cfg.health_interval = std::chrono::milliseconds(200);
  cfg.health_timeout = std::chrono::seconds(1);
  cfg.primary_wait = wait;
  usher::Cluster cluster(cfg);
  auto write = [&](long id) {
    return cluster.transaction(
        [&](usher::Connection& c) { return c.exec(insert, id).scalar<int>(); }, topts);
  };
#else
  std::string hosts, ports;
  for (auto& e : endpoints) {
    auto colon = e.rfind(':');
    hosts += (hosts.empty() ? "" : ",") + e.substr(0, colon);
    ports += (ports.empty() ? "" : ",") + e.substr(colon + 1);
  }
  pool.conninfo = conninfo + " host=" + hosts + " port=" + ports +
                  " target_session_attrs=read-write";
  usher::Pool writer_pool(pool);
  auto write = [&](long id) {
    auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      try {
        return writer_pool.transaction(
            [&](usher::Connection& c) { return c.exec(insert, id).scalar<int>(); }, topts);
      } catch (const usher::CommitUnknown&) {
        throw;
      } catch (const usher::Error& e) {
        if (!usher::is_transient(e) || std::chrono::steady_clock::now() >= until || stop) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  };
#endif

  for (long id = 1; !stop; ++id) {
    try {
      int port = write(id);
      std::fprintf(log, "%lld %ld ok %d\n", now_ms(), id, port);
    } catch (const usher::CommitUnknown& e) {
      std::fprintf(log, "%lld %ld unknown %s\n", now_ms(), id, e.sqlstate().c_str());
    } catch (const usher::Error& e) {
      std::fprintf(log, "%lld %ld fail %s\n", now_ms(), id,
                   e.sqlstate().empty() ? "-" : e.sqlstate().c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // no hot loop on refusals
    }
    std::fflush(log);
  }
  std::fclose(log);
  return 0;
}
