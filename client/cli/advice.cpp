// usher advice: usher.pool_advice()'s recommended pool sizes. The instances argument is
// built by the server from parameters (jsonb_build_object / jsonb_object_agg); service
// names and counts are never pasted into the SQL.
#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

bool is_count(const std::string& s) {
  return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The SQL expression for pool_advice's argument, and its parameters. The range 1..100000
// is left to the server, whose message names the service.
std::string instances_expression(const std::optional<std::string>& spec, std::vector<usher::Param>& params) {
  if (!spec) return "NULL::jsonb";
  if (is_count(*spec)) {
    // One count for every service pool_advice reports on (the enabled published ones).
    params.push_back(usher::Param{*spec, usher::type_oids::int4});
    return "(SELECT coalesce(jsonb_object_agg(name, $1::int), '{}') FROM usher.published_services WHERE enabled)";
  }
  std::vector<std::string> pairs;
  std::set<std::string> seen;
  for (const auto& item : split_commas(*spec)) {
    auto eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0 || !is_count(item.substr(eq + 1)))
      throw UsageError(fmt::format(
          "--instances takes a count (--instances 4) or service=count pairs (--instances orders=12,billing=3), "
          "not '{}'", item));
    std::string service = item.substr(0, eq);
    if (!seen.insert(service).second)
      throw UsageError(fmt::format("--instances names service '{}' twice", service));
    params.push_back(usher::Param{service, usher::type_oids::text});
    params.push_back(usher::Param{item.substr(eq + 1), usher::type_oids::int4});
    // Only the $1/$2 parameter markers go into the text, never the values.
    pairs.push_back(fmt::format("${}::text, ${}::int", params.size() - 1, params.size()));
  }
  std::string expr = "jsonb_build_object(";
  for (std::size_t i = 0; i < pairs.size(); ++i) expr += (i ? ", " : "") + pairs[i];
  return expr + ")";
}

int run(const Args& args) {
  bool why = args.has("why");
  std::vector<usher::Param> params;
  std::string sql = fmt::format(
      "SELECT service, client_instances, max_pool_size, min_idle, basis{} FROM usher.pool_advice({}) ORDER BY service",
      why ? ", rationale" : "", instances_expression(args.get("instances"), params));
  auto rows = fetch_rows(args, sql, params);
  if (!rows) return exit_code::ok;  // printed as JSON
  const auto& r = *rows;
  Table t({{"service"}, {"instances", true}, {"max_pool_size", true}, {"min_idle", true}, {"basis"}});
  for (std::size_t i = 0; i < r.rows(); ++i)
    t.add({std::string(r.text(i, 0)), std::string(r.text(i, 1)), std::string(r.text(i, 2)),
           std::string(r.text(i, 3)), std::string(r.text(i, 4))});
  t.print(stdout);
  // The rationale is a paragraph per service: printed whole below the table, since
  // cutting it to a column would defeat asking for it.
  if (why)
    for (std::size_t i = 0; i < r.rows(); ++i) fmt::print("\n{}: {}\n", r.text(i, 0), r.text(i, 5));
  return exit_code::ok;
}

}  // namespace

const Command& advice_command() {
  static const Command c{
      "advice", "recommended pool sizes per service (usher.pool_advice)",
      "Per enabled service: max_pool_size and min_idle for each client process (pool), and\n"
      "the basis: observed (from the sampled activity) or default share. --instances tells\n"
      "how many client processes share a service: one count for every service, or\n"
      "service=count pairs (others 1). The formula is in docs/pool-advice.md.",
      {{"instances", 0, "N|SERVICE=N,...", "client processes per service (default 1)"},
       {"why", 0, "", "add the rationale: every input and step of the computation"}},
      run};
  return c;
}

}  // namespace usher::cli
