// usher activity: per service over the sampled window (usher.activity_summary): how many
// sessions and statements it really has, the figures pool advice is computed from.
#include <cstdlib>

#include <fmt/format.h>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "session.hpp"
#include "table.hpp"

namespace usher::cli {
namespace {

const char* const kSql =
    "SELECT service, samples, window_start, window_end,"
    " extract(epoch FROM window_end - window_start)::float8 AS window_seconds,"
    " peak_connected, p95_connected, peak_active, p95_active, peak_queued, statements,"
    " statements_per_second, mean_busy_seconds, mean_active"
    " FROM usher.activity_summary WHERE ($1::text IS NULL OR service = $1) ORDER BY service";

// A number with `digits` decimals; NULL (not enough samples) stays empty.
std::string fixed(std::string_view value, int digits) {
  if (value.empty()) return {};
  return fmt::format("{:.{}f}", std::strtod(std::string(value).c_str(), nullptr), digits);
}

int run(const Args& args) {
  std::vector<usher::Param> params = {text_param(args.get("service"))};
  auto rows = fetch_rows(args, kSql, params);
  if (!rows) return exit_code::ok;  // printed as JSON
  const auto& r = *rows;
  Table t({{"service"}, {"samples", true}, {"window", true}, {"conns p95/peak", true}, {"active p95/peak", true},
           {"queued peak", true}, {"stmt/s", true}, {"busy ms", true}, {"mean active", true}});
  for (std::size_t i = 0; i < r.rows(); ++i) {
    auto text = [&](std::size_t c) { return std::string(r.text(i, c)); };
    std::string busy_ms = r.is_null(i, 12) ? "" : fixed(fmt::format("{}", r.get<double>(i, 12) * 1000), 2);
    t.add({text(0), text(1), human_age(r.text(i, 4)), text(6) + "/" + text(5), text(8) + "/" + text(7), text(9),
           fixed(r.text(i, 11), 1), busy_ms, fixed(r.text(i, 13), 2)});
  }
  t.print(stdout);
  return exit_code::ok;
}

}  // namespace

const Command& activity_command() {
  static const Command c{
      "activity", "sampled sessions, statements and busy time per service",
      "Per service over the window the sampler keeps (usher.sample_interval x\n"
      "usher.history_samples): samples, window length, connected sessions (p95/peak),\n"
      "statements active at the gate (p95/peak), peak queued, statements per second, mean\n"
      "busy time per statement, and mean concurrency (Little's law). An empty figure: not\n"
      "enough samples yet. usher advice turns these into pool sizes.",
      {{"service", 0, "SERVICE", "only this service"}},
      run};
  return c;
}

}  // namespace usher::cli
