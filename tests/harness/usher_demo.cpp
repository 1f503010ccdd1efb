// The client half of `make demo` (tests/harness/demo.sh), on libusher. demo.sh compiles
// it against build/client/libusher.a when it runs (nothing else builds it):
//
//   usher_demo burst   CONNINFO APPLICATION_NAME N   opens N connections at once; prints
//                      each refusal with its SQLSTATE (a service's quota at work)
//   usher_demo latency CONNINFO SECONDS              orders' short transactions one after
//                      another for SECONDS; prints count, p50 and p99 in ms
//   usher_demo flood   CONNINFO CLIENTS SECONDS      CLIENTS reporting connections running
//                      a heavy query in a loop for SECONDS (cancelled at the end)
//   usher_demo leak    CONNINFO                      a pool of service payments lends a
//                      connection that is never given back: the leak report (source
//                      location, thread, holder) is printed, the lease stays out until
//                      standard input closes
//   usher_demo advice  CONNINFO SERVICE INSTANCES    a pool sized from usher.pool_advice():
//                      prints the advice it applied and the sizes in force
//
// Nothing here is a test: the figures are measured and printed, never asserted.
#include <usher/usher.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

int burst(const std::string& conninfo, const std::string& app, int n) {
  std::vector<usher::Connection> held;
  for (int i = 1; i <= n; ++i) {
    try {
      held.push_back(usher::Connection::open(conninfo, {{"application_name", app}}, Clock::now() + 10s));
      std::printf("  connection %d: admitted\n", i);
    } catch (const usher::DatabaseError& e) {
      std::printf("  connection %d: refused: %s %s: %s\n", i, e.fields().severity.c_str(), e.sqlstate().c_str(),
                  e.fields().message.c_str());
    }
  }
  return 0;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

int latency(const std::string& conninfo, double seconds) {
  auto conn = usher::Connection::open(conninfo, {{"application_name", "orders/checkout"}}, Clock::now() + 10s);
  std::vector<double> ms;
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int id = 1; Clock::now() < end; ++id) {
    auto t0 = Clock::now();
    conn.exec("BEGIN");
    conn.exec("INSERT INTO public.demo_orders(item, amount) VALUES ($1, $2)", id % 100, 10 + id % 7);
    conn.exec("SELECT count(*) FROM public.demo_orders WHERE item = $1", id % 100);
    conn.exec("COMMIT");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::size_t n = ms.size();
  double p50 = percentile(ms, 0.50), p99 = percentile(ms, 0.99);
  std::printf("orders: %zu transactions in %.0f s, p50 %.2f ms, p99 %.2f ms\n", n, seconds, p50, p99);
  return 0;
}

int flood(const std::string& conninfo, int clients, double seconds) {
  auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::atomic<long> done{0}, errors{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c)
    threads.emplace_back([&, c] {
      try {
        auto conn = usher::Connection::open(
            conninfo, {{"application_name", "reporting/batch-" + std::to_string(c + 1)}}, Clock::now() + 10s);
        while (Clock::now() < end) {
          usher::ExecOptions options;
          options.deadline = end;  // a statement still queued or running at the end is cancelled
          options.cancel_wait = 10s;
          try {
            conn.exec(options, "SELECT count(*) FROM generate_series(1, 2000000) g WHERE g % 7 = 3");
            ++done;
          } catch (const usher::QueryCanceled&) {
            break;
          } catch (const usher::ConnectionError&) {
            if (Clock::now() < end) throw;
            break;  // the cancel's answer came too late on a busy machine: closed, as asked
          }
        }
      } catch (const std::exception& e) {
        if (++errors == 1) std::fprintf(stderr, "flood: %s\n", e.what());
      }
    });
  for (auto& t : threads) t.join();
  std::printf("reporting flood: %d clients, %ld heavy queries finished in %.0f s, %ld errors\n", clients,
              done.load(), seconds, errors.load());
  return errors ? 1 : 0;
}

// The leaking code: a request handler that borrows a connection and keeps it.
std::optional<usher::Lease> forgotten;
void handle_checkout(usher::Pool& pool) {
  auto lease = pool.acquire();  // this line is the holder pg_usher and the report name
  lease->exec("SELECT 'reserved cart 42'");
  forgotten = std::move(lease);  // stored "for later" and never returned: a leak
}

int leak(const std::string& conninfo) {
  usher::PoolConfig config;
  config.conninfo = conninfo;
  config.name = "payments";
  config.service = "payments";
  config.min_idle = 1;
  config.max_size = 2;
  config.leak_detection_threshold = 1s;
  config.maintenance_interval = 200ms;
  std::mutex m;
  std::optional<usher::LeakInfo> reported;
  config.logger = [](usher::LogLevel level, std::string_view message) {
    if (level >= usher::LogLevel::warning) std::printf("  pool log (%s): %.*s\n", std::string(usher::to_string(level)).c_str(),
                                                      static_cast<int>(message.size()), message.data());
    std::fflush(stdout);
  };
  config.on_event = [&](const usher::PoolEvent& e) {
    if (e.type == usher::PoolEventType::leak && e.leak) {
      std::lock_guard g(m);
      reported = *e.leak;
    }
  };
  usher::Pool pool(config);
  handle_checkout(pool);
  for (auto deadline = Clock::now() + 10s; Clock::now() < deadline;) {
    {
      std::lock_guard g(m);
      if (reported) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  std::lock_guard g(m);
  if (!reported) {
    std::printf("no leak reported within 10 s\n");
    return 1;
  }
  std::printf("  leak event: backend %d, acquired at %s:%u in %s, held %lld ms, holder \"%s\"\n",
              reported->backend_pid, reported->where.file_name(), reported->where.line(),
              reported->where.function_name(),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(reported->held).count()),
              reported->holder.c_str());
  std::printf("LEAK REPORTED\n");
  std::fflush(stdout);
  // Held until the demo closes our standard input: then the lease goes back.
  for (int c; (c = std::getchar()) != EOF;) {
  }
  forgotten.reset();
  return 0;
}

int advice(const std::string& conninfo, const std::string& service, int instances) {
  usher::PoolConfig config;
  config.conninfo = conninfo;
  config.name = service + "-sized";
  config.service = service;
  config.min_idle = 0;
  config.max_size = 50;  // the ceiling; the advice decides below it
  config.size_from_advice = true;
  config.advice_instances = instances;
  std::string applied;
  std::mutex m;
  config.on_event = [&](const usher::PoolEvent& e) {
    if (e.type == usher::PoolEventType::advice) {
      std::lock_guard g(m);
      applied = e.reason;
    }
  };
  usher::Pool pool(config);
  { auto c = pool.acquire(); }  // the first connection reads the advice
  auto a = pool.advice();
  auto s = pool.stats();
  std::lock_guard g(m);
  std::printf("  advice event: %s\n", applied.c_str());
  if (a)
    std::printf("  pool %s now runs with max_size %zu, min_idle %zu (advice for %d instance(s): %s)\n",
                config.name.c_str(), s.max_size, s.min_idle, a->client_instances, a->basis.c_str());
  return a ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() == 4 && a[0] == "burst") return burst(a[1], a[2], std::stoi(a[3]));
    if (a.size() == 3 && a[0] == "latency") return latency(a[1], std::stod(a[2]));
    if (a.size() == 4 && a[0] == "flood") return flood(a[1], std::stoi(a[2]), std::stod(a[3]));
    if (a.size() == 2 && a[0] == "leak") return leak(a[1]);
    if (a.size() == 4 && a[0] == "advice") return advice(a[1], a[2], std::stoi(a[3]));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "usher_demo: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "usage: usher_demo burst|latency|flood|leak|advice CONNINFO ... (see the source)\n");
  return 64;
}
