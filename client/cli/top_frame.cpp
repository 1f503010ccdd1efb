// usher top's frame: the rows sorted and laid out in the terminal's width and height,
// the leak suspects below them, and the status line; drawn with ANSI escapes.
#include <algorithm>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "table.hpp"
#include "top.hpp"

namespace usher::cli::top {
namespace {

void sort_rows(std::vector<ServiceRow>& rows, SortKey key, bool reverse) {
  auto metric = [key](const ServiceRow& r) -> double {
    switch (key) {
      case SortKey::conns: return static_cast<double>(r.current);
      case SortKey::active: return static_cast<double>(r.active + r.gate_active);
      case SortKey::queued: return static_cast<double>(r.queued);
      case SortKey::refusals: return r.refused_rate.value_or(0) + r.gate_rate.value_or(0);
      case SortKey::leases: return static_cast<double>(r.suspects) * 1e6 + static_cast<double>(r.leases);
      case SortKey::service: break;
    }
    return 0;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const ServiceRow& a, const ServiceRow& b) {
    if (key == SortKey::service) return reverse ? a.name > b.name : a.name < b.name;
    double ma = metric(a), mb = metric(b);  // largest first, by name among equals
    if (ma != mb) return reverse ? ma < mb : ma > mb;
    return a.name < b.name;
  });
}

std::string rate_text(const std::optional<double>& rate) {
  if (!rate) return "-";
  if (*rate > 0 && *rate < 0.05) return "<0.1";
  return fmt::format("{:.1f}", *rate);
}

std::string limit_text(long value) { return value == 0 ? "-" : std::to_string(value); }

}  // namespace

