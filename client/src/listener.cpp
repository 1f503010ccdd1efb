// usher::Listener (listener.hpp). One loop, step(), owns the connection: the delivery
// thread runs it, or wait()'s caller. listen()/unlisten() record the channels wanted
// and either bring the server in line themselves (when the loop is free) or wake the
// loop (a pipe) and wait until it did. A lost connection is reopened after the policy's
// backoff, and every channel wanted is listened to again.
#include "usher/listener.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "usher/connection.hpp"
#include "usher/errors.hpp"
#include "sql_text.hpp"
#include "wait.hpp"

namespace usher {
namespace {

using Clock = std::chrono::steady_clock;

void check_channel(const std::string& channel) {
  if (channel.empty()) throw std::invalid_argument("Listener: a channel name cannot be empty");
  if (channel.find('\0') != std::string::npos)
    throw std::invalid_argument("Listener: a channel name cannot hold a NUL byte");
}

// Waits until `fd` is readable or `until` passes; true when readable.
bool wait_readable(int fd, Clock::time_point until) {
  pollfd p{fd, POLLIN, 0};
  while (true) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return false;
    int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 60'000)));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

void drain_pipe(int fd) {
  char buf[64];
  while (::read(fd, buf, sizeof buf) > 0) {
  }
}

}  // namespace

struct Listener::State {
  explicit State(ListenerConfig c) : config(std::move(c)) {
    config.reconnect.validate("ListenerConfig.reconnect.");
    if (::pipe2(wake, O_NONBLOCK | O_CLOEXEC) != 0 || ::pipe2(stop, O_NONBLOCK | O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "Listener: pipe2");
  }
  ~State() {
    for (int fd : {wake[0], wake[1], stop[0], stop[1]})
      if (fd >= 0) ::close(fd);
  }

  ListenerConfig config;

  // Shared with listen()/unlisten() and the observers.
  mutable std::mutex mu;
  std::condition_variable applied_cv;
  std::set<std::string> wanted;
  std::uint64_t wanted_gen = 0, applied_gen = 0;
  std::atomic<bool> connected{false};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<bool> stopping{false};
  int wake[2] = {-1, -1};  // listen()/unlisten(): the loop has channels to bring in line
  int stop[2] = {-1, -1};  // the destructor: everything ends

  // The loop's own: held by whoever runs it (step, or listen() bringing channels in line).
  std::mutex loop_mu;
  Connection conn;
  std::set<std::string> issued;
  std::deque<Notification> queue;
  bool ever_connected = false;
  int failures = 0;
  Clock::time_point next_attempt{};
  std::mt19937_64 random{std::random_device{}()};
  std::thread thread;

  void report(const std::exception& e) {
    if (!config.on_error) return;
    try {
      config.on_error(e);
    } catch (...) {
      // a logger that throws is not the listener's business
    }
  }

  void lost(const std::exception* why) {
    conn = Connection();
    issued.clear();
    connected = false;
    applied_cv.notify_all();
    ++failures;
    double u = config.reconnect.random ? config.reconnect.random()
                                       : std::uniform_real_distribution<double>(0, 1)(random);
    next_attempt = Clock::now() + config.reconnect.delay(failures, u);
    if (why) report(*why);
  }

  // LISTEN/UNLISTEN until the server's channels are the ones wanted. loop_mu held.
  void apply() {
    std::set<std::string> want;
    std::uint64_t gen;
    {
      std::lock_guard lk(mu);
      want = wanted;
      gen = wanted_gen;
    }
    if (conn.is_open()) {
      ExecOptions opts;
      opts.deadline = Clock::now() + config.connect_timeout;
      opts.abort_fd = stop[0];
      try {
        for (const auto& ch : want)
          if (!issued.contains(ch)) {
            conn.exec(opts, "LISTEN " + detail::quote_identifier(ch));
            issued.insert(ch);
          }
        for (auto it = issued.begin(); it != issued.end();)
          if (!want.contains(*it)) {
            conn.exec(opts, "UNLISTEN " + detail::quote_identifier(*it));
            it = issued.erase(it);
          } else {
            ++it;
          }
      } catch (const std::exception& e) {
        lost(&e);
        return;
      }
    }
    std::lock_guard lk(mu);
    applied_gen = std::max(applied_gen, gen);
    applied_cv.notify_all();
  }

  void connect(Clock::time_point deadline) {
    ConnectLimits limits;
    limits.deadline = std::min(deadline, Clock::now() + config.connect_timeout);
    limits.abort_fd = stop[0];
    try {
      conn = Connection::open(config.conninfo, config.options, limits);
    } catch (const std::exception& e) {
      lost(&e);
      return;
    }
    connected = true;
    apply();
    if (!conn.is_open()) return;
    failures = 0;
    if (std::exchange(ever_connected, true)) {
      ++reconnects;
      if (config.on_reconnect) {
        try {
          config.on_reconnect();
        } catch (const std::exception& e) {
          report(e);
        } catch (...) {
        }
      }
    }
  }

  // Reads what arrived; false when the connection broke.
  bool collect() {
    PGconn* pg = conn.native();
    if (!PQconsumeInput(pg)) return false;
    while (PGnotify* n = PQnotifies(pg)) {
      queue.push_back(Notification{n->relname, n->extra ? n->extra : "", n->be_pid});
      PQfreemem(n);
    }
    return PQstatus(pg) == CONNECTION_OK;
  }

  void lost_connection() {
    ConnectionError e(std::string("Listener: connection lost: ") +
                          detail::trimmed(PQerrorMessage(conn.native())),
                      "08006");
    lost(&e);
  }

  // The next notification before `deadline`, reconnecting as needed; nullopt at the
  // deadline or when stopping. loop_mu held.
  std::optional<Notification> step(Clock::time_point deadline) {
    while (!stopping) {
      if (!queue.empty()) {
        Notification n = std::move(queue.front());
        queue.pop_front();
        return n;
      }
      if (!conn.is_open()) {
        if (Clock::now() < next_attempt) {
          if (Clock::now() >= deadline) return std::nullopt;
          wait_readable(stop[0], std::min(next_attempt, deadline));
          continue;
        }
        if (Clock::now() >= deadline) return std::nullopt;
        connect(deadline);
        continue;
      }
      bool pending;
      {
        std::lock_guard lk(mu);
        pending = applied_gen < wanted_gen;
      }
      if (pending) {
        drain_pipe(wake[0]);
        apply();
        continue;
      }
      if (!collect()) {
        lost_connection();
        continue;
      }
      if (!queue.empty()) continue;
      switch (detail::wait_socket_or_abort(conn.native(), false, deadline, wake[0])) {
        case detail::Wait::ready:
          if (!collect()) lost_connection();
          break;
        case detail::Wait::aborted:
          drain_pipe(wake[0]);  // channels to bring in line, or stopping: the loop sees which
          break;
        case detail::Wait::timed_out:
          return std::nullopt;
        case detail::Wait::failed:
          lost_connection();
          break;
      }
    }
    return std::nullopt;
  }

  void deliver() {
    while (!stopping) {
      std::optional<Notification> n;
      {
        std::lock_guard lk(loop_mu);
        n = step(Clock::time_point::max());
      }
      if (!n) continue;
      try {
        config.on_notification(*n);
      } catch (const std::exception& e) {
        report(e);
      } catch (...) {
      }
    }
  }

  void change(const std::string& channel, bool add) {
    check_channel(channel);
    std::uint64_t gen;
    {
      std::lock_guard lk(mu);
      if (add ? !wanted.insert(channel).second : wanted.erase(channel) == 0) return;
      gen = ++wanted_gen;
    }
    while (true) {
      {
        std::unique_lock loop(loop_mu, std::try_to_lock);
        if (loop.owns_lock()) {  // the loop is free: bring the server in line here
          apply();
          return;
        }
      }
      std::unique_lock lk(mu);
      char one = 1;
      [[maybe_unused]] auto w = ::write(wake[1], &one, 1);
      // Until the loop applied it, or while disconnected (the reconnect issues it); the
      // bound makes this try for the loop again should it have ended meanwhile.
      if (applied_cv.wait_for(lk, std::chrono::milliseconds(20),
                              [&] { return applied_gen >= gen || !connected; }))
        return;
    }
  }
};

Listener::Listener(ListenerConfig config) : state_(std::make_unique<State>(std::move(config))) {
  State& s = *state_;
  s.conn = Connection::open(s.config.conninfo, s.config.options,
                            Clock::now() + s.config.connect_timeout);
  s.connected = true;
  s.ever_connected = true;
  if (s.config.on_notification) s.thread = std::thread([&s] { s.deliver(); });
}

Listener::~Listener() {
  State& s = *state_;
  s.stopping = true;
  char one = 1;
  [[maybe_unused]] auto a = ::write(s.stop[1], &one, 1);
  [[maybe_unused]] auto b = ::write(s.wake[1], &one, 1);
  if (s.thread.joinable()) s.thread.join();
}

void Listener::listen(const std::string& channel) { state_->change(channel, true); }
void Listener::unlisten(const std::string& channel) { state_->change(channel, false); }

std::vector<std::string> Listener::channels() const {
  std::lock_guard lk(state_->mu);
  return {state_->wanted.begin(), state_->wanted.end()};
}

std::optional<Notification> Listener::wait(Clock::time_point deadline) {
  if (state_->config.on_notification)
    throw std::logic_error("Listener::wait: this listener delivers to its on_notification callback");
  std::lock_guard lk(state_->loop_mu);
  return state_->step(deadline);
}

bool Listener::connected() const noexcept { return state_->connected; }
std::uint64_t Listener::reconnects() const noexcept { return state_->reconnects; }

}  // namespace usher
