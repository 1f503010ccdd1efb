// hold_connections: open N client connections to PostgreSQL in parallel and keep them
// open, idle, until stdin reaches end of file or the process gets SIGINT / SIGTERM;
// then close them all and exit 0.
//
//   hold_connections [-n N] [-p PARALLEL] [-x IDLE_IN_XACT] [CONNINFO]
//
//   -n N             connections to open (default 1000)
//   -p PARALLEL      connection attempts in flight at once (default 64); the postmaster
//                    forks one backend per attempt, so an unbounded burst only queues
//   -x IDLE_IN_XACT  how many of them to leave "idle in transaction" (BEGIN, then a
//                    query that takes a snapshot, then nothing) instead of "idle"
//   CONNINFO         libpq connection string; empty means the PG* environment
//
// Half of the connections (the odd-numbered ones) get an application_name of the form
// "SERVICE/worker-N" with SERVICE cycling through a few names, so that pg_usher sees
// several services; the other half keep libpq's default (empty) application_name and
// land in service "default".
//
// Once every connection is up, one line "ready N" is written to stdout. Progress and
// errors go to stderr. Exit status: 0 after a clean close, 1 if any connection failed.
//
// Uses only libpq's non-blocking API (PQconnectStart / PQconnectPoll, PQsendQuery) and
// poll(2), single-threaded.

#include <libpq-fe.h>

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

volatile sig_atomic_t g_stop = 0;

void on_signal(int) { g_stop = 1; }

constexpr std::array<const char*, 6> kServices = {"orders", "billing", "search",
                                                  "auth",   "reports", "inventory"};

enum class Phase { NotStarted, Connecting, SendingBegin, AwaitingBegin, Ready, Failed };

struct Conn {
    PGconn* pg = nullptr;
    Phase phase = Phase::NotStarted;
    PostgresPollingStatusType poll_want = PGRES_POLLING_WRITING;
    bool idle_in_xact = false;
};

std::string escape_conninfo_value(const std::string& v) {
    std::string out = "'";
    for (char c : v) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    out += '\'';
    return out;
}

void raise_fd_limit(long need) {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur != RLIM_INFINITY && static_cast<long>(rl.rlim_cur) >= need) return;
    rlim_t want = static_cast<rlim_t>(need);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) want = rl.rlim_max;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        std::fprintf(stderr, "hold_connections: could not raise the open-file limit to %ld: %s\n",
                     need, std::strerror(errno));
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: hold_connections [-n N] [-p PARALLEL] [-x IDLE_IN_XACT] [CONNINFO]\n");
    std::exit(2);
}

