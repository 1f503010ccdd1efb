// usher_pool_load: the load generator on libusher. N simulated users of the 7 services
// (the mix of usher_load, load_common.hpp) borrow per transaction from one usher::Pool
// per service, as an application tier does: users -> the service's pool -> (PgBouncer or
// the server). docs/load.md has the design and the modes:
//   (a) PgBouncer in transaction mode in front of a server with pg_usher:
//       --conninfo 'host=/bouncer port=6432 user=app dbname=%s' --transaction-pooler
//   (b) per-service pools direct to the server with pg_usher:
//       --conninfo 'host=/server port=5432 user=app dbname=postgres'
//   (c) PgBouncer in front of a server without pg_usher: as (a).
//
//   usher_pool_load --conninfo CONNINFO [--users 2000] [--duration 30] [--pool-size 4]
//                   [--think-scale 1.0] [--transaction-pooler] [--advice]
//                   [--scale-service NAME=X] [--pool-size-of NAME=N] [--sampler CONNINFO]
//
// Users are tasks, not threads: a scheduler thread keeps every user's next due time in
// a heap and hands due transactions to its service's FIFO queue; each service has as
// many worker threads as its pool has connections, and a worker borrows a connection
// per transaction (pool.transaction or a lease for one statement). A user's latency runs
// from the moment its transaction was due, so time queued for a connection counts.
// %s in --conninfo is replaced by the service name (PgBouncer's alias per service).
// --scale-service reporting=0.05 multiplies one service's think time (the reporting
// flood); --pool-size-of reporting=24 gives one service's pool another size.
// Output: the lines of usher_load (service ..., total ...). Exit status: 0 after the run,
// 2 on usage errors, 1 when a pool cannot start.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "load_common.hpp"
#include "usher/usher.hpp"

namespace {
using Clock = std::chrono::steady_clock;
using load::kNumServices;
using load::kServices;

struct Due {
  Clock::time_point at;
  int user;
  bool operator>(const Due& o) const { return at > o.at; }
};

// A service's due transactions, first come first served.
struct RunQueue {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Due> due;
  bool closed = false;
};

struct ServiceStats {
  std::mutex mu;
  std::vector<double> latency_ms;
  long errors = 0;
  std::string first_error;
};

struct User {
  int service;
  std::mt19937 rng;
};

Clock::duration seconds(double s) {
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}

// One transaction of service s with key k on `pool`.
void run_one(usher::Pool& pool, int s, int k) {
  switch (s) {
    case 0:
      pool.acquire()->exec("SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = 'app' AND $1::int > 0", k);
      break;
    case 1:
      pool.transaction([&](usher::Transaction& tx) {
        tx.exec("INSERT INTO public.load_orders(item, amount) VALUES ($1::int, 10)", k);
        tx.exec("UPDATE public.load_items SET stock = stock - 1 WHERE id = $1::int", k);
      });
      break;
    case 2:
      pool.transaction([&](usher::Transaction& tx) {
        tx.exec("INSERT INTO public.load_payments(order_ref, amount) VALUES ($1::int, 10)", k);
      });
      break;
    case 3:
      pool.acquire()->exec("SELECT stock FROM public.load_items WHERE id = $1::int", k);
      break;
    case 4:
      pool.acquire()->exec(
          "SELECT id, name FROM public.load_items WHERE name OPERATOR(pg_catalog.~~) $1 ORDER BY id LIMIT 20",
          "item " + std::to_string(k) + "%");
      break;
    case 5:
      pool.acquire()->exec("INSERT INTO public.load_notifications(ref) VALUES ($1::int)", k);
      break;
    default:
      pool.acquire()->exec("SELECT count(*), sum(g % $1::int) FROM pg_catalog.generate_series(1, 300000) g", k);
      break;
  }
}

void usage() {
  std::fprintf(stderr,
               "usage: usher_pool_load --conninfo CONNINFO [--users N] [--duration S] [--pool-size N]"
               " [--think-scale X] [--transaction-pooler] [--advice] [--scale-service NAME=X] [--pool-size-of NAME=N]"
               " [--sampler CONNINFO]\n");
  std::exit(2);
}
}  // namespace

