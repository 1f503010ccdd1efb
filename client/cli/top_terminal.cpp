// usher top's terminal: cbreak mode without echo on the alternate screen, given back on
// exit and while stopped (Ctrl-Z), and the signals that stop top or make it redraw.
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

#include "top.hpp"

namespace usher::cli::top {

// --- signals: stop (SIGINT, SIGTERM, SIGHUP) and resize (SIGWINCH) ---------------------
volatile sig_atomic_t g_stop = 0;
int g_stop_pipe[2] = {-1, -1};

namespace {

extern "C" void on_stop_signal(int) {
  g_stop = 1;
  int saved = errno;
  if (g_stop_pipe[1] >= 0) (void)!write(g_stop_pipe[1], "x", 1);
  errno = saved;
}
// SIGWINCH needs a handler only to interrupt poll() (its default is to be ignored): the
// live loop draws a frame, in the size of the moment, after every wake.
extern "C" void on_winch(int) {}

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
  // the poll it interrupted returns, and the frame is drawn again
  errno = saved;
}

}  // namespace

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
Terminal::Terminal() {
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

Terminal::~Terminal() {
  g_terminal_taken = 0;
  put(kGiveScreen);
  tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
}

void Terminal::put(std::string_view text) {
  while (!text.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the terminal is gone: nothing left to show it on
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::pair<std::size_t, std::size_t> Terminal::size() {
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

}  // namespace usher::cli::top
