// The pool's own round trips on a connection: open, validate/checkout on borrow, clean
// up on return, keepalive, the pool advice. All run outside the pool's lock on a slot
// nobody else holds.
#include <fmt/format.h>
#include <libpq-fe.h>

#include "pool_advice_query.hpp"
#include "pool_core.hpp"
#include "usher/errors.hpp"
#include "wait.hpp"

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

// Reads the answer to what was sent when the connection came back (session reset,
// usher.checkin()).
bool read_checkin(SlotData& slot, Clock::time_point until, int abort_fd, std::string& why) {
  if (!slot.return_sent) return true;
  Outcome o = drain_until(slot.conn.native(), until, abort_fd);
  slot.return_sent = false;
  if (!o.ok) why = fmt::format("session reset or checkin failed: {}", o.error);
  return o.ok;
}

const char* reset_sql(SessionReset reset) {
  switch (reset) {
    case SessionReset::discard_all: return "DISCARD ALL";
    case SessionReset::reset_all: return "RESET ALL";
    default: return nullptr;
  }
}

}  // namespace

SlotData PoolCore::open_slot() {
  SlotData slot;
  slot.proven_epoch = health_epoch_.load(std::memory_order_relaxed);
  // Each host under connect_timeout, as libpq's connect_timeout (a connect_timeout in the
  // conninfo wins): with host=a,b a silent a costs one timeout, then b is tried. No
  // overall deadline beyond that; close() abandons an attempt at once (abort_fd_).
  slot.conn = Connection::open(config_.conninfo, connect_options_,
                               ConnectLimits{Clock::time_point::max(), config_.connect_timeout, abort_fd_});
  auto deadline = Clock::now() + config_.connect_timeout;  // the pool's own first statements
  slot.backend_pid = slot.conn.backend_pid();
  if (config_.use_extension) {
    // Once per connection: a server may gain or lose the extension between connections.
    Outcome o = exec_until(slot.conn.native(), kDetectExtension, {}, deadline, abort_fd_);
    if (!o.ok) throw ConnectionError(fmt::format("checking for pg_usher failed: {}", o.error), o.sqlstate);
    slot.has_extension = o.last.scalar<bool>();
  }
  if (config_.after_connect) {
    try {
      config_.after_connect(slot.conn);
    } catch (const Error& e) {  // keeps the server's SQLSTATE
      throw ConnectionError(fmt::format("after_connect failed: {}", e.what()), e.sqlstate());
    } catch (const std::exception& e) {
      throw ConnectionError(fmt::format("after_connect failed: {}", e.what()));
    } catch (...) {
      throw ConnectionError("after_connect failed: it threw something that is not a std::exception");
    }
    if (slot.conn.transaction_status() != TransactionStatus::idle)
      throw ConnectionError("after_connect left the connection in a transaction or with a statement running");
  }
  auto now = Clock::now();
  slot.created = slot.last_used = slot.last_checked = now;
  return slot;
}

bool PoolCore::prepare_for_borrower(Slot& slot, Clock::time_point now,
                                    std::string& why, bool& round_trip) {
  auto epoch = health_epoch_.load(std::memory_order_relaxed);
  bool validate = now - slot.last_checked >= config_.validate_after_idle || slot.proven_epoch < epoch;
  // With leak detection on, every borrow records its holder on the server, so that
  // usher.leases names the same code as the leak report.
  bool checkout = slot.has_extension &&
                  (validate || config_.leak_detection_threshold.count() > 0);
  if (!validate && !checkout && !slot.return_sent) {  // the hot path
    slot.uses_at_lend = slot.conn.uses();
    return true;
  }

  round_trip = true;
  // Its own timeout, not the borrower's deadline: a validation cut short by a deadline
  // 50 us away would leave a healthy connection mid-statement, to be closed. A
  // connection taken before the deadline is lent if it passes, even if that is later.
  auto until = now + config_.validation_timeout;
  PGconn* c = slot.conn.native();
  // The checkin's answer is normally here already: no extra wait.
  if (!read_checkin(slot, until, abort_fd_, why)) return false;
  if (!validate && !checkout) {
    slot.uses_at_lend = slot.conn.uses();
    return true;
  }
  Outcome o;
  if (checkout) {
    std::string holder = holder_text(config_.name, slot.where(), slot.thread());
    Param p{holder, type_oids::text};
    o = exec_until(c, kCheckout, std::span<const Param>(&p, 1), until, abort_fd_);
    slot.lease_on_server = o.ok;
  } else {
    o = exec_until(c, kPing, {}, until, abort_fd_);
  }
  {
    std::lock_guard lk(mu_);
    ++validations_;
  }
  if (!o.ok || PQtransactionStatus(c) != PQTRANS_IDLE) {
    why = fmt::format("validation failed: {}", o.error.empty() ? "connection not idle" : o.error);
    if (PQstatus(c) != CONNECTION_OK) mark_suspect();
    return false;
  }
  slot.last_checked = now;
  slot.proven_epoch = epoch;
  slot.uses_at_lend = slot.conn.uses();
  return true;
}

