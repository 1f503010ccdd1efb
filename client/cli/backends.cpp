// usher backends: one line per client session, from usher.backends, optionally filtered
// by service and state. The filters travel as query parameters, never as SQL text.
#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

// service is the view's: the one the application_name names now. --service matches it
// or service_enforced (the one the session was admitted under and counts against, e.g.
// by a role mapping), so both ways of asking "who is orders?" find the session. The
// tool's own session is left out. Ages in seconds, so JSON readers get numbers.
const char* const kSql =
    "SELECT pid, service, service_enforced, role, application_name, state,"
    " extract(epoch FROM backend_age)::float8 AS backend_age_seconds,"
    " extract(epoch FROM xact_age)::float8 AS xact_age_seconds,"
    " extract(epoch FROM state_age)::float8 AS state_age_seconds,"
    " wait_event_type, wait_event, admission_state, lease_holder,"
    " extract(epoch FROM lease_age)::float8 AS lease_age_seconds,"
    " regexp_replace(query, '\\s+', ' ', 'g') AS query"
    " FROM usher.backends"
    " WHERE pid <> pg_backend_pid()"
    "   AND ($1::text IS NULL OR $1 IN (service, service_enforced))"
    "   AND ($2::text IS NULL OR state = $2)"
    " ORDER BY service, pid";

int run(const Args& args) {
  std::vector<usher::Param> params = {text_param(args.get("service")), text_param(args.get("state"))};
  auto rows = fetch_rows(args, kSql, params);
  if (!rows) return exit_code::ok;  // printed as JSON
  const auto& r = *rows;
  Table t({{"pid", true}, {"service"}, {"role"}, {"app"}, {"state"}, {"age", true}, {"xact", true},
           {"in_state", true}, {"wait"}, {"admission"}, {"lease"}, {"query"}});
  for (std::size_t i = 0; i < r.rows(); ++i) {
    auto text = [&](std::size_t c) { return std::string(r.text(i, c)); };
    std::string wait = r.is_null(i, 9) ? "" : text(9) + ":" + text(10);
    std::string lease = r.is_null(i, 12) ? "" : fmt::format("{} ({})", text(12), human_age(r.text(i, 13)));
    t.add({text(0), text(1), text(3), text(4), text(5), human_age(r.text(i, 6)), human_age(r.text(i, 7)),
           human_age(r.text(i, 8)), wait, text(11), lease, text(14)});
  }
  t.print(stdout, terminal_width());
  return exit_code::ok;
}

}  // namespace

const Command& backends_command() {
  static const Command c{
      "backends", "client sessions: service, state, ages, waits, gate and lease",
      "One row per client backend (usher.backends), the tool's own session left out.\n"
      "service is the one its application_name names; --service also matches the service\n"
      "the session was admitted under (service_enforced in JSON, e.g. by a role mapping).\n"
      "age: since the backend started; xact: of the open\n"
      "transaction; in_state: in the current state; wait: wait_event_type:wait_event;\n"
      "admission: active/queued at the statement gate; lease: holder (age). The query text\n"
      "is cut to the terminal's width (COLUMNS); --format json gives it whole, ages in seconds.",
      {{"service", 0, "SERVICE", "only sessions of this service"},
       {"state", 0, "STATE", "only sessions in this state (active, idle, 'idle in transaction', ...)"}},
      run};
  return c;
}

}  // namespace usher::cli
