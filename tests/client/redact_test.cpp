// Passwords never appear in what libusher prints: redaction of both conninfo syntaxes,
// and the messages of real connection failures and pool timeouts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <thread>

#include "test_support.hpp"

namespace usher::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct RedactCase {
  const char* input;
  const char* expected;
};

class RedactTest : public ::testing::TestWithParam<RedactCase> {};

TEST_P(RedactTest, ReplacesSecretsOnly) {
  EXPECT_EQ(redact_conninfo(GetParam().input), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Forms, RedactTest,
    ::testing::Values(
        RedactCase{"host=db password=hunter2 dbname=app", "host=db password=*** dbname=app"},
        RedactCase{"host=db password = 'hun ter2' user=u", "host=db password=*** user=u"},
        RedactCase{"password='it\\'s secret' host=db", "password=*** host=db"},
        RedactCase{"sslpassword=keypass sslmode=verify-full", "sslpassword=*** sslmode=verify-full"},
        RedactCase{"host=db dbname=app", "host=db dbname=app"},
        RedactCase{"", ""},
        RedactCase{"host=db password='unterminated secret", "host=db password=..."},
        RedactCase{"host=db garbage password=hunter2", "host=db ..."},
        RedactCase{"postgresql://alice:hunter2@db:5432/app", "postgresql://alice:***@db:5432/app"},
        RedactCase{"postgres://alice@db/app?password=hunter2&sslmode=require",
                   "postgres://alice@db/app?password=***&sslmode=require"},
        RedactCase{"postgresql://alice:p%40ss@db/app?sslpassword=x",
                   "postgresql://alice:***@db/app?sslpassword=***"},
        RedactCase{"postgresql://db/app", "postgresql://db/app"}));

// Port 1 on localhost: nothing listens there, the connection is refused at once.
TEST(RedactTest, ConnectionErrorHidesPassword) {
  for (std::string conninfo : {"host=127.0.0.1 port=1 user=alice password=hunter2",
                               "postgresql://alice:hunter2@127.0.0.1:1/app"}) {
    try {
      Connection::open(conninfo, 5s);
      FAIL() << "connecting to port 1 succeeded";
    } catch (const ConnectionError& e) {
      EXPECT_THAT(e.what(), Not(HasSubstr("hunter2")));
      EXPECT_THAT(e.what(), HasSubstr("***"));
      EXPECT_THAT(e.what(), HasSubstr("127.0.0.1"));
      EXPECT_TRUE(e.is_transient());
    }
  }
}

TEST(RedactTest, PoolTimeoutNamesTheConnectErrorWithoutPassword) {
  auto config = test_config("redact_timeout");
  config.conninfo = "host=127.0.0.1 port=1 user=alice";
  config.options = {{"password", "hunter2"}};
  config.acquire_timeout = 300ms;
  config.breaker_enabled = false;  // else CircuitOpen (PoolBreakerTest checks its message)
  Pool pool(config);
  try {
    pool.acquire();
    FAIL() << "acquire succeeded without a server";
  } catch (const PoolTimeout& e) {
    EXPECT_THAT(e.what(), Not(HasSubstr("hunter2")));
    EXPECT_THAT(e.what(), HasSubstr("redact_timeout"));
  }
}

// A password that is part of "***" (here "*") must not make the scrubbing of the error
// message find it again in its own replacement: that looped for ever. The open runs on
// a thread of its own so that a regression fails this test instead of hanging the run.
TEST(RedactTest, APasswordInsideTheMaskDoesNotLoop) {
  for (const char* password : {"*", "**", "***"}) {
    auto outcome = std::make_shared<std::promise<std::string>>();
    auto done = outcome->get_future();
    std::thread([outcome, password] {
      try {
        Connection::open(std::string("host=127.0.0.1 port=1 password=") + password, 5s);
        outcome->set_value("connected");
      } catch (const ConnectionError& e) {
        outcome->set_value(e.what());
      } catch (...) {
        outcome->set_value("another exception");
      }
    }).detach();
    ASSERT_EQ(done.wait_for(wait_limit()), std::future_status::ready) << "password " << password;
    EXPECT_THAT(done.get(), HasSubstr("cannot connect to"));
  }
}

}  // namespace
}  // namespace usher::test
