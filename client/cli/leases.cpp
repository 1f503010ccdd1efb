// usher leases: connections a client pool has checked out (usher.checkout), oldest first;
// a suspect is idle with a lease older than usher.lease_warning (a likely leak).
#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

const char* const kSql =
    "SELECT pid, service, holder, extract(epoch FROM lease_age)::float8 AS lease_age_seconds, state,"
    " extract(epoch FROM state_age)::float8 AS state_age_seconds, application_name, role, database, suspect"
    " FROM usher.leases"
    " WHERE ($1::text IS NULL OR service = $1) AND ($2::boolean IS NULL OR suspect)"
    " ORDER BY lease_age DESC, pid";

int run(const Args& args) {
  std::vector<usher::Param> params = {text_param(args.get("service")),
                                      usher::Param{args.has("suspect") ? std::optional<std::string>("true")
                                                                       : std::nullopt,
                                                   usher::type_oids::boolean}};
  auto rows = fetch_rows(args, kSql, params);
  if (!rows) return exit_code::ok;  // printed as JSON
  const auto& r = *rows;
  Table t({{"pid", true}, {"service"}, {"role"}, {"state"}, {"leased", true}, {"in_state", true}, {"suspect"},
           {"holder"}});
  for (std::size_t i = 0; i < r.rows(); ++i) {
    auto text = [&](std::size_t c) { return std::string(r.text(i, c)); };
    t.add({text(0), text(1), text(7), text(4), human_age(r.text(i, 3)), human_age(r.text(i, 5)),
           text(9) == "t" ? "SUSPECT" : "", text(2)});
  }
  t.print(stdout, terminal_width());
  return exit_code::ok;
}

}  // namespace

const Command& leases_command() {
  static const Command c{
      "leases", "connections checked out by client pools, leak suspects",
      "One row per leased backend, the oldest lease first: pid, service, role, state, lease\n"
      "age, time in the current state, SUSPECT when idle with a lease older than\n"
      "usher.lease_warning (a connection a pool handed out and nobody uses: a likely leak),\n"
      "and the holder (the borrower's source location, as libusher reports it).",
      {{"service", 0, "SERVICE", "only leases of this service"},
       {"suspect", 0, "", "only the leak suspects"}},
      run};
  return c;
}

}  // namespace usher::cli