bool PoolCore::clean_after_borrower(Slot& slot, Clock::time_point now, bool used, std::string& why) {
  PGconn* c = slot.conn.native();
  if (!slot.conn.is_open()) {
    why = "broken";
    mark_suspect();
    return false;
  }
  auto until = now + config_.validation_timeout;
  switch (PQtransactionStatus(c)) {
    case PQTRANS_IDLE:
      break;
    case PQTRANS_ACTIVE: {
      // The borrower left a statement running (PQsendQuery on native()): cancel it and
      // read what is left, then treat the connection like any other.
      slot.conn.cancel();
      Outcome o = drain_until(c, until, abort_fd_);
      if (PQstatus(c) != CONNECTION_OK || PQtransactionStatus(c) == PQTRANS_ACTIVE) {
        why = fmt::format("dirty: statement still running ({})", o.error);
        return false;
      }
      if (PQtransactionStatus(c) == PQTRANS_IDLE) break;
      [[fallthrough]];
    }
    case PQTRANS_INTRANS:
    case PQTRANS_INERROR: {
      Outcome o = exec_until(c, "ROLLBACK", {}, until, abort_fd_);
      if (!o.ok || PQtransactionStatus(c) != PQTRANS_IDLE) {
        why = fmt::format("dirty: rollback failed ({})", o.error);
        return false;
      }
      break;
    }
    default:
      why = "dirty: transaction state unknown";
      return false;
  }
  if (now >= slot.expires) {
    why = "lifetime";
    return false;
  }
  // The session reset and the checkin are sent, not awaited: the answer is read by the
  // next borrower's checkout or validation (one round trip for both) or by the
  // keepalive. DISCARD ALL refuses to run in a multi-statement string, so when both are
  // due the reset is awaited here and the checkin sent after it.
  const char* reset = used ? reset_sql(config_.session_reset) : nullptr;
  if (reset && slot.lease_on_server) {
    Outcome o = exec_until(c, reset, {}, until, abort_fd_);
    if (!o.ok) {
      why = fmt::format("session reset failed: {}", o.error);
      return false;
    }
    reset = nullptr;
  }
  if (reset || slot.lease_on_server) {
    if (!PQsendQueryParams(c, reset ? reset : kCheckin, 0, nullptr, nullptr, nullptr, nullptr, 0)) {
      why = "broken: cannot send the session reset or checkin";
      return false;
    }
    slot.lease_on_server = false;
    slot.return_sent = true;
  }
  return true;
}

bool PoolCore::keepalive(Slot& slot, std::string& why) {
  auto until = Clock::now() + config_.validation_timeout;
  PGconn* c = slot.conn.native();
  if (!read_checkin(slot, until, abort_fd_, why)) return false;
  Outcome o = exec_until(c, kPing, {}, until, abort_fd_);
  if (!o.ok || PQtransactionStatus(c) != PQTRANS_IDLE) {
    why = fmt::format("keepalive failed: {}", o.error);
    return false;
  }
  return true;
}

std::optional<PoolAdvice> PoolCore::read_advice(SlotData& slot, std::string& why) {
  auto until = Clock::now() + config_.validation_timeout;
  if (!read_checkin(slot, until, abort_fd_, why)) return std::nullopt;
  try {
    return fetch_pool_advice_until(slot.conn, config_.service, config_.advice_instances, until);
  } catch (const std::exception& e) {  // typed errors whose messages say what to grant or install
    why = e.what();
    return std::nullopt;
  }
}

}  // namespace usher::detail