int main(int argc, char** argv) {
  std::string conninfo, sampler_conninfo;
  int nusers = 2000, pool_size = 4;
  double duration = 30, scale = 1.0;
  bool tx_pooler = false, advice = false;
  double service_scale[kNumServices];
  std::fill(service_scale, service_scale + kNumServices, 1.0);
  int service_pool[kNumServices] = {};  // 0: --pool-size
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "--transaction-pooler") { tx_pooler = true; continue; }
    if (a == "--advice") { advice = true; continue; }
    if (i + 1 >= argc) usage();
    if (a == "--conninfo") conninfo = argv[++i];
    else if (a == "--users") nusers = std::atoi(argv[++i]);
    else if (a == "--duration") duration = std::atof(argv[++i]);
    else if (a == "--pool-size") pool_size = std::max(1, std::atoi(argv[++i]));
    else if (a == "--think-scale") scale = std::atof(argv[++i]);
    else if (a == "--sampler") sampler_conninfo = argv[++i];
    else if (a == "--scale-service" || a == "--pool-size-of") {
      std::string v = argv[++i];
      auto eq = v.find('=');
      int s = 0;
      while (s < kNumServices && (eq == std::string::npos || v.substr(0, eq) != kServices[s].name)) s++;
      if (s == kNumServices) usage();
      if (a == "--scale-service") service_scale[s] = std::atof(v.c_str() + eq + 1);
      else service_pool[s] = std::max(1, std::atoi(v.c_str() + eq + 1));
    } else usage();
  }
  if (conninfo.empty() || nusers < kNumServices || scale <= 0) usage();

  std::vector<int> counts = load::users_per_service(nusers);
  std::vector<User> users;
  for (int s = 0; s < kNumServices; s++)
    for (int j = 0; j < counts[s]; j++)
      users.push_back(User{s, std::mt19937(static_cast<unsigned>(users.size() * 7919 + 17))});
  auto think = [&](User& u) {
    std::uniform_real_distribution<double> d(0.5, 1.5);
    return kServices[u.service].think_s * scale * service_scale[u.service] * d(u.rng);
  };

  // One pool per service, opened in full before the run.
  std::vector<std::unique_ptr<usher::Pool>> pools;
  for (int s = 0; s < kNumServices; s++) {
    usher::PoolConfig c;
    c.conninfo = conninfo;
    if (auto at = c.conninfo.find("%s"); at != std::string::npos) c.conninfo.replace(at, 2, kServices[s].name);
    c.name = "load";
    c.service = kServices[s].name;  // application_name <service>/load
    c.min_idle = c.max_size = static_cast<std::size_t>(service_pool[s] ? service_pool[s] : pool_size);
    c.acquire_timeout = std::chrono::seconds(60);
    c.connect_timeout = std::chrono::seconds(10);
    // The borrowers leave no session state (docs/client.md: then `none`); behind
    // PgBouncer transaction_pooler turns leases and resets off in any case.
    c.session_reset = usher::SessionReset::none;
    c.transaction_pooler = tx_pooler;
    c.size_from_advice = advice;
    // The generator counts every failure itself; an open breaker would turn a burst of
    // refusals into a burst of CircuitOpen.
    c.breaker_enabled = false;
    try {
      pools.push_back(std::make_unique<usher::Pool>(c));
      pools.back()->acquire();  // the first connection proves the address
    } catch (const std::exception& e) {
      std::fprintf(stderr, "usher_pool_load: the pool of %s cannot start: %s\n", kServices[s].name, e.what());
      return 1;
    }
  }
  // Workers per service: as many as its pool lends at once.
  std::vector<int> workers_of(kNumServices);
  for (int s = 0; s < kNumServices; s++)
    workers_of[s] = static_cast<int>(std::max<std::size_t>(1, pools[s]->stats().max_size));

  load::QuotaSampler sampler(sampler_conninfo);
  auto start = Clock::now();
  auto end = start + seconds(duration);

  std::mutex heap_mu;
  std::condition_variable heap_cv;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> heap;
  for (size_t i = 0; i < users.size(); i++) {
    std::uniform_real_distribution<double> d(0, kServices[users[i].service].think_s * scale *
                                                    service_scale[users[i].service]);
    heap.push(Due{start + seconds(d(users[i].rng)), static_cast<int>(i)});
  }
  std::vector<RunQueue> queues(kNumServices);
  std::vector<ServiceStats> stats(kNumServices);

  std::thread scheduler([&] {
    std::unique_lock lock(heap_mu);
    for (;;) {
      auto now = Clock::now();
      if (now >= end) break;
      while (!heap.empty() && heap.top().at <= now) {
        Due d = heap.top();
        heap.pop();
        RunQueue& q = queues[users[d.user].service];
        {
          std::lock_guard ql(q.mu);
          q.due.push_back(d);
        }
        q.cv.notify_one();
      }
      heap_cv.wait_until(lock, heap.empty() ? end : std::min(end, heap.top().at));
    }
    for (auto& q : queues) {
      std::lock_guard ql(q.mu);
      q.closed = true;
      q.cv.notify_all();
    }
  });

  std::vector<std::thread> workers;
  for (int s = 0; s < kNumServices; s++)
    for (int w = 0; w < workers_of[s]; w++)
      workers.emplace_back([&, s] {
        RunQueue& q = queues[s];
        ServiceStats& st = stats[s];
        std::vector<double> mine;
        long errors = 0;
        for (;;) {
          Due d;
          {
            std::unique_lock ql(q.mu);
            q.cv.wait(ql, [&] { return q.closed || !q.due.empty(); });
            if (q.closed) break;  // nothing starts after the end
            d = q.due.front();
            q.due.pop_front();
          }
          User& u = users[d.user];
          int k = std::uniform_int_distribution<int>(1, 1000)(u.rng);
          try {
            run_one(*pools[s], s, k);
            mine.push_back(std::chrono::duration<double, std::milli>(Clock::now() - d.at).count());
          } catch (const std::exception& e) {
            errors++;
            std::lock_guard sl(st.mu);
            if (st.first_error.empty()) st.first_error = e.what();
          }
          auto next = Clock::now() + seconds(think(u));
          if (next < end) {
            bool earliest;
            {
              std::lock_guard hl(heap_mu);
              earliest = heap.empty() || next < heap.top().at;
              heap.push(Due{next, d.user});
            }
            if (earliest) heap_cv.notify_one();
          }
        }
        std::lock_guard sl(st.mu);
        st.latency_ms.insert(st.latency_ms.end(), mine.begin(), mine.end());
        st.errors += errors;
      });
  scheduler.join();
  for (auto& w : workers) w.join();
  sampler.stop();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  long total_tx = 0, total_err = 0;
  for (int s = 0; s < kNumServices; s++) {
    if (!stats[s].first_error.empty())
      std::fprintf(stderr, "usher_pool_load: %s: %s\n", kServices[s].name, stats[s].first_error.c_str());
    total_tx += static_cast<long>(stats[s].latency_ms.size());
    total_err += stats[s].errors;
    load::print_service(s, counts[s], stats[s].latency_ms, stats[s].errors, duration,
                        scale * service_scale[s], sampler);
  }
  std::printf("total users %zu tx %ld errors %ld tps %.1f elapsed_s %.1f\n", users.size(), total_tx, total_err,
              total_tx / duration, elapsed);
  return 0;
}
