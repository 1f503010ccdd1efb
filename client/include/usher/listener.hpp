#pragma once
// usher::Listener: LISTEN/NOTIFY on a connection of its own, outside any pool's lending.
// It reconnects after a failure (backoff from a RetryPolicy), issues its LISTENs again,
// and delivers notifications to a callback (on a thread of its own) or to wait() with a
// deadline. See docs/client.md, "Notifications".
//
//   usher::ListenerConfig cfg;
//   cfg.conninfo = "host=db dbname=app";
//   usher::Listener listener(cfg);
//   listener.listen("orders");                       // LISTEN "orders"
//   if (auto n = listener.wait_for(std::chrono::seconds(5)))
//     handle(n->channel, n->payload);

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "usher/retry.hpp"

namespace usher {

struct Notification {
  std::string channel;  // as the server spells it
  std::string payload;  // NOTIFY's second argument ("" when none)
  int backend_pid = 0;  // the notifying session's backend
};

struct ListenerConfig {
  // As for Connection::open: a keyword=value string or URI, and keywords over it.
  std::string conninfo;
  std::vector<std::pair<std::string, std::string>> options;
  // Bounds one connection attempt, and one LISTEN.
  std::chrono::milliseconds connect_timeout{5000};
  // The pause before reconnect attempt n after a failure: reconnect.delay_cap(n) with
  // its jitter. The listener never gives up (max_attempts and max_elapsed are not used).
  RetryPolicy reconnect = [] {
    RetryPolicy p;
    p.initial_delay = std::chrono::milliseconds(50);
    p.max_delay = std::chrono::milliseconds(5000);
    return p;
  }();
  // Set: notifications are delivered to it on the listener's own thread (and wait() may
  // not be called). An exception it throws goes to on_error; delivery goes on.
  std::function<void(const Notification&)> on_notification;
  // The connection lost, a reconnect attempt failed, the callback threw: for logging.
  // Called on the thread that runs the listener (the callback's, or wait()'s caller).
  std::function<void(const std::exception&)> on_error;
  // After a reconnect, once the LISTENs were issued again. Notifications sent while the
  // listener was disconnected are lost: re-read the state they announce here.
  std::function<void()> on_reconnect;
};

class Listener {
 public:
  using Clock = std::chrono::steady_clock;

  // Connects (throws as Connection::open does) and, with on_notification, starts the
  // delivery thread. std::invalid_argument for a bad reconnect policy.
  explicit Listener(ListenerConfig config);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  // Stops the delivery thread and closes the connection.
  ~Listener();

  // LISTEN "channel" (quoted as an identifier: case and any character kept), remembered
  // and issued again after every reconnect. Returns once the server listens, or at once
  // while disconnected (the LISTEN is issued at the reconnect). Thread-safe.
  // std::invalid_argument for an empty name or one with a NUL byte.
  void listen(const std::string& channel);
  void unlisten(const std::string& channel);
  std::vector<std::string> channels() const;

  // The next notification, or nullopt once `deadline` passed without one (reconnecting
  // meanwhile as needed). Without on_notification only (std::logic_error otherwise); one
  // caller at a time.
  std::optional<Notification> wait(Clock::time_point deadline);
  template <class Rep, class Period>
  std::optional<Notification> wait_for(std::chrono::duration<Rep, Period> timeout) {
    return wait(Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout));
  }

  bool connected() const noexcept;
  // Successful reconnects since the listener was made.
  std::uint64_t reconnects() const noexcept;

  struct State;  // client/src/listener.cpp

 private:
  std::unique_ptr<State> state_;
};

}  // namespace usher
