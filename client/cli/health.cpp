// usher health: usher.health()'s checks, with a Nagios-style exit status (0 ok,
// 1 warning, 2 critical, 3 could not check) so it can serve as a monitoring check.
#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

// One statement gives both the rows and the worst status, so the exit status always
// matches what was printed (two reads could see different states). A status this tool
// does not know counts as unknown (3) rather than ok. $1: --quiet, print non-ok rows only.
const char* const kSql =
    "SELECT coalesce(json_agg(h) FILTER (WHERE NOT $1 OR h.status <> 'ok'), '[]')::text,"
    " coalesce(max(CASE h.status WHEN 'ok' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 ELSE 3 END), 0)"
    " FROM (SELECT \"check\", status, value, threshold, detail FROM usher.health()) h";
const char* const kRows =
    "SELECT \"check\", status, value, threshold, detail,"
    " CASE status WHEN 'ok' THEN 0 WHEN 'warning' THEN 1 WHEN 'critical' THEN 2 ELSE 3 END"
    " FROM usher.health()";

int run(const Args& args) {
  Format format = output_format(args);
  bool quiet = args.has("quiet");
  Session s = connect(args);
  if (format == Format::json) {
    auto r = s.conn.exec(kSql, quiet);
    int worst = r.get<int>(0, 1);
    if (!quiet || worst != exit_code::ok) fmt::print("{}\n", r.text(0, 0));
    return worst;
  }
  auto r = s.conn.exec(kRows);
  int worst = exit_code::ok;
  Table t({{"check"}, {"status"}, {"value", true}, {"threshold", true}, {"detail"}});
  for (std::size_t i = 0; i < r.rows(); ++i) {
    int level = r.get<int>(i, 5);
    worst = std::max(worst, level);
    if (quiet && level == 0) continue;
    t.add({std::string(r.text(i, 0)), std::string(r.text(i, 1)), std::string(r.text(i, 2)),
           std::string(r.text(i, 3)), std::string(r.text(i, 4))});
  }
  if (!quiet || worst != exit_code::ok) t.print(stdout, terminal_width());
  return worst;
}

}  // namespace

const Command& health_command() {
  static const Command c{
      "health", "usher.health()'s checks; exit status 0 ok, 1 warning, 2 critical, 3 unknown",
      "One row per check of usher.health() (saturation, idle in transaction, long\n"
      "transactions, lock waits, replication lag, wraparound, prepared transactions, leases).\n"
      "Exit status, as a Nagios plugin: 0 every check ok, 1 a warning, 2 a critical check,\n"
      "3 the checks could not be run (cannot connect, pg_usher missing, permission denied).\n"
      "Thresholds are the usher.*_warning / usher.*_critical settings (docs/reference.md).",
      {{"quiet", 'q', "", "print nothing when every check is ok, else only the checks that are not"}}, run};
  return c;
}

}  // namespace usher::cli
