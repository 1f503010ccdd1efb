// Pool::prometheus(): the text exposition format, one `pool` label on every series.
#include <fmt/format.h>

#include "pool_core.hpp"
#include "usher/pool.hpp"

namespace usher {
namespace {

// Label values escape backslash, double quote and newline.
std::string escape_label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void histogram(std::string& out, std::string_view name, std::string_view help,
               const std::string& label, const HistogramSnapshot& h) {
  header(out, name, "histogram", help);
  for (const auto& [le, count] : h.cumulative)
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{:g}\"}} {}\n", name, label, le, count);
  fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"+Inf\"}} {}\n", name, label, h.count);
  fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {:.9f}\n", name, label,
                 std::chrono::duration<double>(h.sum).count());
  fmt::format_to(std::back_inserter(out), "{}_count{{{}}} {}\n", name, label, h.count);
}

}  // namespace

std::string Pool::prometheus() const {
  PoolStats s = stats();
  std::string label = fmt::format("pool=\"{}\"", escape_label(config().name));
  std::string out;
  auto it = std::back_inserter(out);

  header(out, "usher_pool_connections", "gauge", "Open connections of the pool, by state.");
  fmt::format_to(it, "usher_pool_connections{{{},state=\"idle\"}} {}\n", label, s.idle);
  fmt::format_to(it, "usher_pool_connections{{{},state=\"in_use\"}} {}\n", label, s.in_use);
  fmt::format_to(it, "usher_pool_connections{{{},state=\"pending\"}} {}\n", label, s.pending);

  auto gauge = [&](std::string_view name, std::string_view help, std::uint64_t v) {
    header(out, name, "gauge", help);
    fmt::format_to(it, "{}{{{}}} {}\n", name, label, v);
  };
  gauge("usher_pool_max_connections", "The pool's max_size in force (configured, or from usher.pool_advice()).", s.max_size);
  gauge("usher_pool_waiting_threads", "Threads waiting in acquire().", s.waiting);

  auto counter = [&](std::string_view name, std::string_view help, std::uint64_t v) {
    header(out, name, "counter", help);
    fmt::format_to(it, "{}{{{}}} {}\n", name, label, v);
  };
  counter("usher_pool_connections_created_total", "Connections opened.", s.created);
  counter("usher_pool_connections_destroyed_total", "Connections closed.", s.destroyed);
  counter("usher_pool_acquires_total", "Leases handed out.", s.acquired);
  counter("usher_pool_acquire_timeouts_total", "acquire() calls that timed out.", s.timeouts);
  counter("usher_pool_validation_failures_total",
          "Connections that failed validation or keepalive and were replaced.", s.validation_failures);
  counter("usher_pool_connect_failures_total", "Failed attempts to open a connection.", s.connect_failures);
  counter("usher_pool_leaks_total", "Leases reported as possible leaks.", s.leaks);

  histogram(out, "usher_pool_acquire_wait_seconds", "Time from acquire() to a lease in hand.",
            label, s.acquire_wait);
  histogram(out, "usher_pool_usage_seconds", "Time a lease was held.", label, s.usage);
  return out;
}

}  // namespace usher
