// usher services: the registry as written (usher.service, usher.role_service), whether the
// server enforces it yet; `services set NAME --option value ...` and `services drop NAME`
// change it through usher.set_service / usher.drop_service, as the owner or a role the
// owner granted EXECUTE on them (docs/security.md). Every value is a query parameter.
#include <fmt/format.h>

#include "usher/errors.hpp"

#include "commands.hpp"
#include "exit_codes.hpp"
#include "failure.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

// published: the server enforces these values now (usher.published_services, the
// registry of the database named by usher.database, as of its last commit).
const char* const kList =
    "SELECT s.name AS service, s.max_connections, s.reserved_connections, s.max_active,"
    " extract(epoch FROM s.queue_timeout)::float8 AS queue_timeout_seconds, s.priority, s.enabled, s.gate_mode,"
    " coalesce((SELECT array_agg(r.role_name::text ORDER BY r.role_name) FROM usher.role_service r"
    "           WHERE r.service = s.name), '{}') AS roles,"
    " (p.name IS NOT NULL AND (p.max_connections, p.reserved_connections, p.max_active, p.queue_timeout,"
    "   p.priority, p.enabled, p.gate_mode) IS NOT DISTINCT FROM (s.max_connections, s.reserved_connections,"
    "   s.max_active, s.queue_timeout, s.priority, s.enabled, s.gate_mode)) AS published,"
    " s.comment"
    " FROM usher.service s LEFT JOIN usher.published_services p ON p.name = s.name"
    " WHERE ($1::text IS NULL OR s.name = $1)"
    " ORDER BY s.name";

// Options left out are NULL: set_service keeps the current value (or the default for a
// new service).
const char* const kSet =
    "SELECT 1 FROM usher.set_service(name => $1, max_connections => $2::integer,"
    " reserved_connections => $3::integer, max_active => $4::integer, queue_timeout => $5::interval,"
    " priority => $6::integer, enabled => $7::boolean, comment => $8, gate_mode => $9)";
const char* const kDrop = "SELECT usher.drop_service($1)";

const char* const kSetOptions[] = {"max-connections", "reserved-connections", "max-active", "queue-timeout",
                                   "priority", "enabled", "comment", "gate-mode"};

std::string limit(std::string_view value) { return value == "0" ? "-" : std::string(value); }

int print_list(const Args& args, Session& s, const std::optional<std::string>& name) {
  std::vector<usher::Param> params = {text_param(name)};
  if (output_format(args) == Format::json) {
    fmt::print("{}\n", fetch_json(s.conn, kList, params));
    return exit_code::ok;
  }
  auto r = s.conn.exec_params(kList, params);
  Table t({{"service"}, {"max_conns", true}, {"reserved", true}, {"max_active", true}, {"queue_timeout", true},
           {"priority", true}, {"enabled"}, {"gate"}, {"published"}, {"roles"}, {"comment"}});
  for (std::size_t i = 0; i < r.rows(); ++i) {
    auto text = [&](std::size_t c) { return std::string(r.text(i, c)); };
    t.add({text(0), limit(text(1)), text(2), limit(text(3)), human_age(r.text(i, 4)), text(5),
           text(6) == "t" ? "yes" : "no", text(7), text(9) == "t" ? "yes" : "pending", array_items(r.text(i, 8)), text(10)});
  }
  t.print(stdout, terminal_width());
  return exit_code::ok;
}

// What a role without EXECUTE on the function is told.
[[noreturn]] void no_grant(const usher::PermissionDenied& e, const char* function) {
  throw NoPermission(fmt::format("{}: changing the registry needs the extension's owner or a role it granted "
                                 "EXECUTE on usher.{} (docs/security.md)",
                                 one_line(e.what()), function));
}

int run(const Args& args) {
  const auto& words = args.operands;
  std::string action = words.empty() ? "list" : words[0];
  if (action != "list" && action != "set" && action != "drop")
    throw UsageError(fmt::format("unknown action '{}': usher services [list [NAME] | set NAME [OPTIONS] | drop NAME] "
                                 "(see usher services --help)",
                                 action));
  if (action != "set")
    for (const char* o : kSetOptions)
      if (args.has(o)) throw UsageError(fmt::format("--{} goes with `usher services set NAME`", o));
  if (words.size() > 2 || (action != "list" && words.size() != 2))
    throw UsageError(fmt::format("usher services {} takes {} (see usher services --help)", action,
                                 action == "list" ? "at most one service name" : "one service name"));
  std::optional<std::string> name;
  if (words.size() == 2) name = words[1];
  output_format(args);  // a typo in --format costs no connection
  Session s = connect(args);
  if (action == "list") return print_list(args, s, name);

  if (action == "drop") {
    try {
      s.conn.exec(kDrop, *name);
    } catch (const usher::PermissionDenied& e) {
      no_grant(e, "drop_service");
    }
    if (output_format(args) == Format::table) fmt::print("dropped service {}\n", *name);
    else fmt::print("[]\n");
    return exit_code::ok;
  }

  std::vector<usher::Param> params = {text_param(name)};
  for (const char* o : kSetOptions) params.push_back(text_param(args.get(o)));
  try {
    s.conn.exec_params(kSet, params);
  } catch (const usher::PermissionDenied& e) {
    no_grant(e, "set_service");
  }
  return print_list(args, s, name);  // the service as it is now
}

}  // namespace

const Command& services_command() {
  static const Command c{
      "services", "the service registry; set or drop a service",
      "usher services [list [NAME]]  every service (or one) as written in usher.service, with\n"
      "  its mapped roles, and whether the server enforces these values yet (published:\n"
      "  yes, or pending until the registry of usher.database commits them).\n"
      "usher services set NAME [OPTIONS]  creates or changes a service with usher.set_service;\n"
      "  options left out keep their value (new service: the defaults). Prints the row.\n"
      "usher services drop NAME  removes it with usher.drop_service (its roles' mappings too).\n"
      "set and drop need the extension's owner or a role granted EXECUTE on those functions\n"
      "(exit 77 otherwise); a value the server refuses exits 65 with its message.\n"
      "-: no limit (stored as 0).",
      {{"max-connections", 0, "N", "set: sessions the service may have (0: no limit)"},
       {"reserved-connections", 0, "N", "set: connections kept free for it"},
       {"max-active", 0, "N", "set: statements running at once, the gate (0: no gate)"},
       {"queue-timeout", 0, "INTERVAL", "set: how long a statement waits at the gate ('5s')"},
       {"priority", 0, "N", "set: 0..1000, its weight in pool advice"},
       {"enabled", 0, "BOOL", "set: true or false"},
       {"comment", 0, "TEXT", "set: a comment"},
       {"gate-mode", 0, "MODE", "set: statement or transaction"}},
      run, "[list [NAME] | set NAME [OPTIONS] | drop NAME]"};
  return c;
}

}  // namespace usher::cli
