// Login storm for the accounting invariant of pg_usher's login admission: many threads
// open connections for several services, as fast as the server takes them, and end
// each session a different way -- a normal close, a client that vanishes without the
// Terminate message, a backend killed with pg_terminate_backend, or a session kept open
// for a while. Some logins are refused by quotas, reservations or a full server.
//
//   login_storm ATTEMPTS THREADS SERVICE...   (connection settings from PG* variables;
//                                              PGUSER must not be a superuser)
//
// Prints one line of totals. Exits non-zero if a login failed for a reason other than
// pg_usher's refusals or PostgreSQL's own connection limits, so a crash or a wrong
// error cannot hide in the totals.
#include <libpq-fe.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Totals {
  std::atomic<long> attempts{0}, admitted{0}, refused_quota{0}, refused_reservation{0}, refused_full{0};
  // PostgreSQL's own limits: "too many clients" comes before pg_usher's login hook,
  // superuser-reserved slots and a pg_terminate_backend during startup come after it.
  std::atomic<long> server_full{0}, server_reserved{0}, killed_in_startup{0};
  std::atomic<long> closed{0}, vanished{0}, terminated{0}, kept{0}, unexpected{0};
};

Totals totals;
std::atomic<long> next_attempt{0};
long attempt_limit = 0;
std::mutex print_mutex;

// Sessions kept open, for the killer thread to terminate or their owner to close later.
std::mutex kept_mutex;
std::vector<PGconn*> kept_sessions;

// Terminated sessions and pg_terminate_backend of a backend that already left produce
// notices by the thousand; the totals say what happened.
void ignore_notice(void*, const char*) {}

// connect_timeout only guards against a hang (the script bounds the whole storm too): a
// login given up by the client may still be admitted by the server, and counted there.
// 10 s was too short once (3 logins of 10,000, fresh-clone run at 9ec692b): with both
// cores saturated by the storm's backends and the fuzz suite beside it, the postmaster,
// one process among dozens, forked slowly enough that logins queued for over 10 s.
PGconn* connect_as(const std::string& application_name) {
  const char* keys[] = {"application_name", "connect_timeout", nullptr};
  const char* values[] = {application_name.c_str(), "120", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/0);
  PQsetNoticeProcessor(conn, ignore_notice, nullptr);
  return conn;
}

void record_refusal(PGconn* conn) {
  std::string message = PQerrorMessage(conn);
  if (message.find("too many connections for service") != std::string::npos) {
    totals.refused_quota++;
  } else if (message.find("no connection slot for service") != std::string::npos &&
             message.find("the server is full") != std::string::npos) {
    totals.refused_full++;
  } else if (message.find("no connection slot for service") != std::string::npos) {
    totals.refused_reservation++;
  } else if (message.find("sorry, too many clients already") != std::string::npos) {
    totals.server_full++;
  } else if (message.find("remaining connection slots are reserved") != std::string::npos) {
    totals.server_reserved++;
  } else if (message.find("terminating connection due to administrator command") != std::string::npos) {
    totals.killed_in_startup++;
  } else {
    totals.unexpected++;
    std::lock_guard lock(print_mutex);
    std::fprintf(stderr, "unexpected login failure: %s", message.c_str());
  }
}

void end_session(PGconn* conn, int how) {
  switch (how) {
    case 0: {  // an ordinary query, then a clean close
      PGresult* r = PQexec(conn, "SELECT 1");
      PQclear(r);
      PQfinish(conn);
      totals.closed++;
      break;
    }
    case 1:  // the client vanishes: the socket closes without a Terminate message
      shutdown(PQsocket(conn), SHUT_RDWR);
      PQfinish(conn);
      totals.vanished++;
      break;
    default: {  // kept open; the killer thread or the end of the run ends it
      std::lock_guard lock(kept_mutex);
      kept_sessions.push_back(conn);
      totals.kept++;
      break;
    }
  }
}

void close_some_kept(std::mt19937& rng, size_t keep_at_most) {
  std::vector<PGconn*> to_close;
  {
    std::lock_guard lock(kept_mutex);
    while (kept_sessions.size() > keep_at_most) {
      size_t i = rng() % kept_sessions.size();
      to_close.push_back(kept_sessions[i]);
      kept_sessions[i] = kept_sessions.back();
      kept_sessions.pop_back();
    }
  }
  for (PGconn* c : to_close) PQfinish(c);
}

