// What both load generators share (usher_load on libpq's non-blocking API, usher_pool_load
// on libusher pools): the 7 services and their mix, the quota sampler, percentiles and
// the output lines. docs/load.md describes the mix and the checks.
#pragma once
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace load {

struct Service {
  const char* name;
  int weight;        // users per 1,000
  double think_s;    // mean think time between two transactions of one user
  const char* sql;   // %d: a random key 1..1000 (libpq generator: the whole transaction)
};

// The mix: weights sum to 1,000; offered rate = users / think.
inline const Service kServices[] = {
    {"auth", 170, 4.0, "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = 'app' AND %d > 0"},
    {"orders", 210, 4.0,
     "BEGIN; INSERT INTO public.load_orders(item, amount) VALUES (%d, 10);"
     " UPDATE public.load_items SET stock = stock - 1 WHERE id = %d; COMMIT"},
    {"payments", 130, 4.0,
     "BEGIN; INSERT INTO public.load_payments(order_ref, amount) VALUES (%d, 10); COMMIT"},
    {"inventory", 170, 3.0, "SELECT stock FROM public.load_items WHERE id = %d"},
    {"search", 210, 3.0,
     "SELECT id, name FROM public.load_items WHERE name OPERATOR(pg_catalog.~~) 'item %d%%'"
     " ORDER BY id LIMIT 20"},
    {"notifications", 80, 6.0, "INSERT INTO public.load_notifications(ref) VALUES (%d)"},
    {"reporting", 30, 6.0,
     "SELECT count(*), sum(g %% %d) FROM pg_catalog.generate_series(1, 300000) g"},
};
constexpr int kNumServices = sizeof(kServices) / sizeof(kServices[0]);

// Users per service by weight; every service gets at least one; rounding goes to orders.
inline std::vector<int> users_per_service(int nusers) {
  std::vector<int> counts(kNumServices);
  int assigned = 0;
  for (int s = 0; s < kNumServices; s++) {
    counts[s] = std::max(1, nusers * kServices[s].weight / 1000);
    assigned += counts[s];
  }
  counts[1] += nusers - assigned;
  return counts;
}

inline double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t i = static_cast<size_t>(std::ceil(p * v.size())) - 1;
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

// Reads usher.service_status every 200 ms over its own connection and keeps each
// service's highest `current` beside its max_connections (-1: none).
class QuotaSampler {
 public:
  explicit QuotaSampler(std::string conninfo) {
    if (conninfo.empty()) return;
    thread_ = std::thread([this, conninfo] {
      PGconn* c = PQconnectdb(conninfo.c_str());
      if (PQstatus(c) != CONNECTION_OK) {
        std::fprintf(stderr, "usher_load: sampler cannot connect: %s", PQerrorMessage(c));
        PQfinish(c);
        return;
      }
      while (!stop_) {
        PGresult* r = PQexec(c,
                             "SELECT service, current, coalesce(max_connections, -1)"
                             " FROM usher.service_status");
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
          for (int i = 0; i < PQntuples(r); i++) {
            auto& e = sampled_[PQgetvalue(r, i, 0)];
            e.first = std::max(e.first, std::atol(PQgetvalue(r, i, 1)));
            e.second = std::atol(PQgetvalue(r, i, 2));
          }
        PQclear(r);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      PQfinish(c);
    });
  }
  // Stops sampling; then max_current/quota may be read.
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  ~QuotaSampler() { stop(); }
  std::pair<long, long> of(const char* service) const {
    auto it = sampled_.find(service);
    return it == sampled_.end() ? std::pair<long, long>{-1, -1} : it->second;
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::map<std::string, std::pair<long, long>> sampled_;  // service -> (max current, quota)
};

// One "service ..." line; the latencies are reordered.
inline void print_service(int s, int users, std::vector<double>& lat, long errors, double duration,
                          double scale, const QuotaSampler& sampler) {
  auto [max_current, quota] = sampler.of(kServices[s].name);
  std::printf(
      "service %s users %d tx %zu errors %ld offered %.0f p50_ms %.2f p99_ms %.2f p999_ms %.2f"
      " max_current %ld quota %ld\n",
      kServices[s].name, users, lat.size(), errors, users * duration / (kServices[s].think_s * scale),
      percentile(lat, 0.50), percentile(lat, 0.99), percentile(lat, 0.999), max_current, quota);
}

}  // namespace load
