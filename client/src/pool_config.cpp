// PoolConfig::validate: every setting checked, every error names its setting.
#include "usher/pool_config.hpp"

#include "common/service_name.hpp"  // common/ before libpq (common/pure_cpp.hpp)

#include <fmt/format.h>
#include <libpq-fe.h>

#include <set>
#include <stdexcept>

namespace usher {
namespace {

[[noreturn]] void bad(std::string_view setting, const std::string& why) {
  throw std::invalid_argument(fmt::format("PoolConfig.{}: {}", setting, why));
}

void not_negative(std::string_view setting, PoolConfig::ms value) {
  if (value.count() < 0) bad(setting, fmt::format("must not be negative (got {} ms)", value.count()));
}

void positive(std::string_view setting, PoolConfig::ms value) {
  if (value.count() <= 0) bad(setting, fmt::format("must be greater than 0 (got {} ms)", value.count()));
}

std::set<std::string> libpq_keywords() {
  std::set<std::string> keys;
  if (PQconninfoOption* defaults = PQconndefaults()) {
    for (auto* o = defaults; o->keyword; ++o) keys.insert(o->keyword);
    PQconninfoFree(defaults);
  }
  return keys;
}

}  // namespace

void PoolConfig::validate() const {
  if (name.empty()) bad("name", "must not be empty");
  for (char c : name)
    if (static_cast<unsigned char>(c) < 0x20) bad("name", "must not contain control characters");
  if (max_size < 1) bad("max_size", "must be at least 1");
  if (max_size > 10000) bad("max_size", fmt::format("{} is more than any server accepts (at most 10000)", max_size));
  if (min_idle > max_size)
    bad("min_idle", fmt::format("{} is greater than max_size ({})", min_idle, max_size));
  positive("connect_timeout", connect_timeout);
  not_negative("acquire_timeout", acquire_timeout);
  not_negative("idle_timeout", idle_timeout);
  not_negative("max_lifetime", max_lifetime);
  not_negative("keepalive_interval", keepalive_interval);
  positive("validation_timeout", validation_timeout);
  not_negative("validate_after_idle", validate_after_idle);
  not_negative("leak_detection_threshold", leak_detection_threshold);
  positive("maintenance_interval", maintenance_interval);
  if (session_reset != SessionReset::discard_all && session_reset != SessionReset::reset_all &&
      session_reset != SessionReset::none)
    bad("session_reset", fmt::format("{} is not a SessionReset value", static_cast<int>(session_reset)));
  if (statement_cache.mode != StatementCaching::off && statement_cache.mode != StatementCaching::automatic &&
      statement_cache.mode != StatementCaching::unnamed)
    bad("statement_cache.mode", fmt::format("{} is not a StatementCaching value", static_cast<int>(statement_cache.mode)));
  if (statement_cache.capacity < 1) bad("statement_cache.capacity", "must be at least 1");
  if (application_name.size() >= 64) bad("application_name", "must be shorter than 64 bytes (NAMEDATALEN)");
  if (service.find('/') != std::string::npos) bad("service", "must not contain '/'");
  if (size_from_advice && service.empty())
    bad("service", "must be set when size_from_advice is on (the advice is per service)");
  if (size_from_advice && !use_extension)
    bad("size_from_advice", "needs use_extension (the advice comes from pg_usher)");
  if (advice_instances < 1 || advice_instances > 100000)
    bad("advice_instances", fmt::format("must be 1 to 100000 (got {})", advice_instances));
  not_negative("advice_interval", advice_interval);
  if (breaker_enabled) breaker.validate("PoolConfig.breaker.");

  // conninfo: parsed here so that a typo fails at start-up, not at the first connect.
  // libpq's message may quote part of the string, so it is not repeated.
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &err);
  if (!parsed) {
    PQfreemem(err);
    bad("conninfo", "cannot be parsed as keyword=value pairs or a postgresql:// URI");
  }
  PQconninfoFree(parsed);

  auto keys = libpq_keywords();
  for (const auto& [key, value] : options) {
    if (!keys.contains(key)) bad("options", fmt::format("\"{}\" is not a libpq connection option", key));
    if (key == "dbname" && value.find('=') != std::string::npos)
      bad("options", "dbname must be a plain database name; put connection strings in conninfo");
  }
}

std::string PoolConfig::effective_application_name() const {
  if (!application_name.empty()) return application_name;
  return application_name_for(service.empty() ? "usher" : service, name);
}

}  // namespace usher
