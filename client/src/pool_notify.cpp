// How the pool tells the world: event callback, logger (default: stderr for warnings
// and errors), and closing retired connections with their retire event.
#include <fmt/format.h>
#include <fmt/std.h>

#include <cstdio>

#include "pool_core.hpp"

namespace usher::detail {

void PoolCore::emit(PoolEventType type, std::uint64_t connection_id, std::string reason,
                    const LeakInfo* leak, const PoolAdvice* advice,
                    const BreakerTransition* transition) const {
  if (!config_.on_event) return;
  PoolEvent e{type, config_.name, connection_id, std::move(reason), leak, advice, transition};
  try {
    config_.on_event(e);
  } catch (...) {
    // A throwing callback must not break the pool's own threads or the return path.
  }
}

void PoolCore::log(LogLevel level, std::string_view message) const {
  if (config_.logger) {
    try {
      config_.logger(level, message);
    } catch (...) {
    }
    return;
  }
  if (level >= LogLevel::warning)
    fmt::print(stderr, "usher {}: {}\n", to_string(level), message);
}

void PoolCore::report_leak(const LeakInfo& leak) const {
  emit(PoolEventType::leak, leak.connection_id, "held too long", &leak);
  log(LogLevel::warning,
      fmt::format("pool \"{}\": connection {} (backend {}) lent at {}:{} ({}) to thread {} "
                  "has been held for {} ms: possible leak",
                  config_.name, leak.connection_id, leak.backend_pid, leak.where.file_name(),
                  leak.where.line(), leak.where.function_name(), leak.thread,
                  std::chrono::duration_cast<std::chrono::milliseconds>(leak.held).count()));
}

void PoolCore::retire(std::vector<Retired>& retired) const {
  for (auto& r : retired) {
    auto id = r.connection.id;
    r.connection.conn = Connection();  // PQfinish: outside the lock, it may send a Terminate message
    emit(PoolEventType::retire, id, r.reason);
  }
  retired.clear();
}

}  // namespace usher::detail
