// usher_load: N simulated users across the 7 services (auth, orders, payments,
// inventory, search, notifications, reporting), each user one client connection
// (through PgBouncer: one PgBouncer client each), driven by a few threads with libpq's
// non-blocking API: a thread polls its users' sockets and wakes each user when its think
// time is over, so 1,200 users need no 1,200 OS threads. Each service has its own mix:
// short OLTP transactions for orders and payments, reads for search, inventory and auth,
// inserts for notifications, a heavy aggregate for reporting. See docs/load.md.
//
//   usher_load --conninfo 'host=/bouncer port=6432 user=app dbname=%s'
//              --users 1200 --duration 30 [--threads 2] [--think-scale 1.0]
//              [--sampler 'host=/server port=5432 user=postgres dbname=postgres']
//
// %s in --conninfo is replaced by the service name (PgBouncer's alias per service);
// application_name is <service>/load. The sampler reads usher.service_status every
// 200 ms and keeps each service's highest `current` (the quota check).
//
// Output, one line per service (then a "total" line), space-separated:
//   service NAME users U tx T errors E offered O p50_ms A p99_ms B p999_ms C
//           max_current M quota Q
// offered = users x duration / think time (what the service asks for when it is served
// at once). The first error message of each service goes to stderr. Exit status: 0 after
// the run (the caller checks the figures), 2 on usage errors, 1 when users cannot connect.
#include <libpq-fe.h>
#include <poll.h>

#include "load_common.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {
using Clock = std::chrono::steady_clock;
using load::kNumServices;
using load::kServices;

struct User {
  int service;
  PGconn* conn = nullptr;
  Clock::time_point wake;
  Clock::time_point sent;
  bool busy = false;
  bool failed = false;  // an error result in the current transaction
  std::mt19937 rng;
};

struct Stats {
  std::vector<double> latency_ms[kNumServices];
  long errors[kNumServices] = {};
  std::string first_error[kNumServices];
};

double think(User& u, double scale) {
  std::uniform_real_distribution<double> d(0.5, 1.5);
  return kServices[u.service].think_s * scale * d(u.rng);
}

void send(User& u, Stats& st) {
  std::uniform_int_distribution<int> key(1, 1000);
  int k = key(u.rng);
  char sql[512];
  std::snprintf(sql, sizeof sql, kServices[u.service].sql, k, k);
  u.sent = Clock::now();
  u.failed = false;
  if (!PQsendQuery(u.conn, sql)) {
    st.errors[u.service]++;
    if (st.first_error[u.service].empty()) st.first_error[u.service] = PQerrorMessage(u.conn);
    u.failed = true;
    return;
  }
  PQflush(u.conn);
  u.busy = true;
}

// Drives `users` until `end`, then waits (up to `drain`) for the transactions in flight.
void drive(std::vector<User*> users, Clock::time_point end, Clock::time_point drain, double scale,
           Stats& st) {
  std::vector<pollfd> fds;
  std::vector<User*> polled;
  for (;;) {
    auto now = Clock::now();
    bool running = now < end;
    Clock::time_point next = running ? end : drain;
    int in_flight = 0;
    fds.clear();
    polled.clear();
    for (User* u : users) {
      if (u->conn == nullptr) continue;
      if (!u->busy && running && u->wake <= now) send(*u, st);
      if (u->busy) {
        fds.push_back({PQsocket(u->conn), POLLIN, 0});
        polled.push_back(u);
        in_flight++;
      } else if (running && u->failed) {
        u->wake = now + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(think(*u, scale)));
        u->failed = false;
      }
      if (!u->busy && running) next = std::min(next, u->wake);
    }
    if (!running && (in_flight == 0 || now >= drain)) return;
    int timeout = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count());
    if (poll(fds.data(), fds.size(), std::max(0, std::min(timeout, 100))) < 0) continue;
    for (size_t i = 0; i < fds.size(); i++) {
      if (!(fds[i].revents & (POLLIN | POLLERR | POLLHUP))) continue;
      User& u = *polled[i];
      if (!PQconsumeInput(u.conn)) {
        st.errors[u.service]++;
        if (st.first_error[u.service].empty()) st.first_error[u.service] = PQerrorMessage(u.conn);
        PQfinish(u.conn);
        u.conn = nullptr;
        continue;
      }
      while (!PQisBusy(u.conn)) {
        PGresult* r = PQgetResult(u.conn);
        if (r == nullptr) {
          u.busy = false;
          break;
        }
        if (PQresultStatus(r) == PGRES_FATAL_ERROR) {
          if (!u.failed) st.errors[u.service]++;
          if (st.first_error[u.service].empty())
            st.first_error[u.service] = PQresultErrorMessage(r);
          u.failed = true;
        }
        PQclear(r);
      }
      if (!u.busy) {
        auto done = Clock::now();
        if (!u.failed)
          st.latency_ms[u.service].push_back(
              std::chrono::duration<double, std::milli>(done - u.sent).count());
        u.failed = false;
        u.wake = done + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(think(u, scale)));
      }
    }
  }
}

