// Every PoolConfig setting is validated, and the error names the setting.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_support.hpp"

namespace usher::test {
namespace {

struct BadSetting {
  const char* setting;
  std::function<void(PoolConfig&)> spoil;
};

class ConfigTest : public ::testing::TestWithParam<BadSetting> {};

TEST_P(ConfigTest, RejectsWithTheSettingName) {
  PoolConfig c;
  GetParam().spoil(c);
  try {
    c.validate();
    FAIL() << "accepted a bad " << GetParam().setting;
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::StartsWith(std::string("PoolConfig.") + GetParam().setting + ":"));
  }
  // The pool constructor validates too, before starting anything.
  EXPECT_THROW(Pool{c}, std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(
    Settings, ConfigTest,
    ::testing::Values(
        BadSetting{"max_size", [](PoolConfig& c) { c.max_size = 0; }},
        BadSetting{"min_idle", [](PoolConfig& c) { c.min_idle = 21; }},
        BadSetting{"name", [](PoolConfig& c) { c.name = ""; }},
        BadSetting{"name", [](PoolConfig& c) { c.name = "a\nb"; }},
        BadSetting{"connect_timeout", [](PoolConfig& c) { c.connect_timeout = 0ms; }},
        BadSetting{"acquire_timeout", [](PoolConfig& c) { c.acquire_timeout = -1ms; }},
        BadSetting{"idle_timeout", [](PoolConfig& c) { c.idle_timeout = -1ms; }},
        BadSetting{"max_lifetime", [](PoolConfig& c) { c.max_lifetime = -5ms; }},
        BadSetting{"keepalive_interval", [](PoolConfig& c) { c.keepalive_interval = -1ms; }},
        BadSetting{"validation_timeout", [](PoolConfig& c) { c.validation_timeout = 0ms; }},
        BadSetting{"validate_after_idle", [](PoolConfig& c) { c.validate_after_idle = -1ms; }},
        BadSetting{"leak_detection_threshold", [](PoolConfig& c) { c.leak_detection_threshold = -1ms; }},
        BadSetting{"maintenance_interval", [](PoolConfig& c) { c.maintenance_interval = 0ms; }},
        BadSetting{"application_name", [](PoolConfig& c) { c.application_name = std::string(64, 'a'); }},
        BadSetting{"service", [](PoolConfig& c) { c.service = "a/b"; }},
        BadSetting{"service", [](PoolConfig& c) { c.size_from_advice = true; }},
        BadSetting{"size_from_advice", [](PoolConfig& c) {
                     c.service = "orders";
                     c.size_from_advice = true;
                     c.use_extension = false;
                   }},
        BadSetting{"advice_instances", [](PoolConfig& c) { c.advice_instances = 0; }},
        BadSetting{"advice_instances", [](PoolConfig& c) { c.advice_instances = 100001; }},
        BadSetting{"advice_interval", [](PoolConfig& c) { c.advice_interval = -1ms; }},
        BadSetting{"conninfo", [](PoolConfig& c) { c.conninfo = "host='unterminated password=x"; }},
        BadSetting{"conninfo", [](PoolConfig& c) { c.conninfo = "nosuchoption=1"; }},
        BadSetting{"options", [](PoolConfig& c) { c.options = {{"sslmod", "require"}}; }}),
    [](const auto& info) { return std::string(info.param.setting) + "_" + std::to_string(info.index); });

TEST(ConfigTest, DefaultsAreTheDocumentedOnes) {
  PoolConfig c;
  EXPECT_NO_THROW(c.validate());
  EXPECT_EQ(c.min_idle, 5u);
  EXPECT_EQ(c.max_size, 20u);
  EXPECT_EQ(c.connect_timeout, 5s);
  EXPECT_EQ(c.acquire_timeout, 5s);
  EXPECT_EQ(c.idle_timeout, 60s);
  EXPECT_EQ(c.max_lifetime, 30min);
  EXPECT_EQ(c.keepalive_interval, 2min);
  EXPECT_EQ(c.validation_timeout, 5s);
  EXPECT_EQ(c.validate_after_idle, 500ms);
  EXPECT_EQ(c.leak_detection_threshold, 0ms);
  EXPECT_FALSE(c.size_from_advice);
  EXPECT_EQ(c.advice_instances, 1);
  EXPECT_EQ(c.advice_interval, 5min);
}

TEST(ConfigTest, ApplicationNameCarriesTheService) {
  PoolConfig c;
  c.name = "workers";
  EXPECT_EQ(c.effective_application_name(), "usher/workers");
  c.service = "orders";
  EXPECT_EQ(c.effective_application_name(), "orders/workers");
  c.application_name = "explicit";
  EXPECT_EQ(c.effective_application_name(), "explicit");
}

TEST(ConfigTest, ConninfoErrorDoesNotQuoteTheString) {
  PoolConfig c;
  c.conninfo = "password='hunter2";
  try {
    c.validate();
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::Not(::testing::HasSubstr("hunter2")));
  }
}

TEST(ConfigTest, PoolUsesApplicationNameAndOptions) {
  auto c = test_config("config_app");
  c.service = "svc";
  c.options = {{"options", "-c statement_timeout=1234"}};
  Pool pool(c);
  auto conn = pool.acquire();
  EXPECT_EQ(conn->exec("SHOW application_name").scalar<std::string>(), "svc/config_app");
  EXPECT_EQ(conn->exec("SHOW statement_timeout").scalar<std::string>(), "1234ms");
}

}  // namespace
}  // namespace usher::test
