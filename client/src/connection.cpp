// Connection: opening (asynchronously, against a deadline), parameterised statements,
// cancel and notices.
#include "usher/connection.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <utility>
#include <vector>

#include "usher/errors.hpp"
#include "usher/redact.hpp"
#include "wait.hpp"

namespace usher {
namespace {

using Options = std::vector<std::pair<std::string, std::string>>;

std::string describe(const std::string& conninfo, const Options& options) {
  std::string s = conninfo.empty() ? std::string("(libpq defaults)") : redact_conninfo(conninfo);
  for (const auto& [k, v] : options) {
    s += fmt::format(" {}={}", k, (k == "password" || k == "sslpassword") ? "***" : v);
  }
  return s;
}

// libpq never prints a password, but a server or a future libpq might: scrub any we know.
std::string scrub(std::string message, const std::string& conninfo, const Options& options) {
  std::vector<std::string> secrets;
  for (const auto& [k, v] : options)
    if ((k == "password" || k == "sslpassword") && !v.empty()) secrets.push_back(v);
  if (PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), nullptr)) {
    for (auto* o = parsed; o->keyword; ++o)
      if (o->val && *o->val && (std::string_view(o->keyword) == "password" ||
                                std::string_view(o->keyword) == "sslpassword"))
        secrets.emplace_back(o->val);
    PQconninfoFree(parsed);
  }
  for (const auto& secret : secrets)
    for (auto pos = message.find(secret); pos != std::string::npos; pos = message.find(secret))
      message.replace(pos, secret.size(), "***");
  return message;
}

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
  std::vector<const char*> keys{"dbname"}, values{conninfo.c_str()};
  for (const auto& [k, v] : options) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  Connection c;
  c.redacted_conninfo_ = describe(conninfo, options);
  c.conn_ = PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/1);
  auto fail = [&](const std::string& why) -> ConnectionError {
    std::string where = c.redacted_conninfo_;
    if (c.conn_ && PQhost(c.conn_))
      where += fmt::format(" [host={} port={}]", PQhost(c.conn_), PQport(c.conn_));
    return ConnectionError(
        scrub(fmt::format("cannot connect to {}: {}", where, why), conninfo, options), "08001");
  };
  if (!c.conn_) throw fail("out of memory");
  if (PQstatus(c.conn_) == CONNECTION_BAD) throw fail(detail::trimmed(PQerrorMessage(c.conn_)));

  PostgresPollingStatusType poll = PGRES_POLLING_WRITING;
  while (poll != PGRES_POLLING_OK) {
    if (poll == PGRES_POLLING_FAILED) throw fail(detail::trimmed(PQerrorMessage(c.conn_)));
    if (!detail::wait_socket(c.conn_, poll == PGRES_POLLING_WRITING, deadline))
      throw fail("timed out");
    poll = PQconnectPoll(c.conn_);
  }
  c.cancel_ = PQgetCancel(c.conn_);
  c.notice_ = std::make_unique<NoticeHandler>();
  PQsetNoticeReceiver(c.conn_, receive_notice, c.notice_.get());
  return c;
}

Connection::Connection(Connection&& o) noexcept
    : conn_(std::exchange(o.conn_, nullptr)),
      cancel_(std::exchange(o.cancel_, nullptr)),
      notice_(std::move(o.notice_)),
      redacted_conninfo_(std::move(o.redacted_conninfo_)),
      uses_(std::exchange(o.uses_, 0)) {}

Connection& Connection::operator=(Connection&& o) noexcept {
  if (this != &o) {
    close();
    conn_ = std::exchange(o.conn_, nullptr);
    cancel_ = std::exchange(o.cancel_, nullptr);
    notice_ = std::move(o.notice_);
    redacted_conninfo_ = std::move(o.redacted_conninfo_);
    uses_ = std::exchange(o.uses_, 0);
  }
  return *this;
}

Connection::~Connection() { close(); }

void Connection::close() noexcept {
  if (cancel_) PQfreeCancel(std::exchange(cancel_, nullptr));
  if (conn_) PQfinish(std::exchange(conn_, nullptr));
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

}  // namespace usher
