// The pool's own round trips on a connection (round_trips.hpp): open, validate/checkout
// on borrow, clean up on return, keepalive, the pool advice. All run outside the locks
// on a pooled connection nobody else holds.
#include "round_trips.hpp"

#include <fmt/format.h>
#include <fmt/std.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "pool_advice_query.hpp"
#include "sent_statements.hpp"
#include "usher/errors.hpp"

namespace usher::detail {
namespace {

// An empty statement: the server answers EmptyQueryResponse, the cheapest round trip.
constexpr const char* kPing = "";
// Present means usable by this role: to_regprocedure() raises (not NULL) on a schema the
// role may not use, and a checkout it may not EXECUTE would fail every validation. CASE
// keeps the lookups away from a schema without USAGE.
constexpr const char* kDetectExtension =
    "SELECT coalesce((SELECT CASE WHEN has_schema_privilege(n.oid, 'USAGE') THEN"
    " has_function_privilege(to_regprocedure('usher.checkout(text)'), 'EXECUTE')"
    " AND has_function_privilege(to_regprocedure('usher.checkin()'), 'EXECUTE') END"
    " FROM pg_namespace n WHERE n.nspname = 'usher'), false)";
constexpr const char* kCheckout = "SELECT usher.checkout($1)";
constexpr const char* kCheckin = "SELECT usher.checkin()";

// How one of the pool's own statements ended.
enum class Ended {
  ok,
  failed,  // an error, the deadline, or close(): the connection is retired
  lost,    // the connection broke before its deadline: the others may have too
};

// Runs `statement` (a Connection::exec within the pool's ExecOptions); its error, with
// the server's message, goes to `error` for the retire event.
template <typename Statement>
Ended attempt(Connection& conn, Clock::time_point until, std::string& error, Statement statement) {
  try {
    statement();
    return Ended::ok;
  } catch (const ConnectAborted&) {
    error = "abandoned: the pool is closing";
    return Ended::failed;
  } catch (const Error& e) {
    error = e.what();
    return conn.is_open() || Clock::now() >= until ? Ended::failed : Ended::lost;
  }
}

const char* reset_sql(SessionReset reset) {
  switch (reset) {
    case SessionReset::discard_all: return "DISCARD ALL";
    case SessionReset::reset_all: return "RESET ALL";
    default: return nullptr;
  }
}

std::vector<std::pair<std::string, std::string>> connect_options(const PoolConfig& c) {
  auto options = c.options;
  // Ours go first so that an explicit application_name in options wins.
  options.insert(options.begin(), {"application_name", c.effective_application_name()});
  return options;
}

int make_abort_fd() {
  int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd for the pool");
  return fd;
}

}  // namespace

std::string holder_text(std::string_view pool, const std::source_location& where,
                        std::thread::id thread) {
  // pg_usher keeps 64 bytes of a holder (63 + NUL): the call site and the thread are
  // worth more than the pool name, so the name is what gets shortened.
  constexpr std::size_t kMax = 63;
  std::string_view file = where.file_name();
  if (auto slash = file.rfind('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
  std::string site = fmt::format("{}:{} thread {}", file, where.line(), thread);
  if (site.size() + 1 >= kMax) return site.substr(0, kMax);
  return fmt::format("{}/{}", pool.substr(0, kMax - site.size() - 1), site);
}

RoundTrips::RoundTrips(const PoolConfig& config, std::atomic<std::uint64_t>& validations)
    : config_(config),
      connect_options_(connect_options(config)),
      abort_fd_(make_abort_fd()),
      validations_(validations) {}

RoundTrips::~RoundTrips() { ::close(abort_fd_); }

ExecOptions RoundTrips::options(Clock::time_point until) const {
  // No cancel at the deadline: a connection whose statement outlived it is closed and
  // retired (Connection::exec closes it), never waited on longer.
  return ExecOptions{until, std::chrono::milliseconds(0), abort_fd_};
}

bool RoundTrips::read_return(ConnectionRecord& c, Clock::time_point until, std::string& why) {
  if (!c.return_sent) return true;
  c.return_sent = false;
  std::string error;
  if (attempt(c.conn, until, error, [&] { SentStatements::read(c.conn, options(until)); }) == Ended::ok)
    return true;
  why = fmt::format("session reset or checkin failed: {}", error);
  return false;
}

void RoundTrips::abort() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(abort_fd_, &one, sizeof one);
}

ConnectionRecord RoundTrips::open(std::optional<Clock::duration>* connected_after) {
  ConnectionRecord record;
  record.proven_epoch = health_epoch();
  auto start = Clock::now();
  // Each host under connect_timeout, as libpq's connect_timeout (a connect_timeout in the
  // conninfo wins): with host=a,b a silent a costs one timeout, then b is tried. No
  // overall deadline beyond that; close() abandons an attempt at once (abort_fd_).
  record.conn = Connection::open(config_.conninfo, connect_options_,
                               ConnectLimits{Clock::time_point::max(), config_.connect_timeout, abort_fd_});
  if (connected_after) *connected_after = Clock::now() - start;
  auto deadline = Clock::now() + config_.connect_timeout;  // the pool's own first statements
  record.backend_pid = record.conn.backend_pid();
  if (config_.use_extension) {
    // Once per connection: a server may gain or lose the extension between connections.
    try {
      record.has_extension = record.conn.exec(options(deadline), kDetectExtension).scalar<bool>();
    } catch (const ConnectAborted&) {
      throw;
    } catch (const Error& e) {
      throw ConnectionError(fmt::format("checking for pg_usher failed: {}", e.what()), e.fields());
    }
  }
  if (config_.statement_cache.mode != StatementCaching::off)
    record.conn.set_statement_cache(config_.statement_cache);
  if (config_.after_connect) {
    try {
      config_.after_connect(record.conn);
    } catch (const Error& e) {  // keeps the server's SQLSTATE
      throw ConnectionError(fmt::format("after_connect failed: {}", e.what()), e.fields());
    } catch (const std::exception& e) {
      throw ConnectionError(fmt::format("after_connect failed: {}", e.what()));
    } catch (...) {
      throw ConnectionError("after_connect failed: it threw something that is not a std::exception");
    }
    if (record.conn.transaction_status() != TransactionStatus::idle)
      throw ConnectionError("after_connect left the connection in a transaction or with a statement running");
  }
  auto now = Clock::now();
  record.created = record.last_used = record.last_checked = now;
  return record;
}

bool RoundTrips::prepare_for_borrower(PooledConnection& pc, Clock::time_point now,
                                      const std::source_location& where, std::thread::id thread,
                                      std::string& why, bool& round_trip) {
  auto epoch = health_epoch();
  bool validate = now - pc.last_checked >= config_.validate_after_idle || pc.proven_epoch < epoch;
  // With leak detection on, every borrow records its holder on the server, so that
  // usher.leases names the same code as the leak report.
  bool checkout = pc.has_extension && !config_.transaction_pooler &&
                  (validate || config_.leak_detection_threshold.count() > 0);
  if (!validate && !checkout && !pc.return_sent) {  // the hot path
    pc.uses_at_lend = pc.conn.uses();
    return true;
  }

  round_trip = true;
  // Its own timeout, not the borrower's deadline: a validation cut short by a deadline
  // 50 us away would leave a healthy connection mid-statement, to be closed. A
  // connection taken before the deadline is lent if it passes, even if that is later.
  auto until = now + config_.validation_timeout;
  // The checkin's answer is normally here already: no extra wait.
  if (!read_return(pc, until, why)) return false;
  if (!validate && !checkout) {
    pc.uses_at_lend = pc.conn.uses();
    return true;
  }
  std::string error;
  Ended ended;
  if (checkout) {
    std::string holder = holder_text(config_.name, where, thread);
    ended = attempt(pc.conn, until, error, [&] { pc.conn.exec(options(until), kCheckout, holder); });
    pc.lease_on_server = ended == Ended::ok;
  } else {
    ended = attempt(pc.conn, until, error, [&] { pc.conn.exec(options(until), kPing); });
  }
  validations_.fetch_add(1, std::memory_order_relaxed);
  if (ended != Ended::ok || pc.conn.transaction_status() != TransactionStatus::idle) {
    why = fmt::format("validation failed: {}", error.empty() ? "connection not idle" : error);
    if (ended == Ended::lost) mark_suspect();
    return false;
  }
  pc.last_checked = now;
  pc.proven_epoch = epoch;
  pc.uses_at_lend = pc.conn.uses();
  return true;
}

bool RoundTrips::clean_after_borrower(PooledConnection& pc, Clock::time_point now, bool used,
                                      std::string& why) {
  Connection& conn = pc.conn;
  if (!conn.is_open()) {
    why = "broken";
    mark_suspect();
    return false;
  }
  auto until = now + config_.validation_timeout;
  std::string error;
  switch (conn.transaction_status()) {
    case TransactionStatus::idle:
      break;
    case TransactionStatus::active: {
      // The borrower left a statement running (PQsendQuery on native()): cancel it and
      // read what is left (its error is expected), then treat the connection like any
      // other. A COPY left open is ended by the same loop.
      conn.cancel();
      attempt(conn, until, error, [&] { SentStatements::read(conn, options(until)); });
      if (!conn.is_open() || conn.transaction_status() == TransactionStatus::active) {
        why = fmt::format("dirty: statement still running ({})", error);
        return false;
      }
      if (conn.transaction_status() == TransactionStatus::idle) break;
      [[fallthrough]];
    }
    case TransactionStatus::in_transaction:
    case TransactionStatus::in_error: {
      error.clear();
      if (attempt(conn, until, error, [&] { conn.exec(options(until), "ROLLBACK"); }) != Ended::ok ||
          conn.transaction_status() != TransactionStatus::idle) {
        why = fmt::format("dirty: rollback failed ({})", error);
        return false;
      }
      break;
    }
    default:
      why = "dirty: transaction state unknown";
      return false;
  }
  if (now >= pc.expires) {
    why = "lifetime";
    return false;
  }
  // The session reset and the checkin are sent, not awaited: the answer is read by the
  // next borrower's checkout or validation (one round trip for both) or by the
  // keepalive. DISCARD ALL refuses to run in a multi-statement string, so when both are
  // due the reset is awaited here and the checkin sent after it.
  const char* reset = used && !config_.transaction_pooler ? reset_sql(config_.session_reset) : nullptr;
  if (reset && pc.lease_on_server) {
    if (attempt(conn, until, error, [&] { conn.exec(options(until), reset); }) != Ended::ok) {
      why = fmt::format("session reset failed: {}", error);
      return false;
    }
    reset = nullptr;
  }
  if (reset || pc.lease_on_server) {
    if (!SentStatements::send(conn, reset ? reset : kCheckin)) {
      why = "broken: cannot send the session reset or checkin";
      return false;
    }
    pc.lease_on_server = false;
    pc.return_sent = true;
  }
  return true;
}

bool RoundTrips::keepalive(ConnectionRecord& record, std::string& why) {
  auto until = Clock::now() + config_.validation_timeout;
  if (!read_return(record, until, why)) return false;
  std::string error;
  if (attempt(record.conn, until, error, [&] { record.conn.exec(options(until), kPing); }) != Ended::ok ||
      record.conn.transaction_status() != TransactionStatus::idle) {
    why = fmt::format("keepalive failed: {}", error);
    return false;
  }
  return true;
}

std::optional<PoolAdvice> RoundTrips::read_advice(ConnectionRecord& record, std::string& why) {
  auto until = Clock::now() + config_.validation_timeout;
  if (!read_return(record, until, why)) return std::nullopt;
  try {
    return fetch_pool_advice(record.conn, config_.service, config_.advice_instances, options(until));
  } catch (const std::exception& e) {  // typed errors whose messages say what to grant or install
    why = e.what();
    return std::nullopt;
  }
}

}  // namespace usher::detail