long parse_count(const char* s) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < 0) usage();
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    long n = 1000, parallel = 64, idle_in_xact = 0;
    std::string conninfo;
    int opt;
    while ((opt = getopt(argc, argv, "n:p:x:h")) != -1) {
        switch (opt) {
            case 'n': n = parse_count(optarg); break;
            case 'p': parallel = parse_count(optarg); break;
            case 'x': idle_in_xact = parse_count(optarg); break;
            default: usage();
        }
    }
    if (optind < argc) conninfo = argv[optind++];
    if (optind != argc || parallel < 1 || idle_in_xact > n) usage();

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(n + 64);

    std::vector<Conn> conns(static_cast<size_t>(n));
    // Spread the idle-in-transaction sessions evenly over the set.
    for (long i = 0; i < idle_in_xact; ++i) conns[static_cast<size_t>(i * n / idle_in_xact)].idle_in_xact = true;

    long next = 0, in_flight = 0, ready = 0, failed = 0;
    std::vector<pollfd> pfds;
    std::vector<size_t> owners;

    auto start_one = [&](size_t i) {
        std::string ci = conninfo;
        if (i % 2 == 1) {
            std::string app = std::string(kServices[(i / 2) % kServices.size()]) + "/worker-" + std::to_string(i);
            ci += " application_name=" + escape_conninfo_value(app);
        }
        Conn& c = conns[i];
        c.pg = PQconnectStart(ci.c_str());
        if (c.pg == nullptr || PQstatus(c.pg) == CONNECTION_BAD) {
            std::fprintf(stderr, "hold_connections: connection %zu: %s", i,
                         c.pg ? PQerrorMessage(c.pg) : "out of memory\n");
            c.phase = Phase::Failed;
            ++failed;
            return;
        }
        c.phase = Phase::Connecting;
        c.poll_want = PGRES_POLLING_WRITING;
        ++in_flight;
    };

    auto fail = [&](size_t i, const char* what) {
        std::fprintf(stderr, "hold_connections: connection %zu (%s): %s", i, what, PQerrorMessage(conns[i].pg));
        conns[i].phase = Phase::Failed;
        --in_flight;
        ++failed;
    };

    // Advance connection i as far as it can go without blocking.
    auto step = [&](size_t i) {
        Conn& c = conns[i];
        if (c.phase == Phase::Connecting) {
            c.poll_want = PQconnectPoll(c.pg);
            if (c.poll_want == PGRES_POLLING_FAILED) return fail(i, "connect");
            if (c.poll_want != PGRES_POLLING_OK) return;
            if (!c.idle_in_xact) {
                c.phase = Phase::Ready;
                --in_flight;
                ++ready;
                return;
            }
            if (PQsetnonblocking(c.pg, 1) != 0) return fail(i, "setnonblocking");
            // BEGIN plus a statement: the transaction gets a snapshot and a start time,
            // then the session sits "idle in transaction".
            if (!PQsendQuery(c.pg, "BEGIN; SELECT 1")) return fail(i, "send");
            c.phase = Phase::SendingBegin;
        }
        if (c.phase == Phase::SendingBegin) {
            int f = PQflush(c.pg);
            if (f < 0) return fail(i, "flush");
            if (f > 0) return;
            c.phase = Phase::AwaitingBegin;
        }
        if (c.phase == Phase::AwaitingBegin) {
            if (!PQconsumeInput(c.pg)) return fail(i, "read");
            while (!PQisBusy(c.pg)) {
                PGresult* r = PQgetResult(c.pg);
                if (r == nullptr) {
                    c.phase = Phase::Ready;
                    --in_flight;
                    ++ready;
                    return;
                }
                ExecStatusType st = PQresultStatus(r);
                PQclear(r);
                if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) return fail(i, "BEGIN");
            }
        }
    };

    while (!g_stop && ready + failed < n) {
        while (next < n && in_flight < parallel) start_one(static_cast<size_t>(next++));
        pfds.clear();
        owners.clear();
        for (size_t i = 0; i < conns.size(); ++i) {
            const Conn& c = conns[i];
            short ev = 0;
            if (c.phase == Phase::Connecting)
                ev = c.poll_want == PGRES_POLLING_READING ? POLLIN : POLLOUT;
            else if (c.phase == Phase::SendingBegin)
                ev = POLLOUT | POLLIN;
            else if (c.phase == Phase::AwaitingBegin)
                ev = POLLIN;
            else
                continue;
            pfds.push_back({PQsocket(c.pg), ev, 0});
            owners.push_back(i);
        }
        if (pfds.empty()) continue;
        int rc = poll(pfds.data(), pfds.size(), 1000);
        if (rc < 0) {
            if (errno == EINTR) continue;
            std::perror("hold_connections: poll");
            break;
        }
        for (size_t k = 0; k < pfds.size(); ++k)
            if (pfds[k].revents != 0) step(owners[k]);
        static long last_report = 0;
        if (ready - last_report >= 250) {
            last_report = ready;
            std::fprintf(stderr, "hold_connections: %ld connected\n", ready);
        }
    }

    int status = failed > 0 ? 1 : 0;
    if (!g_stop && failed == 0) {
        std::printf("ready %ld\n", ready);
        std::fflush(stdout);
        // Hold until stdin closes or a signal arrives. Reading (rather than pause())
        // lets the caller end us by closing a pipe, which works even if it dies.
        char buf[256];
        while (!g_stop) {
            ssize_t r = read(STDIN_FILENO, buf, sizeof buf);
            if (r == 0) break;
            if (r < 0 && errno != EINTR) break;
        }
    } else if (failed > 0) {
        std::fprintf(stderr, "hold_connections: %ld of %ld connections failed\n", failed, n);
    }

    for (Conn& c : conns)
        if (c.pg != nullptr) PQfinish(c.pg);  // sends Terminate; an open transaction is rolled back
    std::fprintf(stderr, "hold_connections: closed %ld connections\n", ready);
    return status;
}
