// Connection: opening (asynchronously, against a deadline), parameterised statements,
// cancel and notices.
#include "usher/connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <utility>
#include <vector>

#include "connect.hpp"
#include "statement_cache.hpp"
#include "usher/errors.hpp"
#include "wait.hpp"

namespace usher {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

void receive_notice(void* arg, const PGresult* res) {
  auto* handler = static_cast<Connection::NoticeHandler*>(arg);
  if (!handler || !*handler) return;
  const char* primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
  (*handler)(primary ? primary : "");
}

}  // namespace

Connection Connection::open(const std::string& conninfo, std::chrono::milliseconds timeout) {
  return open(conninfo, {}, Clock::now() + timeout);
}

Connection Connection::open(const std::string& conninfo, const Options& options,
                            Clock::time_point deadline) {
  return open(conninfo, options, ConnectLimits{deadline});
}

// Host by host, each under its per-host timeout: connect.cpp.
Connection Connection::open(const std::string& conninfo, const Options& options,
                            const ConnectLimits& limits) {
  Connection c;
  c.redacted_conninfo_ = detail::describe_conninfo(conninfo, options);
  c.conn_ = detail::connect_hosts(conninfo, options, limits);
  c.cancel_ = PQgetCancel(c.conn_);
  c.notice_ = std::make_unique<NoticeHandler>();
  PQsetNoticeReceiver(c.conn_, receive_notice, c.notice_.get());
  return c;
}

Connection::Connection(Connection&& o) noexcept
    : owed_(std::exchange(o.owed_, Owed{})),
      conn_(std::exchange(o.conn_, nullptr)),
      cancel_(std::exchange(o.cancel_, nullptr)),
      notice_(std::move(o.notice_)),
      redacted_conninfo_(std::move(o.redacted_conninfo_)),
      uses_(std::exchange(o.uses_, 0)),
      statements_(std::move(o.statements_)) {}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    owed_ = std::exchange(o.owed_, Owed{});
    conn_ = std::exchange(o.conn_, nullptr);
    cancel_ = std::exchange(o.cancel_, nullptr);
    notice_ = std::move(o.notice_);
    redacted_conninfo_ = std::move(o.redacted_conninfo_);
    uses_ = std::exchange(o.uses_, 0);
    statements_ = std::move(o.statements_);
  }
  return *this;
}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  owed_.begin = nullptr;  // a closed connection owes nothing (lost_before_begin stays)
  if (cancel_) PQfreeCancel(std::exchange(cancel_, nullptr));
  if (conn_) PQfinish(std::exchange(conn_, nullptr));
  if (statements_) statements_->forget_all();  // the session, and what it prepared, is gone
}

bool Connection::cancel() noexcept {
  if (!cancel_) return false;
  char err[256];
  return PQcancel(cancel_, err, sizeof err) == 1;
}

void Connection::set_notice_handler(NoticeHandler handler) {
  if (notice_) *notice_ = std::move(handler);
}

TransactionStatus Connection::transaction_status() const noexcept {
  if (!conn_) return TransactionStatus::unknown;
  if (owed_.begin) return TransactionStatus::in_transaction;  // begun, BEGIN not sent yet
  switch (PQtransactionStatus(conn_)) {
    case PQTRANS_IDLE: return TransactionStatus::idle;
    case PQTRANS_ACTIVE: return TransactionStatus::active;
    case PQTRANS_INTRANS: return TransactionStatus::in_transaction;
    case PQTRANS_INERROR: return TransactionStatus::in_error;
    default: return TransactionStatus::unknown;
  }
}

bool Connection::is_open() const noexcept { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

int Connection::backend_pid() const noexcept { return conn_ ? PQbackendPID(conn_) : 0; }

int Connection::server_version() const noexcept { return conn_ ? PQserverVersion(conn_) : 0; }

}  // namespace usher