void usage() {
  std::fprintf(stderr,
               "usage: usher_load --conninfo CONNINFO_WITH_%%s [--users N] [--duration S]"
               " [--threads T] [--think-scale X] [--sampler CONNINFO]\n");
  std::exit(2);
}
}  // namespace

int main(int argc, char** argv) {
  std::string conninfo, sampler_conninfo;
  int nusers = 1200, threads = 2;
  double duration = 30, scale = 1.0;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--conninfo") conninfo = argv[++i];
    else if (a == "--users") nusers = std::atoi(argv[++i]);
    else if (a == "--duration") duration = std::atof(argv[++i]);
    else if (a == "--threads") threads = std::max(1, std::atoi(argv[++i]));
    else if (a == "--think-scale") scale = std::atof(argv[++i]);
    else if (a == "--sampler") sampler_conninfo = argv[++i];
    else usage();
  }
  if (conninfo.find("%s") == std::string::npos || nusers < kNumServices) usage();

  std::vector<User> users;
  users.reserve(nusers);
  std::vector<int> counts = load::users_per_service(nusers);
  for (int s = 0; s < kNumServices; s++)
    for (int j = 0; j < counts[s]; j++) {
      User u;
      u.service = s;
      u.rng.seed(static_cast<unsigned>(users.size() * 7919 + 17));
      users.push_back(std::move(u));
    }

  // Connect every user (blocking: PgBouncer accepts a client in well under a millisecond).
  for (User& u : users) {
    std::string ci = conninfo;
    ci.replace(ci.find("%s"), 2, kServices[u.service].name);
    ci += std::string(" application_name=") + kServices[u.service].name + "/load";
    u.conn = PQconnectdb(ci.c_str());
    if (PQstatus(u.conn) != CONNECTION_OK) {
      std::fprintf(stderr, "usher_load: user %zu of %s cannot connect: %s",
                   static_cast<size_t>(&u - users.data()), kServices[u.service].name,
                   PQerrorMessage(u.conn));
      return 1;
    }
    PQsetnonblocking(u.conn, 1);
  }

  load::QuotaSampler sampler(sampler_conninfo);

  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
  auto drain = end + std::chrono::seconds(30);
  // First transaction of each user spread over its first think time.
  for (User& u : users) {
    std::uniform_real_distribution<double> d(0, kServices[u.service].think_s * scale);
    u.wake = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(d(u.rng)));
  }
  std::vector<Stats> stats(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; t++) {
    std::vector<User*> mine;
    for (size_t i = t; i < users.size(); i += threads) mine.push_back(&users[i]);
    workers.emplace_back(drive, std::move(mine), end, drain, scale, std::ref(stats[t]));
  }
  for (auto& w : workers) w.join();
  sampler.stop();
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  long total_tx = 0, total_err = 0;
  for (int s = 0; s < kNumServices; s++) {
    std::vector<double> lat;
    long errors = 0;
    for (auto& st : stats) {
      lat.insert(lat.end(), st.latency_ms[s].begin(), st.latency_ms[s].end());
      errors += st.errors[s];
      if (!st.first_error[s].empty())
        std::fprintf(stderr, "usher_load: %s: %s", kServices[s].name, st.first_error[s].c_str());
    }
    total_tx += static_cast<long>(lat.size());
    total_err += errors;
    load::print_service(s, counts[s], lat, errors, duration, scale, sampler);
  }
  std::printf("total users %zu tx %ld errors %ld tps %.1f elapsed_s %.1f\n", users.size(), total_tx,
              total_err, total_tx / duration, elapsed);
  for (User& u : users)
    if (u.conn) PQfinish(u.conn);
  return 0;
}
