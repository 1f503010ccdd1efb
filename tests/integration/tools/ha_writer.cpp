// ha_writer: a steady write load for the Patroni failover test (tests/integration/patroni.sh).
//
//   ha_writer CONNINFO ENDPOINTS LOG [WAIT_MS [FIRST_ID]]   (ENDPOINTS: host:port,... or http://...)
//
// Inserts ids FIRST_ID (default 1), FIRST_ID + 1, ... one transaction each into public.ha_writes(id, port) on
// the primary, through libusher's usher::Cluster (endpoints "host:port,host:port,...",
// or Patroni's REST URLs "http://host:port,..." as ClusterConfig::patroni_urls;
// primary_wait = WAIT_MS, health interval 200 ms). With USHER_HA_WRITER_POOL=1 in the
// environment it uses one usher::Pool on the libpq multi-host string with
// target_session_attrs=read-write instead (a failed write is retried for up to WAIT_MS,
// as primary_wait does): the comparison the test ran before Cluster's commit outcome
// was fixed. Every outcome is one line of LOG:
//
//   <unix ms> <id> ok <server port>     acknowledged (committed)
//   <unix ms> <id> fail <sqlstate> <message>     not committed (refused before or at COMMIT)
//   <unix ms> <id> unknown <sqlstate> <message>  commit outcome unknown (usher::CommitUnknown)
//
// It runs until SIGTERM/SIGINT, then exits 0. The log is flushed after every line so
// the test reads it while the writer runs.
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <usher/cluster.hpp>
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
std::string state(const usher::Error& e) { return e.sqlstate().empty() ? "-" : e.sqlstate(); }
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: ha_writer CONNINFO HOST:PORT,...|http://HOST:PORT,... LOG [WAIT_MS [FIRST_ID]]\n");
    return 2;
  }
  std::string conninfo = argv[1];
  auto endpoints = split(argv[2], ',');
  std::FILE* log = std::fopen(argv[3], "w");
  if (!log) { std::perror(argv[3]); return 2; }
  std::chrono::milliseconds wait{argc > 4 ? std::atol(argv[4]) : 0};
  long first_id = argc > 5 ? std::atol(argv[5]) : 1;
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
  // After a commit whose outcome is unknown: the id is the key, so writing it again is
  // idempotent -- the row (and the port of the server that committed it) if it was
  // committed, a new row if not.
  const std::string insert_again =
      "INSERT INTO public.ha_writes AS w (id, port) VALUES ($1, pg_catalog.inet_server_port()) "
      "ON CONFLICT (id) DO UPDATE SET port = w.port RETURNING port";

  const char* use_pool = std::getenv("USHER_HA_WRITER_POOL");
  std::function<int(long, bool)> write;
  std::unique_ptr<usher::Cluster> cluster;
  std::unique_ptr<usher::Pool> writer_pool;
  if (!use_pool || std::string(use_pool) != "1") {
    usher::ClusterConfig cfg;
    if (endpoints.front().starts_with("http://") || endpoints.front().starts_with("https://"))
      cfg.patroni_urls = endpoints;
    else
      cfg.endpoints = endpoints;
    pool.conninfo = conninfo;
    cfg.pool = pool;
    cfg.health_interval = std::chrono::milliseconds(200);
    cfg.health_timeout = std::chrono::seconds(1);
    cfg.primary_wait = wait;
    cluster = std::make_unique<usher::Cluster>(cfg);
    if (!cfg.patroni_urls.empty()) {  // on stdout: "# patroni N members, leader HOST:PORT"
      std::string leader = "none";
      for (const auto& n : cluster->nodes())
        if (n.patroni_role == "leader") leader = n.endpoint;
      std::printf("# patroni %zu members, leader %s%s\n", cluster->nodes().size(), leader.c_str(),
                  cluster->members_error().empty() ? "" : (" (" + cluster->members_error() + ")").c_str());
      std::fflush(stdout);
    }
    write = [&](long id, bool again) {
      return cluster->transaction(
          [&](usher::Connection& c) { return c.exec(again ? insert_again : insert, id).scalar<int>(); },
          topts);
    };
  } else {
    std::string hosts, ports;
    for (auto& e : endpoints) {
      auto colon = e.rfind(':');
      hosts += (hosts.empty() ? "" : ",") + e.substr(0, colon);
      ports += (ports.empty() ? "" : ",") + e.substr(colon + 1);
  }
  pool.conninfo = conninfo + " host=" + hosts + " port=" + ports +
                  " target_session_attrs=read-write";
  writer_pool = std::make_unique<usher::Pool>(pool);
  write = [&](long id, bool again) {
    auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      try {
        return writer_pool->transaction(
            [&](usher::Connection& c) { return c.exec(again ? insert_again : insert, id).scalar<int>(); },
            topts);
      } catch (const usher::CommitUnknown&) {
        throw;
      } catch (const usher::Error& e) {
        if (!usher::is_transient(e) || std::chrono::steady_clock::now() >= until || stop) throw;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  };
  }

  for (long id = first_id; !stop; ++id) {
    try {
      int port = write(id, false);
      std::fprintf(log, "%lld %ld ok %d\n", now_ms(), id, port);
    } catch (const usher::CommitUnknown& e) {
      // Waiting for the new primary (WAIT_MS > 0): resolve the outcome by writing the
      // same id again there, within WAIT_MS; logged "ok <port> resolved".
      auto until = std::chrono::steady_clock::now() + wait;
      bool resolved = false;
      while (!resolved && wait.count() > 0 && std::chrono::steady_clock::now() < until) {
        try {
          int port = write(id, true);
          std::fprintf(log, "%lld %ld ok %d resolved\n", now_ms(), id, port);
          resolved = true;
        } catch (const usher::Error&) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
      }
      if (resolved) {
        std::fflush(log);
        continue;
      }
      std::fprintf(log, "%lld %ld unknown %s %s\n", now_ms(), id, state(e).c_str(),
                   one_line(e.what()).c_str());
    } catch (const usher::Error& e) {
      std::fprintf(log, "%lld %ld fail %s %s\n", now_ms(), id, state(e).c_str(),
                   one_line(e.what()).c_str());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // no hot loop on refusals
    }
    std::fflush(log);
  }
  std::fclose(log);
  return 0;
}
