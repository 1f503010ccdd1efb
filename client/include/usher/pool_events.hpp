#pragma once
// What the pool reports about itself: events for programs, log lines for people.

#include <chrono>
#include <cstdint>
#include <functional>
#include <source_location>
#include <string>
#include <string_view>
#include <thread>

namespace usher {

// A lease held for longer than leak_detection_threshold.
struct LeakInfo {
  std::uint64_t connection_id = 0;
  int backend_pid = 0;
  std::source_location where;   // the acquire() call
  std::thread::id thread;       // the thread that called acquire()
  std::chrono::nanoseconds held{};
  std::string holder;           // the holder text given to usher.checkout()
};

enum class PoolEventType {
  connect,             // a new connection is ready
  connect_failure,     // opening a connection failed (the pool keeps trying)
  validation_failure,  // a connection failed validation, keepalive or its reset; discarded
  leak,                // a lease exceeded leak_detection_threshold (reported once per lease)
  timeout,             // acquire() gave up with PoolTimeout
  retire,              // a connection was closed: idle, lifetime, broken, dirty, above
                       // max_size (after a smaller advice) or close()
  advice,              // usher.pool_advice() was read; the reason says the sizes in force
  advice_failure,      // it could not be read; the sizes stay as they were
  breaker,             // the circuit breaker changed state; reason "closed -> open: why"
};

std::string_view to_string(PoolEventType type) noexcept;

struct PoolAdvice;          // usher/pool_advice.hpp
struct BreakerTransition;   // usher/circuit_breaker.hpp

struct PoolEvent {
  PoolEventType type;
  std::string_view pool;
  std::uint64_t connection_id = 0;  // 0 when no connection is concerned
  std::string reason;               // e.g. "idle", "lifetime", "broken", the error text
  const LeakInfo* leak = nullptr;   // set for PoolEventType::leak
  const PoolAdvice* advice = nullptr;  // set for PoolEventType::advice
  const BreakerTransition* transition = nullptr;  // set for PoolEventType::breaker
};

enum class LogLevel { debug, info, warning, error };
std::string_view to_string(LogLevel level) noexcept;

using EventCallback = std::function<void(const PoolEvent&)>;
using Logger = std::function<void(LogLevel, std::string_view message)>;

}  // namespace usher
