// The pure C++ both halves share (common/): the service-name rule and the Prometheus
// text writer. No server needed. The extension runs the same code (admission.cpp,
// backends.cpp, metrics.cpp); its SQL-level tests see it from the other side.
#include "common/prometheus_text.hpp"
#include "common/service_name.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

namespace usher {
namespace {

TEST(CommonServiceName, IsTheTextBeforeTheFirstSlash) {
  EXPECT_EQ(service_of_application("orders/worker-3"), "orders");
  EXPECT_EQ(service_of_application("orders/eu/worker-3"), "orders");
  EXPECT_EQ(service_of_application("orders"), "orders");
  EXPECT_EQ(service_of_application("orders/"), "orders");
}

TEST(CommonServiceName, NothingBeforeTheSlashIsTheDefaultService) {
  EXPECT_EQ(service_of_application(""), "default");
  EXPECT_EQ(service_of_application("/worker-3"), "default");
  EXPECT_EQ(service_of_application("/"), "default");
  EXPECT_EQ(default_service, "default");
}

TEST(CommonServiceName, IsAConstantExpression) {
  static_assert(service_of_application("billing/x") == "billing");
  static_assert(service_of_application("") == default_service);
}

TEST(CommonServiceName, ApplicationNameForGivesTheServiceBack) {
  EXPECT_EQ(application_name_for("orders", "workers"), "orders/workers");
  EXPECT_EQ(application_name_for("orders", ""), "orders/");
  for (const char* service : {"orders", "a", "usher", "billing-eu_2"})
    EXPECT_EQ(service_of_application(application_name_for(service, "pool/with/slashes")), service);
}

TEST(CommonServiceName, ApplicationNameIsCutWherePostgreSQLCutsIt) {
  std::string service(40, 's'), instance(40, 'i');
  std::string name = application_name_for(service, instance);
  EXPECT_EQ(name.size(), max_application_name_bytes);
  EXPECT_EQ(max_application_name_bytes, 63u);  // NAMEDATALEN - 1
  EXPECT_EQ(name, service + "/" + std::string(63 - 41, 'i'));
  EXPECT_EQ(service_of_application(name), service);
  EXPECT_EQ(application_name_for(std::string(70, 's'), "x"), std::string(63, 's'));
}

TEST(CommonPrometheusText, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(prometheus::escape_label_value("plain"), "plain");
  EXPECT_EQ(prometheus::escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

TEST(CommonPrometheusText, HelpEscapesBackslashAndNewlineButNotQuotes) {
  EXPECT_EQ(prometheus::escape_help("a\\b\"c\nd"), "a\\\\b\"c\\nd");
}

// Pool::prometheus() wrote HELP text as it was given until the client used this writer:
// a backslash or a line break in it made the document unreadable to Prometheus.
TEST(CommonPrometheusText, FamilyWritesHelpEscaped) {
  prometheus::TextWriter out;
  out.family("usher_x", "gauge", "Two lines:\nC:\\path \"quoted\".");
  EXPECT_EQ(out.take(),
            "# HELP usher_x Two lines:\\nC:\\\\path \"quoted\".\n"
            "# TYPE usher_x gauge\n");
}

TEST(CommonPrometheusText, SamplesCarryTheFamilyNameAndEscapedLabels) {
  prometheus::TextWriter out;
  out.family("usher_pool_connections", "gauge", "Open connections.");
  out.sample({{"pool", "a \"b\""}, {"state", "idle"}}, 3.0);
  out.sample({}, 0.25);
  out.sample({{"pool", "p"}}, std::optional<std::string>{});  // NULL: nothing
  out.sample({{"pool", "p"}}, std::optional<std::string>{"Infinity"});
  out.sample({{"pool", "p"}}, std::optional<std::string>{"-Infinity"});
  out.sample({{"pool", "p"}}, std::optional<std::string>{"12"});
  out.sample_as("_sum", {{"pool", "p"}}, std::numeric_limits<double>::infinity());
  out.sample_as("_count", {{"pool", "p"}, {"le", "+Inf"}}, 4294967296.0);
  EXPECT_EQ(out.take(),
            "# HELP usher_pool_connections Open connections.\n"
            "# TYPE usher_pool_connections gauge\n"
            "usher_pool_connections{pool=\"a \\\"b\\\"\",state=\"idle\"} 3\n"
            "usher_pool_connections 0.25\n"
            "usher_pool_connections{pool=\"p\"} +Inf\n"
            "usher_pool_connections{pool=\"p\"} -Inf\n"
            "usher_pool_connections{pool=\"p\"} 12\n"
            "usher_pool_connections_sum{pool=\"p\"} +Inf\n"
            "usher_pool_connections_count{pool=\"p\",le=\"+Inf\"} 4294967296\n");
}

}  // namespace
}  // namespace usher