void storm_thread(int id, const std::vector<std::string>& services) {
  std::mt19937 rng(static_cast<unsigned>(id) * 7919u + 17u);
  for (;;) {
    long n = next_attempt++;
    if (n >= attempt_limit) break;
    const std::string& service = services[static_cast<size_t>(n) % services.size()];
    PGconn* conn = connect_as(service + "/storm-" + std::to_string(id));
    totals.attempts++;
    if (PQstatus(conn) != CONNECTION_OK) {
      record_refusal(conn);
      PQfinish(conn);
      continue;
    }
    totals.admitted++;
    end_session(conn, static_cast<int>(rng() % 3));
    close_some_kept(rng, 40);
  }
}

// Kills random storm sessions with pg_terminate_backend while the storm runs.
void killer_thread(std::atomic<bool>& running) {
  const char* keys[] = {"application_name", "user", nullptr};
  const char* values[] = {"storm-killer", std::getenv("STORM_ADMIN_USER"), nullptr};
  PGconn* admin = PQconnectdbParams(keys, values, 0);
  PQsetNoticeProcessor(admin, ignore_notice, nullptr);
  if (PQstatus(admin) != CONNECTION_OK) {
    std::fprintf(stderr, "killer: %s", PQerrorMessage(admin));
    totals.unexpected++;
    PQfinish(admin);
    return;
  }
  while (running) {
    PGresult* r = PQexec(admin,
                         "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE application_name LIKE '%/storm-%' ORDER BY random() LIMIT 1) t");
    if (PQresultStatus(r) == PGRES_TUPLES_OK) totals.terminated += std::atol(PQgetvalue(r, 0, 0));
    PQclear(r);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  PQfinish(admin);
}

// After the storm, the sessions kept open are what the caller compares counts against.
// The killer may have ended every one of them in its last rounds (how many survive
// depends on how fast the machine ran the storm), so the dead ones are closed and, once
// the killer has stopped, each service gets one more session kept open: at least one
// session is certainly open when the caller looks. A refusal counts like any other;
// "too many clients" may come from backends still exiting, so a refused login is retried
// for a few seconds.
void keep_one_per_service(const std::vector<std::string>& services) {
  std::lock_guard lock(kept_mutex);
  std::vector<PGconn*> alive;
  for (PGconn* c : kept_sessions) {
    PGresult* r = PQexec(c, "SELECT 1");
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
    if (ok) alive.push_back(c);
    else PQfinish(c);
  }
  kept_sessions = alive;
  for (const std::string& service : services) {
    for (int attempt = 0; attempt < 50; attempt++) {
      PGconn* conn = connect_as(service + "/storm-final");
      if (PQstatus(conn) == CONNECTION_OK) {
        totals.admitted++;
        totals.kept++;
        kept_sessions.push_back(conn);
        break;
      }
      std::string message = PQerrorMessage(conn);
      record_refusal(conn);
      PQfinish(conn);
      // pg_usher's refusals are final; PostgreSQL's own may be backends still exiting.
      if (message.find("too many clients already") == std::string::npos &&
          message.find("remaining connection slots are reserved") == std::string::npos)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s ATTEMPTS THREADS SERVICE...\n", argv[0]);
    return 2;
  }
  attempt_limit = std::atol(argv[1]);
  int thread_count = std::atoi(argv[2]);
  std::vector<std::string> services(argv + 3, argv + argc);

  std::atomic<bool> running{true};
  std::thread killer(killer_thread, std::ref(running));
  std::vector<std::thread> threads;
  for (int i = 0; i < thread_count; i++) threads.emplace_back(storm_thread, i, std::cref(services));
  for (auto& t : threads) t.join();
  running = false;
  killer.join();
  keep_one_per_service(services);

  // Sessions still kept stay open until told (so the caller can compare counts while
  // they are live), then close.
  std::printf("attempts=%ld admitted=%ld refused_quota=%ld refused_reservation=%ld refused_full=%ld "
              "server_full=%ld server_reserved=%ld killed_in_startup=%ld closed=%ld vanished=%ld kept=%ld "
              "terminated=%ld unexpected=%ld still_open=%zu\n",
              totals.attempts.load(), totals.admitted.load(), totals.refused_quota.load(),
              totals.refused_reservation.load(), totals.refused_full.load(), totals.server_full.load(),
              totals.server_reserved.load(),
              totals.killed_in_startup.load(), totals.closed.load(), totals.vanished.load(),
              totals.kept.load(), totals.terminated.load(), totals.unexpected.load(), kept_sessions.size());
  std::fflush(stdout);
  if (std::getenv("STORM_HOLD_UNTIL_EOF")) {
    int c;
    while ((c = std::getchar()) != EOF) {
    }
  }
  for (PGconn* c : kept_sessions) PQfinish(c);
  return totals.unexpected == 0 ? 0 : 1;
}
