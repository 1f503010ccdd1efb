#pragma once
// usher top's parts (client/cli/top*.cpp, one concern each): what a sample holds and
// how the view is set (this header), the terminal and its signals (top_terminal.cpp),
// sampling the server (top_sample.cpp), laying out and drawing a frame (top_frame.cpp);
// top.cpp has the options, the two modes and the command. docs/cli.md, "usher top".
#include <signal.h>
#include <termios.h>

#include <chrono>
#include <cstddef>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "args.hpp"
#include "session.hpp"

namespace usher::cli::top {

using Clock = std::chrono::steady_clock;

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
inline constexpr SortSpec kSorts[] = {{'s', SortKey::service, "service"}, {'c', SortKey::conns, "conns"},
                                      {'a', SortKey::active, "active"},   {'w', SortKey::queued, "queued"},
                                      {'r', SortKey::refusals, "refusals"}, {'l', SortKey::leases, "leases"}};

inline const SortSpec& sort_spec(SortKey k) {
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

// --- the terminal (top_terminal.cpp) ------------------------------------------------------
extern volatile sig_atomic_t g_stop;     // a stop signal came (SIGINT, SIGTERM, SIGHUP)
extern int g_stop_pipe[2];               // readable once a stop signal came: aborts a query or connect

// Installs the handlers of SIGINT, SIGTERM, SIGHUP, SIGWINCH and SIGTSTP (Ctrl-Z gives the
// terminal back while top is stopped) and creates g_stop_pipe.
void install_signals();

// cbreak without echo, alternate screen, hidden cursor; all given back on destruction.
class Terminal {
 public:
  Terminal();
  ~Terminal();
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  static void put(std::string_view text);
  // Columns and rows: the tty's own (it follows SIGWINCH), else $COLUMNS/$LINES, else 80x24.
  static std::pair<std::size_t, std::size_t> size();

 private:
  termios saved_{};
};

// --- sampling (top_sample.cpp) -------------------------------------------------------------
// Connects (libpq environment or -d/--dsn) and pins the session's search_path, so that no
// object of the connected role's schemas can stand in for a built-in one.
Session connect_pinned(const Args& args);

// The services (filtered by view.filter), the health checks and the leak suspects; each
// statement bounded to 10 s and aborted when abort_fd (-1: none) becomes readable.
Sample take_sample(usher::Connection& conn, const ViewState& view, int abort_fd);

// Refusals per second: each service's counters against the previous sample's. A service
// seen for the first time, or whose counters went back (a server restart), has no rate.
class Rates {
 public:
  void apply(Sample& s, Clock::time_point at);

 private:
  std::map<std::string, std::pair<long long, long long>> last_;
  Clock::time_point at_{};
};

// --- the frame (top_frame.cpp) -------------------------------------------------------------
struct Frame {
  std::vector<std::string> lines;
  std::size_t header_line = 0;  // the column headings (shown in reverse video live)
};

// The frame as lines of at most `width` code points (0: no limit) and, when `height` is
// not 0, at most `height` lines: the service rows come first, the leak suspects get
// what is left.
Frame render(const Sample& sample, const ViewState& view, std::size_t width, std::size_t height);

// The frame (or "connecting..." without a sample) and the status line, on the terminal.
void draw(const Sample* sample, const ViewState& view);

}  // namespace usher::cli::top
