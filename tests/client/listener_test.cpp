// usher::Listener: notifications delivered to wait() and to a callback, channel names
// quoted (never pasted), a deadline wait that returns empty on time, and the listener
// reconnecting and listening again after its backend is terminated and after a server
// restart (ListenerRestart*: a server of its own, tests/suites/client.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <mutex>

#include "test_support.hpp"

namespace usher::test {
namespace {

ListenerConfig listener_config(const std::string& app) {
  ListenerConfig c;
  c.options = {{"application_name", app}};
  c.reconnect.initial_delay = 10ms;
  c.reconnect.max_delay = 200ms;
  return c;
}

void notify(Connection& conn, const std::string& channel, const std::string& payload) {
  conn.exec("SELECT pg_notify($1, $2)", channel, payload);
}

// Notifications a callback received, for a test to await.
struct Inbox {
  std::mutex mu;
  std::vector<Notification> got;
  std::function<void(const Notification&)> callback() {
    return [this](const Notification& n) {
      std::lock_guard lk(mu);
      got.push_back(n);
    };
  }
  std::size_t size() {
    std::lock_guard lk(mu);
    return got.size();
  }
  Notification at(std::size_t i) {
    std::lock_guard lk(mu);
    return got.at(i);
  }
};

TEST(ListenerTest, DeliversToWaitOnQuotedChannelsOnly) {
  Listener listener(listener_config("listener-wait"));
  const std::string odd = "Odd \"chan\"; DROP TABLE x";  // one identifier, as written
  listener.listen(odd);
  listener.listen("plain");
  EXPECT_EQ(listener.channels(), (std::vector<std::string>{"Odd \"chan\"; DROP TABLE x", "plain"}));
  Admin admin;
  notify(admin.conn(), "odd \"chan\"; drop table x", "not mine");  // another channel
  notify(admin.conn(), odd, "first");
  notify(admin.conn(), "plain", "");
  auto n = listener.wait_for(wait_limit());
  ASSERT_TRUE(n);
  EXPECT_EQ(n->channel, odd);
  EXPECT_EQ(n->payload, "first");
  EXPECT_EQ(n->backend_pid, admin.conn().backend_pid());
  n = listener.wait_for(wait_limit());
  ASSERT_TRUE(n);
  EXPECT_EQ(n->channel, "plain");
  EXPECT_EQ(n->payload, "");

  listener.unlisten(odd);
  notify(admin.conn(), odd, "after unlisten");
  notify(admin.conn(), "plain", "last");
  n = listener.wait_for(wait_limit());
  ASSERT_TRUE(n);
  EXPECT_EQ(n->payload, "last");
  EXPECT_THROW(listener.listen(""), std::invalid_argument);
}

TEST(ListenerTest, ADeadlineWaitReturnsEmptyOnTime) {
  Listener listener(listener_config("listener-deadline"));
  listener.listen("quiet");
  auto start = Listener::Clock::now();
  auto deadline = start + 150ms;
  EXPECT_FALSE(listener.wait(deadline));
  auto end = Listener::Clock::now();
  EXPECT_GE(end, deadline);
  EXPECT_LT(end - deadline, wait_limit());  // a liveness bound, not a timing assertion
  EXPECT_FALSE(listener.wait(start));        // a deadline already past: at once, empty
}

TEST(ListenerTest, DeliversToACallbackAndListensAgainAfterItsBackendIsTerminated) {
  Inbox inbox;
  auto c = listener_config("listener-callback");
  c.on_notification = inbox.callback();
  std::atomic<int> reconnected{0}, errors{0};
  c.on_reconnect = [&] { ++reconnected; };
  c.on_error = [&](const std::exception&) { ++errors; };
  Listener listener(c);
  EXPECT_THROW(listener.wait_for(1ms), std::logic_error);
  listener.listen("cb");
  Admin admin;
  for (int i = 0; i < 3; ++i) notify(admin.conn(), "cb", std::to_string(i));
  ASSERT_TRUE(eventually([&] { return inbox.size() == 3; }));
  EXPECT_EQ(inbox.at(2).payload, "2");

  auto pids = admin.backend_pids("listener-callback");
  ASSERT_EQ(pids.size(), 1u);
  admin.terminate(pids[0]);
  ASSERT_TRUE(eventually([&] { return listener.reconnects() == 1 && listener.connected(); }));
  EXPECT_EQ(reconnected, 1);
  EXPECT_GE(errors, 1);  // the loss was reported
  notify(admin.conn(), "cb", "after");
  ASSERT_TRUE(eventually([&] { return inbox.size() == 4; }));
  EXPECT_EQ(inbox.at(3).payload, "after");
}

TEST(ListenerRestartTest, NotificationsSurviveAServerRestart) {
  const char* stop_cmd = std::getenv("USHER_TEST_SERVER_STOP");
  const char* start_cmd = std::getenv("USHER_TEST_SERVER_START");
  if (!stop_cmd || !start_cmd)
    GTEST_SKIP() << "USHER_TEST_SERVER_STOP/START not set (tests/suites/client.sh sets them)";
  Inbox inbox;
  auto c = listener_config("listener-restart");
  c.on_notification = inbox.callback();
  Listener listener(c);
  listener.listen("restart");
  {
    Admin admin;
    notify(admin.conn(), "restart", "before");
    ASSERT_TRUE(eventually([&] { return inbox.size() == 1; }));
  }
  ASSERT_EQ(std::system(stop_cmd), 0);
  ASSERT_TRUE(eventually([&] { return !listener.connected(); }));
  ASSERT_EQ(std::system(start_cmd), 0);
  ASSERT_TRUE(eventually([&] { return listener.connected() && listener.reconnects() >= 1; }));
  Admin admin;
  notify(admin.conn(), "restart", "after");
  ASSERT_TRUE(eventually([&] { return inbox.size() == 2; }));
  EXPECT_EQ(inbox.at(1).channel, "restart");
  EXPECT_EQ(inbox.at(1).payload, "after");
}

}  // namespace
}  // namespace usher::test
