#include "test_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <libpq-fe.h>

namespace usher::test {

std::chrono::milliseconds wait_limit() {
  const char* v = std::getenv("USHER_TEST_WAIT_MS");
  return std::chrono::milliseconds(v ? std::atol(v) : 30000);
}

bool eventually(const std::function<bool()>& condition) {
  auto until = std::chrono::steady_clock::now() + wait_limit();
  while (!condition()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

PoolConfig test_config(const std::string& name) {
  PoolConfig c;
  c.name = name;
  c.min_idle = 0;
  c.max_size = 4;
  c.acquire_timeout = wait_limit();
  c.maintenance_interval = 10ms;
  c.logger = [](LogLevel, std::string_view) {};  // tests provoke failures on purpose
  return c;
}

PoolConfig test_config(const std::string& name, PoolSize size) {
  PoolConfig c = test_config(name);
  c.min_idle = size.min_idle;
  c.max_size = size.max_size;
  return c;
}

Admin::Admin() : conn_(Connection::open("", 10s)) {}

long Admin::backends(const std::string& app) {
  return conn_.exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", app)
      .scalar<long>();
}

std::vector<int> Admin::backend_pids(const std::string& app) {
  auto r = conn_.exec("SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid", app);
  std::vector<int> pids;
  for (std::size_t i = 0; i < r.rows(); ++i) pids.push_back(r.get<int>(i, 0));
  return pids;
}

void Admin::terminate(int pid) {
  conn_.exec("SELECT pg_terminate_backend($1::int)", pid);
  eventually([&] {
    return conn_.exec("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", pid).scalar<long>() == 0;
  });
}

bool Admin::has_extension_leases() {
  return conn_.exec("SELECT to_regprocedure('usher.checkout(text)') IS NOT NULL"
                    " AND to_regclass('usher.leases') IS NOT NULL").scalar<bool>();
}

EventCallback EventRecorder::callback() {
  return [this](const PoolEvent& e) {
    std::lock_guard lk(mu_);
    events_.push_back({e.type, e.connection_id, e.reason,
                       e.leak ? std::optional<LeakInfo>(*e.leak) : std::nullopt});
  };
}

std::vector<RecordedEvent> EventRecorder::events() const {
  std::lock_guard lk(mu_);
  return events_;
}

std::size_t EventRecorder::count(PoolEventType type) const {
  std::lock_guard lk(mu_);
  std::size_t n = 0;
  for (const auto& e : events_) n += e.type == type;
  return n;
}

std::size_t EventRecorder::count(PoolEventType type, std::string_view reason) const {
  std::lock_guard lk(mu_);
  std::size_t n = 0;
  for (const auto& e : events_) n += e.type == type && e.reason.starts_with(reason);
  return n;
}

std::string EventRecorder::describe() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& e : events_)
    out += fmt::format("{}{} #{}: {}", out.empty() ? "" : "; ", to_string(e.type), e.connection_id,
                       e.reason);
  return out;
}

const char* pgbouncer_conninfo() {
  const char* bouncer = std::getenv("USHER_TEST_PGBOUNCER");
  return bouncer && *bouncer ? bouncer : nullptr;
}

void bouncer_hop(const std::function<void()>& on_y, const std::function<void(int x)>& on_x) {
  auto open = [] { return Connection::open(pgbouncer_conninfo(), std::chrono::seconds(10)); };
  Connection a = open(), c = open();
  a.exec("BEGIN");
  int x = a.exec("SELECT pg_backend_pid()").scalar<int>();
  on_y();
  c.exec("BEGIN");
  int y = c.exec("SELECT pg_backend_pid()").scalar<int>();
  a.exec("COMMIT");
  ASSERT_NE(x, y);
  on_x(x);
  c.exec("COMMIT");
}

long Admin::count_rows(const std::string& table) {
  return conn_.exec("SELECT count(*) FROM " + table).scalar<long>();
}

TransactionOptions fast_retries(int max_attempts) {
  TransactionOptions o;
  o.max_attempts = max_attempts;
  o.base_delay = std::chrono::milliseconds(1);
  o.max_delay = std::chrono::milliseconds(5);
  return o;
}

bool wait_idle(const Pool& pool, std::size_t idle) {
  return eventually([&] {
    auto s = pool.stats();
    return s.idle == idle && s.pending == 0;
  });
}

SilentServer::SilentServer() {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      ::listen(fd_, 16) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    throw std::runtime_error("cannot listen on 127.0.0.1");
  port_ = ntohs(a.sin_port);
}

SilentServer::~SilentServer() { ::close(fd_); }

bool SilentServer::wait_for_client() const {
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(wait_limit().count())) == 1;
}

int SilentServer::take_pending() {
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
  int n = 0;
  for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0; ++n) ::close(c);
  return n;
}

ProtocolTrace::ProtocolTrace(pg_conn* conn) : conn_(conn), file_(std::tmpfile()) {
  if (!file_) throw std::runtime_error("ProtocolTrace: tmpfile() failed");
  PQtrace(conn_, file_);
  PQsetTraceFlags(conn_, PQTRACE_SUPPRESS_TIMESTAMPS);
}

ProtocolTrace::~ProtocolTrace() {
  if (!file_) return;
  PQuntrace(conn_);
  std::fclose(file_);
}

std::vector<std::string> ProtocolTrace::stop() {
  std::vector<std::string> lines;
  if (!file_) return lines;
  PQuntrace(conn_);
  std::rewind(file_);
  char line[4096];
  while (std::fgets(line, sizeof line, file_)) lines.emplace_back(line);
  std::fclose(std::exchange(file_, nullptr));
  return lines;
}

}  // namespace usher::test
