#pragma once
// Shared helpers of the libusher tests: configuration for a fast pool, waiting for a
// condition (a liveness bound, never a timing assertion), an admin connection for
// looking at the server from outside the pool, and an event recorder.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "usher/usher.hpp"

namespace usher::test {

using namespace std::chrono_literals;

// Upper bound for waiting on something that must happen (USHER_TEST_WAIT_MS, default
// 30000): generous because sanitizer builds on two cores are slow.
std::chrono::milliseconds wait_limit();

// Polls `condition` every few milliseconds until it holds or wait_limit() passes.
bool eventually(const std::function<bool()>& condition);

// A pool configuration for tests: PG* environment, a unique name (and so a unique
// application_name to find its backends by), short maintenance interval, min_idle 0
// and max_size 4.
PoolConfig test_config(const std::string& name);

// The pool's size, where a test sets it: test_config("name", {.min_idle = 1, .max_size = 1}).
struct PoolSize {
  std::size_t min_idle = 0;
  std::size_t max_size = 4;
};
PoolConfig test_config(const std::string& name, PoolSize size);

// Server-side view, through a connection of its own.
class Admin {
 public:
  Admin();
  // Backends whose application_name is `app`.
  long backends(const std::string& app);
  std::vector<int> backend_pids(const std::string& app);
  void terminate(int pid);  // pg_terminate_backend and wait until it is gone
  bool has_extension_leases();
  Connection& conn() { return conn_; }
  // SELECT count(*) FROM `table` (a name the test wrote, never input).
  long count_rows(const std::string& table);

 private:
  Connection conn_;
};

struct RecordedEvent {
  PoolEventType type;
  std::uint64_t connection_id;
  std::string reason;
  std::optional<LeakInfo> leak;
};

// The PgBouncer 1.18 in transaction mode with two server connections that
// tests/suites/client.sh starts in front of the suite's cluster (USHER_TEST_PGBOUNCER),
// or nullptr: the test skips.
const char* pgbouncer_conninfo();

// Moves what runs next through that bouncer to its other server connection,
// deterministically: while a transaction of its own holds server X, on_y() runs (Y is
// the only one free); then another holds Y and X is let go, and on_x(X's backend pid)
// runs (X is the only one free).
void bouncer_hop(const std::function<void()>& on_y, const std::function<void(int x)>& on_x);

// Thread-safe recorder to plug into PoolConfig::on_event (callback()), or that plugs
// itself into a configuration: EventRecorder events(config). It must outlive the pools
// made from that configuration.
class EventRecorder {
 public:
  EventRecorder() = default;
  explicit EventRecorder(PoolConfig& config) { config.on_event = callback(); }
  EventCallback callback();
  std::vector<RecordedEvent> events() const;
  std::size_t count(PoolEventType type) const;
  std::size_t count(PoolEventType type, std::string_view reason) const;
  // Every event, "type #connection: reason; ...": for a failing assertion's message.
  std::string describe() const;

 private:
  mutable std::mutex mu_;
  std::vector<RecordedEvent> events_;
};

// A TCP listener on 127.0.0.1 that never accepts: the kernel completes the handshake,
// then nothing answers -- a host that "accepts TCP but never answers".
class SilentServer {
 public:
  SilentServer();
  ~SilentServer();
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;

  int port() const { return port_; }
  // Blocks until a client's handshake has completed (a connection waits in the backlog).
  bool wait_for_client() const;
  // Accepts (and closes) every connection waiting in the backlog; returns how many.
  int take_pending();

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Waits until the pool has `idle` idle connections and nothing pending.
bool wait_idle(const Pool& pool, std::size_t idle);

// Transaction options whose retries wait 1-5 ms, for tests that make them happen.
TransactionOptions fast_retries(int max_attempts);

// libpq's protocol trace of one connection (PQtrace), from construction to stop(): the
// messages sent ("F\t...") and received ("B\t..."), one a line, without timestamps.
class ProtocolTrace {
 public:
  explicit ProtocolTrace(pg_conn* conn);
  ~ProtocolTrace();
  ProtocolTrace(const ProtocolTrace&) = delete;
  ProtocolTrace& operator=(const ProtocolTrace&) = delete;
  std::vector<std::string> stop();

 private:
  pg_conn* conn_;
  std::FILE* file_;
};

// A fixture with one connection of its own, opened from the PG* environment.
class ConnectionFixture : public ::testing::Test {
 protected:
  Connection conn = Connection::open("", std::chrono::seconds(10));
};

}  // namespace usher::test