// what is left.
Frame render(const Sample& sample, const ViewState& view, std::size_t width, std::size_t height) {
  Frame f;
  char clock[16];
  std::tm tm{};
  localtime_r(&sample.wall, &tm);
  std::strftime(clock, sizeof clock, "%H:%M:%S", &tm);
  std::string title = fmt::format("usher top  {}  {}  every {}s  sort: {}{}", view.target, clock, view.interval,
                                  sort_spec(view.sort).name, view.reverse ? " (reversed)" : "");
  if (view.filter) title += fmt::format("  filter: {}", *view.filter);
  if (view.paused) title += "  PAUSED";
  f.lines.push_back(title);

  std::size_t critical = 0, warning = 0;
  std::string bad;
  for (const auto& [check, status] : sample.checks) {
    if (status == "ok") continue;
    (status == "critical" ? critical : warning)++;
    bad += fmt::format("{}{} {}", bad.empty() ? "" : ", ", check, status);
  }
  if (sample.checks.empty()) f.lines.push_back("health: no checks");
  else if (bad.empty()) f.lines.push_back(fmt::format("health: ok ({} checks)", sample.checks.size()));
  else f.lines.push_back(fmt::format("health: {}  {}", critical ? "CRITICAL" : "WARNING", bad));

  long sessions = 0, queued = 0, leases = 0, suspects = 0;
  long long refused = 0, gate_refused = 0;
  for (const auto& r : sample.rows) {
    sessions += r.current, queued += r.queued, leases += r.leases, suspects += r.suspects;
    refused += r.refused, gate_refused += r.gate_refused;
  }
  f.lines.push_back(fmt::format("sessions {}  queued {}  leases {} ({} suspect)  refused {} logins, {} at the gate",
                                sessions, queued, leases, suspects, refused, gate_refused));
  f.lines.emplace_back();

  std::vector<ServiceRow> rows = sample.rows;
  sort_rows(rows, view.sort, view.reverse);
  // A service's name as its row shows it: marked when dropped or disabled.
  auto shown_name = [](const ServiceRow& r) {
    return r.name + (!r.listed ? " (dropped)" : !r.enabled ? " (disabled)" : "");
  };
  std::size_t name_width = 7;
  for (const auto& r : rows) name_width = std::max(name_width, display_width(shown_name(r)));
  name_width = std::min<std::size_t>(name_width, 16);
  auto line = [&](std::string_view name, auto&&... cells) {
    std::string text = cut(name, name_width);
    text += std::string(name_width - display_width(text), ' ');
    text += fmt::format(" {:>9} {:>4} {:>4} {:>5} {:>6} {:>5} {:>5} {:>5} {:>5} {:>4}", cells...);
    return text;
  };
  f.header_line = f.lines.size();
  f.lines.push_back(line("SERVICE", "CONN/MAX", "ACT", "IDLE", "IXACT", "GATE", "QUEUE", "REF/s", "TMO/s", "LEASE",
                         "LEAK"));
  std::size_t footer = height ? 1 : 0;  // the live status line
  std::size_t room = height ? (height > f.lines.size() + footer ? height - f.lines.size() - footer : 0) : rows.size();
  // Leak suspects get at most half the room left when there are any.
  std::size_t suspect_room = 0;
  if (!sample.suspects.empty())
    suspect_room = height ? std::min(sample.suspects.size() + 2, room / 2) : sample.suspects.size() + 2;
  std::size_t service_room = !height ? rows.size() : room > suspect_room ? room - suspect_room : 0;
  std::size_t shown = std::min(rows.size(), service_room);
  if (shown < rows.size() && shown > 0) --shown;  // one line says how many are left out
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& r = rows[i];
    f.lines.push_back(line(shown_name(r), fmt::format("{}/{}", r.current, limit_text(r.max_connections)), r.active, r.idle,
                           r.idle_in_xact, fmt::format("{}/{}", r.gate_active, limit_text(r.max_active)), r.queued,
                           rate_text(r.refused_rate), rate_text(r.gate_rate), r.leases, r.suspects));
  }
  if (rows.empty()) f.lines.push_back(view.filter ? "(no service matches the filter)" : "(no services)");
  else if (shown < rows.size()) f.lines.push_back(fmt::format("... {} more services", rows.size() - shown));

  if (suspect_room >= 3) {
    f.lines.emplace_back();
    f.lines.push_back(fmt::format("LEAK SUSPECTS: {} (idle with a lease older than usher.lease_warning)",
                                  sample.suspects.size()));
    std::size_t n = std::min(sample.suspects.size(), suspect_room - 2);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& s = sample.suspects[i];
      f.lines.push_back(fmt::format("{:>8}  {:<{}}  {:>7}  {}", s.pid, cut(s.service, name_width), name_width, s.age,
                                    s.holder));
    }
  }
  if (width)
    for (auto& l : f.lines) l = cut(l, width);
  return f;
}

namespace {

std::string status_line(const ViewState& view) {
  if (view.typing) return fmt::format("filter (part of a service name; Enter applies, Esc cancels): {}_", *view.typing);
  std::string keys = "q quit  s/c/a/w/r/l sort  / filter  p pause  space refresh";
  if (!view.error.empty()) return fmt::format("retrying every {}s: {}", view.interval, view.error);
  return keys;
}

}  // namespace

void draw(const Sample* sample, const ViewState& view) {
  auto [cols, rows] = Terminal::size();
  std::size_t width = cols > 1 ? cols - 1 : 1;  // the last column is left alone: no auto-wrap
  std::string out = "\x1b[H";
  std::size_t used = 0;
  if (sample) {
    Frame f = render(*sample, view, width, rows);
    for (std::size_t i = 0; i < f.lines.size() && i + 1 < rows; ++i, ++used) {
      if (i == f.header_line) out += "\x1b[7m" + f.lines[i] + "\x1b[0m";
      else out += f.lines[i];
      out += "\x1b[K\r\n";
    }
  } else {
    out += cut(fmt::format("usher top  {}  connecting...", view.target), width) + "\x1b[K\r\n";
    ++used;
  }
  out += "\x1b[J";
  out += fmt::format("\x1b[{};1H", rows);
  std::string status = cut(status_line(view), width);
  out += view.error.empty() ? status : "\x1b[1m" + status + "\x1b[0m";
  out += "\x1b[K";
  Terminal::put(out);
}

}  // namespace usher::cli::top
