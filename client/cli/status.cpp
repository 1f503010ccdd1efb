// usher status: every service's connections, reservations and statement gate, from
// usher.service_status.
#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

const char* const kSql =
    "SELECT service, listed, enabled, current, max_connections, reserved_connections, reserved_in_use,"
    " active, queued, max_active, rejected_quota_total, rejected_reservation_total, rejected_total,"
    " queue_timeouts_total"
    " FROM usher.service_status ORDER BY service";

// pg_usher stores "no limit" as 0; a table reader should not mistake it for "none allowed".
std::string limit(std::string_view value) { return value == "0" ? "-" : std::string(value); }

int run(const Args& args) {
  auto rows = fetch_rows(args, kSql);
  if (!rows) return exit_code::ok;  // printed as JSON
  const auto& r = *rows;
  Table t({{"service"}, {"conns", true}, {"reserved", true}, {"active", true}, {"queued", true},
           {"max_active", true}, {"rejected", true}, {"queue_timeouts", true}});
  for (std::size_t i = 0; i < r.rows(); ++i) {
    std::string name(r.text(i, 0));
    if (r.text(i, 1) == "f") name += " (dropped)";
    else if (r.text(i, 2) == "f") name += " (disabled)";
    t.add({name, fmt::format("{}/{}", r.text(i, 3), limit(r.text(i, 4))),
           fmt::format("{}/{}", r.text(i, 6), r.text(i, 5)), std::string(r.text(i, 7)), std::string(r.text(i, 8)),
           limit(r.text(i, 9)), std::string(r.text(i, 12)), std::string(r.text(i, 13))});
  }
  t.print(stdout);
  return exit_code::ok;
}

}  // namespace

const Command& status_command() {
  static const Command c{
      "status", "connections, reservations and statement gate per service",
      "One row per service in shared memory (usher.service_status):\n"
      "  conns           sessions admitted under the service / its max_connections (- : no limit)\n"
      "  reserved        reserved slots in use / reserved_connections\n"
      "  active, queued  statements holding / waiting for a gate slot; max_active (- : no limit)\n"
      "  rejected        logins refused since server start (quota and reservation)\n"
      "  queue_timeouts  statements that gave up waiting at the gate since server start\n"
      "--format json gives every column of the query, limits as stored (0 = no limit).",
      {}, run};
  return c;
}

}  // namespace usher::cli
