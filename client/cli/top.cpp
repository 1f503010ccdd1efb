// usher top: a live view of every service, refreshed like top(1): sessions by state,
// the statement gate (running and queued), quota use, refusals per second (counters
// differenced between two samples), leases and leak suspects, and the health checks
// that are not ok. Plain ANSI escapes on a terminal in cbreak mode (no curses); the
// terminal is given back on q, on SIGINT/SIGTERM/SIGHUP and on any error. `--once`
// prints one frame without escapes for scripts. docs/cli.md, "usher top". This file:
// the options, the two modes and the command; top.hpp lists the other parts.
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "usher/errors.hpp"

#include "commands.hpp"
#include "exit_codes.hpp"
#include "failure.hpp"
#include "session.hpp"
#include "table.hpp"
#include "top.hpp"

namespace usher::cli {
namespace {

using namespace top;

// --- options -----------------------------------------------------------------------------
double parse_interval(const Args& args, bool once) {
  auto text = args.get("interval");
  if (!text) return 1.0;
  char* end = nullptr;
  double v = std::strtod(text->c_str(), &end);
  bool ok = !text->empty() && end && *end == '\0' && std::isfinite(v) && v <= 86400 && (once ? v >= 0 : v >= 0.1);
  if (!ok)
    throw UsageError(fmt::format("--interval takes seconds between {} and 86400, not '{}'", once ? "0" : "0.1", *text));
  return v;
}

SortKey parse_sort(const Args& args) {
  auto text = args.get("sort");
  if (!text) return SortKey::service;
  for (const auto& s : kSorts)
    if (*text == s.name) return s.sort;
  std::vector<std::string> names;
  for (const auto& s : kSorts) names.emplace_back(s.name);
  auto hint = closest(*text, names);
  throw UsageError(fmt::format("unknown --sort '{}'{} (service, conns, active, queued, refusals, leases)", *text,
                               hint ? fmt::format("; did you mean '{}'?", *hint) : ""));
}

// --- the two modes -----------------------------------------------------------------------
int run_once(Session& s, ViewState& view) {
  Rates rates;
  Sample sample = take_sample(s.conn, view, -1);
  rates.apply(sample, Clock::now());
  if (view.interval > 0) {
    // Rates need two samples: the second one --interval later.
    auto ms = static_cast<long>(view.interval * 1000);
    struct timespec ts {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    sample = take_sample(s.conn, view, -1);
    rates.apply(sample, Clock::now());
  }
  Frame f = render(sample, view, terminal_width(), 0);
  for (const auto& l : f.lines) fmt::print("{}\n", l);
  return exit_code::ok;
}

// Applies one key. Returns false to quit.
bool on_key(char c, ViewState& view, Clock::time_point& next_refresh) {
  if (view.typing) {
    if (c == '\r' || c == '\n') {
      view.filter = view.typing->empty() ? std::nullopt : std::optional<std::string>(*view.typing);
      view.typing.reset();
      next_refresh = Clock::now();  // the filter is a query parameter: read again
    } else if (c == 0x1b) {
      view.typing.reset();
    } else if (c == 0x7f || c == 0x08) {
      if (!view.typing->empty()) view.typing->pop_back();
    } else if (static_cast<unsigned char>(c) >= 0x20 && view.typing->size() < 63) {
      *view.typing += c;
    }
    return true;
  }
  switch (c) {
    case 'q': case 'Q': return false;
    case '/': case 'f': view.typing = view.filter.value_or(""); return true;
    case 'p': view.paused = !view.paused; if (!view.paused) next_refresh = Clock::now(); return true;
    case ' ': next_refresh = Clock::now(); return true;
    default: break;
  }
  for (const auto& s : kSorts)
    if (s.key == c) {
      view.reverse = view.sort == s.sort ? !view.reverse : false;  // the same key again: reversed
      view.sort = s.sort;
    }
  return true;
}

int run_live(const Args& args, ViewState& view) {
  install_signals();
  // The first connection and the first sample are made before the screen is taken, so a
  // wrong conninfo, a missing pg_monitor grant or a database without pg_usher is one
  // line on stderr with its exit status, as for every command.
  std::optional<Session> session = connect_pinned(args);
  view.target = session->database;
  Rates rates;
  std::optional<Sample> sample = take_sample(session->conn, view, g_stop_pipe[0]);
  rates.apply(*sample, Clock::now());
  auto next_refresh = Clock::now() + std::chrono::microseconds(static_cast<long>(view.interval * 1e6));
  Terminal terminal;
  while (!g_stop) {
    if (!view.paused && Clock::now() >= next_refresh) {
      try {
        if (!session) session = connect_pinned(args);
        Sample fresh = take_sample(session->conn, view, g_stop_pipe[0]);
        rates.apply(fresh, Clock::now());
        sample = std::move(fresh);
        view.error.clear();
      } catch (const usher::ConnectAborted&) {
        break;  // a stop signal came during the connect or the statement
      } catch (...) {
        if (g_stop) break;
        // The server went away (restart, failover, network), or refused a statement:
        // shown in the status line, the last frame kept, and tried again next interval.
        Failure failure = describe_current_exception();
        view.error = failure.message;
        session.reset();
      }
      next_refresh = Clock::now() + std::chrono::microseconds(static_cast<long>(view.interval * 1e6));
    }
    draw(sample ? &*sample : nullptr, view);
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_stop_pipe[0], POLLIN, 0}};
    int timeout = -1;  // paused: until a key or a signal
    if (!view.paused)
      timeout = static_cast<int>(
          std::max<long>(0, std::chrono::ceil<std::chrono::milliseconds>(next_refresh - Clock::now()).count()));
    int ready = poll(fds, 2, timeout);
    if (ready < 0 && errno != EINTR) throw std::runtime_error(fmt::format("poll: {}", std::strerror(errno)));
    if (ready > 0 && (fds[0].revents & (POLLHUP | POLLERR)) && !(fds[0].revents & POLLIN)) break;  // tty gone
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      char keys[64];
      ssize_t n = ::read(STDIN_FILENO, keys, sizeof keys);
      if (n == 0) break;  // end of input: the terminal is gone
      for (ssize_t i = 0; i < n; ++i) {
        // An escape sequence (an arrow key) read in one go is skipped whole, except
        // while typing a filter, where a lone Esc cancels.
        if (keys[i] == 0x1b && i + 1 < n && !view.typing) break;
        if (!on_key(keys[i], view, next_refresh)) return exit_code::ok;
      }
    }
  }
  return exit_code::ok;
}

