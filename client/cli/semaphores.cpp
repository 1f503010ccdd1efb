// usher semaphores: the application semaphores in shared memory (usher.semaphores).
#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

const char* const kSql =
    "SELECT name, capacity, held, available, waiters, holders, holder_pids, peak_held, acquired_total,"
    " timeouts_total, defined"
    " FROM usher.semaphores WHERE ($1::text IS NULL OR name = $1) ORDER BY name";

int run(const Args& args) {
  std::vector<usher::Param> params = {text_param(args.get("name"))};
  auto rows = fetch_rows(args, kSql, params);
  if (!rows) return exit_code::ok;  // printed as JSON
  const auto& r = *rows;
  Table t({{"name"}, {"held", true}, {"available", true}, {"waiters", true}, {"peak", true}, {"acquired", true},
           {"timeouts", true}, {"holders"}});
  for (std::size_t i = 0; i < r.rows(); ++i) {
    auto text = [&](std::size_t c) { return std::string(r.text(i, c)); };
    std::string name = text(0);
    if (text(10) == "f") name += " (dropped)";
    std::string pids = array_items(r.text(i, 6));
    t.add({name, fmt::format("{}/{}", text(2), text(1)), text(3), text(4), text(7), text(8), text(9),
           pids.empty() ? "" : fmt::format("{} ({})", text(5), pids)});
  }
  t.print(stdout, terminal_width());
  return exit_code::ok;
}

}  // namespace

const Command& semaphores_command() {
  static const Command c{
      "semaphores", "application semaphores: permits held, waiters, holders",
      "One row per semaphore in shared memory: held/capacity permits, available, waiters,\n"
      "peak held, acquisitions and timeouts since server start, and the holding sessions\n"
      "(count and pids). (dropped): removed from usher.semaphore, still held by someone.",
      {{"name", 0, "NAME", "only this semaphore"}},
      run};
  return c;
}

}  // namespace usher::cli
