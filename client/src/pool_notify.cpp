// How the pool tells the world: event callback, logger (default: stderr for warnings
// and errors), and closing retired connections with their retire event.
#include <fmt/format.h>

#include <cstdio>

#include "pool_core.hpp"

namespace usher::detail {

void PoolCore::emit(PoolEventType type, std::uint64_t connection_id, std::string reason,
                    const LeakInfo* leak, const PoolAdvice* advice) const {
  if (!config_.on_event) return;
  PoolEvent e{type, config_.name, connection_id, std::move(reason), leak, advice};
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

void PoolCore::retire(std::vector<Retired>& retired) const {
  for (auto& r : retired) {
    auto id = r.connection.id;
    r.connection.conn = Connection();  // PQfinish: outside the lock, it may send a Terminate message
    emit(PoolEventType::retire, id, r.reason);
  }
  retired.clear();
}

}  // namespace usher::detail
