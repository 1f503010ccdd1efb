// usher top: a live view of every service, refreshed like top(1): sessions by state,
// the statement gate (running and queued), quota use, refusals per second (counters
// differenced between two samples), leases and leak suspects, and the health checks
// that are not ok. Plain ANSI escapes on a terminal in cbreak mode (no curses); the
// terminal is given back on q, on SIGINT/SIGTERM/SIGHUP and on any error. `--once`
// prints one frame without escapes for scripts. docs/cli.md, "usher top".
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
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

namespace usher::cli {
namespace {

using Clock = std::chrono::steady_clock;

// Every statement reads the views and functions pg_usher grants to pg_monitor; the
// session's search_path is pinned to pg_catalog first (connect_pinned), so the
// operators and functions below resolve to the built-in ones. $1: the filter (a
// substring of the service name), NULL for none.
const char* const kServicesSql =
    "WITH b AS MATERIALIZED ("
    "  SELECT coalesce(service_enforced, service) AS service, state FROM usher.backends"
    "   WHERE pid <> pg_backend_pid()),"
    " bs AS (SELECT service, count(*) FILTER (WHERE state = 'active') AS active,"
    "   count(*) FILTER (WHERE state = 'idle') AS idle,"
    "   count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_xact"
    "   FROM b GROUP BY service),"
    " l AS (SELECT service, count(*) AS leases, count(*) FILTER (WHERE suspect) AS suspects"
    "   FROM usher.leases GROUP BY service)"
    " SELECT s.service, s.listed, s.enabled, s.current, s.max_connections, s.active, s.queued, s.max_active,"
    "  s.rejected_total, s.queue_timeouts_total + s.rejected_full_total,"
    "  coalesce(bs.active, 0), coalesce(bs.idle, 0), coalesce(bs.idle_in_xact, 0),"
    "  coalesce(l.leases, 0), coalesce(l.suspects, 0)"
    " FROM usher.service_status s"
    " LEFT JOIN bs ON bs.service = s.service LEFT JOIN l ON l.service = s.service"
    " WHERE $1::text IS NULL OR strpos(s.service, $1::text) > 0";

const char* const kHealthSql =
    "SELECT \"check\", status FROM usher.health()"
    " ORDER BY CASE status WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, \"check\"";

const char* const kSuspectsSql =
    "SELECT pid, service, extract(epoch FROM lease_age)::float8, holder FROM usher.leases"
    " WHERE suspect AND ($1::text IS NULL OR strpos(service, $1::text) > 0)"
    " ORDER BY lease_age DESC, pid LIMIT 100";

struct ServiceRow {
  std::string name;
  bool listed = true, enabled = true;
  long current = 0, max_connections = 0, gate_active = 0, queued = 0, max_active = 0;
  long long refused = 0, gate_refused = 0;  // counters since server start
  long active = 0, idle = 0, idle_in_xact = 0, leases = 0, suspects = 0;
  std::optional<double> refused_rate, gate_rate;  // per second; none before a second sample
};

struct Suspect {
  std::string pid, service, age, holder;
};

struct Sample {
  std::vector<ServiceRow> rows;
  std::vector<std::pair<std::string, std::string>> checks;  // check, status (worst first)
  std::vector<Suspect> suspects;
  std::time_t wall = 0;
};

enum class SortKey { service, conns, active, queued, refusals, leases };

struct SortSpec {
  char key;
  SortKey sort;
  const char* name;
};
constexpr SortSpec kSorts[] = {{'s', SortKey::service, "service"}, {'c', SortKey::conns, "conns"},
                               {'a', SortKey::active, "active"},   {'w', SortKey::queued, "queued"},
                               {'r', SortKey::refusals, "refusals"}, {'l', SortKey::leases, "leases"}};

const SortSpec& sort_spec(SortKey k) {
  for (const auto& s : kSorts)
    if (s.sort == k) return s;
  return kSorts[0];
}

// What the view shows besides the data: chosen by options and keys.
struct ViewState {
  SortKey sort = SortKey::service;
  bool reverse = false;
  std::optional<std::string> filter;
  bool paused = false;
  std::optional<std::string> typing;  // the filter being typed after / or f
  std::string error;                  // the last refresh's failure, shown in the status line
  double interval = 1.0;
  std::string target;                 // database (and server) for the title line
};

// --- signals: stop (SIGINT, SIGTERM, SIGHUP) and resize (SIGWINCH) ---------------------
volatile sig_atomic_t g_stop = 0;
volatile sig_atomic_t g_resized = 0;
int g_stop_pipe[2] = {-1, -1};  // readable once a stop signal came: aborts a query or connect

extern "C" void on_stop_signal(int) {
  g_stop = 1;
  int saved = errno;
  if (g_stop_pipe[1] >= 0) (void)!write(g_stop_pipe[1], "x", 1);
  errno = saved;
}
extern "C" void on_winch(int) { g_resized = 1; }

// The terminal's modes, for the SIGTSTP handler (set while a Terminal is alive).
termios g_saved_modes{}, g_raw_modes{};
volatile sig_atomic_t g_terminal_taken = 0;
constexpr char kTakeScreen[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";   // alternate screen, cursor hidden
constexpr char kGiveScreen[] = "\x1b[0m\x1b[?25h\x1b[?1049l";          // attributes reset, cursor, main screen

// Ctrl-Z: the shell gets its terminal back as it was (modes, main screen) while top is
// stopped; on SIGCONT top takes it again and redraws. Only async-signal-safe calls.
extern "C" void on_tstp(int) {
  int saved = errno;
  if (g_terminal_taken) {
    // SIGTTOU blocked: the shell may have seen the job stop (the subshell around top
    // stops at once) and taken the terminal back before this runs; tcsetattr from the
    // background would then stop top with SIGTTOU here, and the SIGTSTP below would stop
    // it again after fg (found in make test: top never redrew after fg).
    sigset_t ttou, before;
    sigemptyset(&ttou);
    sigaddset(&ttou, SIGTTOU);
    sigprocmask(SIG_BLOCK, &ttou, &before);
    (void)!write(STDOUT_FILENO, kGiveScreen, sizeof kGiveScreen - 1);
    tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_modes);
    sigprocmask(SIG_SETMASK, &before, nullptr);
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(SIGTSTP, &dfl, nullptr);
  sigset_t tstp;
  sigemptyset(&tstp);
  sigaddset(&tstp, SIGTSTP);
  sigprocmask(SIG_UNBLOCK, &tstp, nullptr);
  raise(SIGTSTP);  // stops here until SIGCONT
  struct sigaction again {};
  again.sa_handler = on_tstp;
  sigemptyset(&again.sa_mask);
  sigaction(SIGTSTP, &again, nullptr);
  if (g_terminal_taken) {
    tcsetattr(STDIN_FILENO, TCSANOW, &g_raw_modes);
    (void)!write(STDOUT_FILENO, kTakeScreen, sizeof kTakeScreen - 1);
  }
  g_resized = 1;  // the frame is drawn again (the poll it interrupted returns)
  errno = saved;
}

void install_signals() {
  if (g_stop_pipe[0] < 0 && pipe2(g_stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() returns at once with EINTR
  sa.sa_handler = on_stop_signal;
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
  sa.sa_handler = on_winch;
  sigaction(SIGWINCH, &sa, nullptr);
  sa.sa_handler = on_tstp;
  sigaction(SIGTSTP, &sa, nullptr);
}

// --- the terminal: cbreak without echo, alternate screen, hidden cursor ---------------
class Terminal {
 public:
  Terminal() {
    if (tcgetattr(STDIN_FILENO, &saved_) != 0)
      throw std::runtime_error(fmt::format("cannot read the terminal's settings: {}", std::strerror(errno)));
    termios raw = saved_;
    raw.c_lflag &= ~(ICANON | ECHO);  // ISIG kept: Ctrl-C is SIGINT, handled above
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    g_saved_modes = saved_;
    g_raw_modes = raw;
    if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0)
      throw std::runtime_error(fmt::format("cannot set the terminal up: {}", std::strerror(errno)));
    g_terminal_taken = 1;
    put(kTakeScreen);
  }
  ~Terminal() {
    g_terminal_taken = 0;
    put(kGiveScreen);
    tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  static void put(std::string_view text) {
    while (!text.empty()) {
      ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;  // the terminal is gone: nothing left to show it on
      text.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Columns and rows: the tty's own (it follows SIGWINCH), else $COLUMNS/$LINES, else 80x24.
  static std::pair<std::size_t, std::size_t> size() {
    winsize ws{};
    std::size_t cols = 0, rows = 0;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) cols = ws.ws_col, rows = ws.ws_row;
    auto env = [](const char* name) -> std::size_t {
      const char* v = std::getenv(name);
      long n = v ? std::strtol(v, nullptr, 10) : 0;
      return n > 0 ? static_cast<std::size_t>(n) : 0;
    };
    if (cols == 0) cols = env("COLUMNS");
    if (rows == 0) rows = env("LINES");
    return {cols ? cols : 80, rows ? rows : 24};
  }

 private:
  termios saved_{};
};

// --- reading -----------------------------------------------------------------------------
long to_long(std::string_view v) { return std::strtol(std::string(v).c_str(), nullptr, 10); }
long long to_ll(std::string_view v) { return std::strtoll(std::string(v).c_str(), nullptr, 10); }

// Connects (libpq environment or -d/--dsn) and pins the session's search_path, so that no
// object of the connected role's schemas can stand in for a built-in one.
Session connect_pinned(const Args& args) {
  Session s = connect(args);
  s.conn.exec("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false)");
  return s;
}

ExecOptions bounded(int abort_fd) {
  ExecOptions o;
  o.deadline = Clock::now() + std::chrono::seconds(10);
  o.abort_fd = abort_fd;
  return o;
}

Sample take_sample(usher::Connection& conn, const ViewState& view, int abort_fd) {
  Sample s;
  std::vector<usher::Param> params = {text_param(view.filter)};
  auto r = conn.exec_params(kServicesSql, params, bounded(abort_fd));
  for (std::size_t i = 0; i < r.rows(); ++i) {
    ServiceRow row;
    row.name = std::string(r.text(i, 0));
    row.listed = r.text(i, 1) == "t";
    row.enabled = r.text(i, 2) == "t";
    row.current = to_long(r.text(i, 3));
    row.max_connections = to_long(r.text(i, 4));
    row.gate_active = to_long(r.text(i, 5));
    row.queued = to_long(r.text(i, 6));
    row.max_active = to_long(r.text(i, 7));
    row.refused = to_ll(r.text(i, 8));
    row.gate_refused = to_ll(r.text(i, 9));
    row.active = to_long(r.text(i, 10));
    row.idle = to_long(r.text(i, 11));
    row.idle_in_xact = to_long(r.text(i, 12));
    row.leases = to_long(r.text(i, 13));
    row.suspects = to_long(r.text(i, 14));
    s.rows.push_back(std::move(row));
  }
  auto h = conn.exec_params(kHealthSql, {}, bounded(abort_fd));
  for (std::size_t i = 0; i < h.rows(); ++i) s.checks.emplace_back(h.text(i, 0), h.text(i, 1));
  auto l = conn.exec_params(kSuspectsSql, params, bounded(abort_fd));
  for (std::size_t i = 0; i < l.rows(); ++i)
    s.suspects.push_back({std::string(l.text(i, 0)), std::string(l.text(i, 1)), human_age(l.text(i, 2)),
                          std::string(l.text(i, 3))});
  s.wall = std::time(nullptr);
  return s;
}

// Refusals per second: each service's counters against the previous sample's. A service
// seen for the first time, or whose counters went back (a server restart), has no rate.
class Rates {
 public:
  void apply(Sample& s, Clock::time_point at) {
    double dt = std::chrono::duration<double>(at - at_).count();
    for (auto& row : s.rows) {
      auto it = last_.find(row.name);
      if (it != last_.end() && dt > 0 && row.refused >= it->second.first && row.gate_refused >= it->second.second) {
        row.refused_rate = static_cast<double>(row.refused - it->second.first) / dt;
        row.gate_rate = static_cast<double>(row.gate_refused - it->second.second) / dt;
      }
      last_[row.name] = {row.refused, row.gate_refused};
    }
    at_ = at;
  }

 private:
  std::map<std::string, std::pair<long long, long long>> last_;
  Clock::time_point at_{};
};

// --- the frame ---------------------------------------------------------------------------
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

struct Frame {
  std::vector<std::string> lines;
  std::size_t header_line = 0;  // the column headings (shown in reverse video live)
};

// The frame as lines of at most `width` code points (0: no limit) and, when `height` is
// not 0, at most `height` lines: the service rows come first, the leak suspects get
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

std::string status_line(const ViewState& view) {
  if (view.typing) return fmt::format("filter (part of a service name; Enter applies, Esc cancels): {}_", *view.typing);
  std::string keys = "q quit  s/c/a/w/r/l sort  / filter  p pause  space refresh";
  if (!view.error.empty()) return fmt::format("retrying every {}s: {}", view.interval, view.error);
  return keys;
}

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
    g_resized = 0;
    draw(sample ? &*sample : nullptr, view);
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {g_stop_pipe[0], POLLIN, 0}};
    auto wait = view.paused ? std::chrono::milliseconds(-1)
                            : std::chrono::ceil<std::chrono::milliseconds>(next_refresh - Clock::now());
    int timeout = view.paused ? -1 : static_cast<int>(std::max<long>(0, wait.count()));
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
