// Names of event types and log levels, for log lines and tests.
#include "usher/pool_events.hpp"

namespace usher {

std::string_view to_string(PoolEventType type) noexcept {
  switch (type) {
    case PoolEventType::connect: return "connect";
    case PoolEventType::connect_failure: return "connect_failure";
    case PoolEventType::validation_failure: return "validation_failure";
    case PoolEventType::leak: return "leak";
    case PoolEventType::timeout: return "timeout";
    case PoolEventType::retire: return "retire";
    case PoolEventType::advice: return "advice";
    case PoolEventType::advice_failure: return "advice_failure";
    case PoolEventType::breaker: return "breaker";
  }
  return "unknown";
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
  }
  return "unknown";
}

}  // namespace usher