int run(const Args& given) {
  Args args = given;
  if (auto dsn = args.get("dsn")) {
    if (args.has("dbname")) throw UsageError("give the connection with -d/--dbname or --dsn, not both");
    args.values["dbname"] = *dsn;
  }
  if (args.has("format") && output_format(args) != Format::table)
    throw UsageError("usher top prints frames for people; for JSON use usher status --format json or usher leases --format json");
  bool once = args.has("once");
  ViewState view;
  view.interval = parse_interval(args, once);
  view.sort = parse_sort(args);
  if (auto service = args.get("service"); service && !service->empty()) view.filter = *service;
  if (once) {
    Session s = connect_pinned(args);
    view.target = s.database;
    return run_once(s, view);
  }
  if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
    throw UsageError("usher top needs a terminal on stdin and stdout; for scripts use usher top --once");
  return run_live(args, view);
}

}  // namespace

const Command& top_command() {
  static const Command c{
      "top", "a live view of every service, refreshed like top",
      "A frame per --interval (1 s): health, then one row per service of usher.service_status:\n"
      "  CONN/MAX     sessions admitted under the service / its max_connections (- : no limit)\n"
      "  ACT IDLE IXACT  its sessions by state: active, idle, idle in transaction\n"
      "  GATE         statements holding a gate slot / max_active; QUEUE: waiting for one\n"
      "  REF/s        logins refused per second (quota, reservation) since the last frame\n"
      "  TMO/s        statements refused at the gate per second (queue timeout, queue full)\n"
      "  LEASE LEAK   connections leased by client pools; leak suspects among them\n"
      "then the leak suspects with their holder (the borrower's source location).\n"
      "Keys: q quit; s c a w r l sort by service, conns, active, queued (waiting),\n"
      "refusals, leases (again: reversed); / or f filter by part of a service name (Enter\n"
      "applies, empty clears, Esc cancels); p pause; space refresh now.\n"
      "--once prints one frame without escapes (two samples --interval apart, for the rates;\n"
      "--interval 0: one sample, rates shown as -). A lost server is shown in the status line\n"
      "and reconnected to every interval. Exit status 0 on q, SIGINT or SIGTERM.",
      {{"once", 0, "", "print one frame and exit (for scripts; no escapes)"},
       {"interval", 0, "SECONDS", "seconds between frames (default 1; --once: between its two samples)"},
       {"sort", 0, "KEY", "service (default), conns, active, queued, refusals or leases"},
       {"service", 0, "TEXT", "start filtered to services whose name contains TEXT"},
       {"dsn", 0, "CONNINFO", "the same as -d/--dbname"}},
      run};
  return c;
}

}  // namespace usher::cli