// Pool::transaction without its template: BEGIN text, per-transaction timeouts, COMMIT
// with the transaction id read in its round trip, a lost COMMIT resolved through
// pg_xact_status(), which errors retry, the backoff between attempts, and savepoints
// (nested transactions on the same connection).
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <random>
#include <stdexcept>
#include <source_location>
#include <string>
#include <string_view>
#include <thread>

#include "usher/errors.hpp"
#include "error_fields.hpp"
#include "usher/pool.hpp"
#include "sent_statements.hpp"
#include "wait.hpp"

namespace usher {
namespace {

void validate(const TransactionOptions& o) {
  if (o.max_attempts < 1)
    throw std::invalid_argument("TransactionOptions.max_attempts: must be at least 1");
  if (o.base_delay.count() < 0 || o.max_delay < o.base_delay)
    throw std::invalid_argument("TransactionOptions.base_delay/max_delay: need 0 <= base_delay <= max_delay");
  if (o.deferrable && !(o.isolation == Isolation::serializable && o.read_only))
    throw std::invalid_argument("TransactionOptions.deferrable: only with serializable and read_only");
  if (o.statement_timeout.count() < 0 || o.lock_timeout.count() < 0 ||
      o.max_elapsed.count() < 0 || o.commit_resolution_timeout.count() < 0)
    throw std::invalid_argument("TransactionOptions: statement_timeout, lock_timeout, max_elapsed "
                                "and commit_resolution_timeout must not be negative");
}

// The innermost Transaction on this thread (a stack through Transaction::enclosing_).
thread_local Transaction* t_innermost_transaction = nullptr;

// Fixed statement text, chosen from the options; nothing is pasted in.
const char* begin_sql(const TransactionOptions& o) {
  static constexpr const char* kBegin[3][2] = {
      {"BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE",
       "BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY"},
      {"BEGIN ISOLATION LEVEL REPEATABLE READ READ WRITE",
       "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"},
      {"BEGIN ISOLATION LEVEL SERIALIZABLE READ WRITE",
       "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY"}};
  if (o.deferrable) return "BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY DEFERRABLE";
  return kBegin[static_cast<int>(o.isolation)][o.read_only ? 1 : 0];
}

// Best effort: the lease's return rolls back (or closes) whatever is left.
void rollback_quietly(Connection& conn) noexcept {
  if (detail::OwedBegin::owed(conn)) {  // BEGIN never sent: nothing to roll back
    detail::OwedBegin::forget(conn);
    return;
  }
  auto st = conn.transaction_status();
  if (st != TransactionStatus::in_transaction && st != TransactionStatus::in_error) return;
  try {
    conn.exec("ROLLBACK");
  } catch (...) {
  }
}

// The transaction id if one was assigned (the transaction wrote), read in the round trip
// of the COMMIT; its status on a fresh connection after the COMMIT was lost.
const char* xid_query(int server_version) {
  return server_version >= 130000 ? "SELECT pg_catalog.pg_current_xact_id_if_assigned()"
                                  : "SELECT pg_catalog.txid_current_if_assigned()";
}
const char* xact_status_query(int server_version) {
  return server_version >= 130000 ? "SELECT pg_catalog.pg_xact_status($1::pg_catalog.xid8)"
                                  : "SELECT pg_catalog.txid_status($1::pg_catalog.int8)";
}

// The connection broke after COMMIT was sent. xid: nullopt when its query's answer never
// came, 0 when the transaction had none (it wrote nothing before COMMIT).
struct LostDuringCommit {
  ConnectionError error;
  std::optional<std::uint64_t> xid;
};

// What COMMIT's own answer says, when it came before the connection ended: a fast
// shutdown's FATAL 57P01 (or any end of the connection) can be read together with the
// COMMIT's CommandComplete, before ReadyForQuery. "COMMIT": committed, whatever followed;
// "ROLLBACK": the server rolled it back; no answer: nullopt, the outcome must be asked.
std::optional<bool> committed_per_answer(const Result& answer) {
  const PGresult* res = answer.native();
  if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) return std::nullopt;
  std::string_view tag = PQcmdStatus(const_cast<PGresult*>(res));
  if (tag == "COMMIT") return true;
  if (tag == "ROLLBACK") return false;
  return std::nullopt;
}

// COMMIT and the xid query in one round trip: pipeline mode, [xid query] [flush]
// [COMMIT] [sync], read by the one statement loop (statement.cpp: `options`' deadline,
// with its cancel, lost-connection handling). The flush request makes the server send
// the xid before it starts the COMMIT, so a COMMIT that breaks the connection (a
// deferred trigger, the commit record, a killed backend, the deadline passed with the
// cancel unanswered) finds the xid already on its way. Throws LostDuringCommit, or the
// COMMIT's own error (40001, a deferred constraint's class 23 error, 57014 cancelled at
// the deadline, ...) as exec() would.
void commit_recording_xid(Connection& conn, int server_version, const ExecOptions& options) {
  Result answers[2];
  try {
    detail::Pipelined::exec(conn, xid_query(server_version), "COMMIT", answers, options);
    return;
  } catch (const Error& e) {
    if (conn.is_open()) throw;  // the server's answer: the COMMIT failed, nothing committed
    if (auto answered = committed_per_answer(answers[1])) {
      if (*answered) return;  // acknowledged: the connection's end came after it
      throw CommitRolledBack("transaction: COMMIT answered ROLLBACK, then the connection was "
                            "lost: " + std::string(e.what()) + "; not committed",
                            e.sqlstate().empty() ? "08006" : e.sqlstate());
    }
    std::optional<std::uint64_t> xid;
    if (answers[0].rows() == 1)
      xid = answers[0].is_null(0, 0)
                ? 0
                : std::strtoull(std::string(answers[0].text(0, 0)).c_str(), nullptr, 10);
    std::string code = e.sqlstate();
    if (!code.starts_with("08") && !code.starts_with("57P0")) code = "08006";
    throw LostDuringCommit{
        ConnectionError("transaction: connection lost during COMMIT: " + std::string(e.what()), code),
        xid};
  }
}

void commit(Connection& conn, int server_version, const ExecOptions& options) {
  if (detail::OwedBegin::owed(conn)) {  // the body ran nothing: no BEGIN, no COMMIT, no xid
    detail::OwedBegin::forget(conn);
    return;
  }
  switch (conn.transaction_status()) {
    case TransactionStatus::in_transaction:
      break;
    case TransactionStatus::in_error:  // fn caught a statement's error: COMMIT would roll back
      rollback_quietly(conn);
      throw DatabaseError(
          "transaction: a statement failed inside the function and its error was caught "
          "there; rolled back, not committed", "25P02");
    case TransactionStatus::unknown:  // broken before COMMIT was sent: nothing committed
      throw ConnectionError("transaction: connection lost before COMMIT; not committed", "08006");
    default:
      throw Error("transaction: the function ended the transaction itself or left a "
                  "statement running; COMMIT not sent");
  }
  commit_recording_xid(conn, server_version, options);
}

enum class Resolved { committed, aborted };

// After LostDuringCommit: asks pg_xact_status() on a fresh borrow, polling while the
// server still reports the transaction in progress (the old backend may not have
// finished its commit or its abort yet). Throws CommitUnknown when it cannot tell.
Resolved resolve_commit(Pool& pool, const LostDuringCommit& lost, int server_version,
                        const TransactionOptions& o, std::source_location where) {
  const std::string& why = lost.error.what();
  if (!lost.xid)
    throw CommitUnknown(why + "; outcome unknown: the transaction id was not received",
                        lost.error.sqlstate(), 0);
  if (*lost.xid == 0) return Resolved::aborted;  // nothing written, nothing to commit
  std::uint64_t xid = *lost.xid;
  auto until = Pool::Clock::now() + o.commit_resolution_timeout;
  std::string status;
  try {
    Lease lease = pool.acquire(until, where);
    ExecOptions bounded;
    bounded.deadline = until;
    while (true) {
      auto r = lease->exec(bounded, xact_status_query(server_version), std::to_string(xid));
      auto s = r.get<std::optional<std::string>>(0, 0);
      if (!s) {
        status = "no status (too old)";
        break;
      }
      if (*s == "committed") return Resolved::committed;
      if (*s == "aborted") return Resolved::aborted;
      status = *s;
      if (Pool::Clock::now() >= until) break;
      std::this_thread::sleep_for(std::min<Pool::Clock::duration>(
          std::chrono::milliseconds(5), until - Pool::Clock::now()));
    }
  } catch (const Error& e) {
    throw CommitUnknown(fmt::format("{}; outcome of transaction {} unknown: asking the server "
                                    "failed: {}", why, xid, e.what()),
                        lost.error.sqlstate(), xid);
  }
  throw CommitUnknown(fmt::format("{}; outcome of transaction {} unknown: pg_xact_status says "
                                  "'{}' after {} ms", why, xid, status,
                                  o.commit_resolution_timeout.count()),
                      lost.error.sqlstate(), xid);
}

// Whole-transaction retry cures these: the server rolled the transaction back, and the
// conflict (or the lock holder) is gone or going. Class 53 (disk full, out of memory,
// too many connections) is not retried: it does not clear in milliseconds.
bool retryable(const TransientError& e) {
  const auto& s = e.sqlstate();
  return s == "40001" || s == "40P01" || s == "55P03";
}

// Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempt-1))]. False, without
// sleeping, when the pause would end past `until` (max_elapsed): no attempt starts then.
bool backoff(int attempt, const TransactionOptions& o, std::optional<Pool::Clock::time_point> until) {
  using std::chrono::microseconds;
  auto cap = microseconds(o.base_delay);
  for (int i = 1; i < attempt && cap < microseconds(o.max_delay); ++i) cap *= 2;
  cap = std::min(cap, microseconds(o.max_delay));
  microseconds pause{0};
  if (cap.count() > 0) {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<long long> pick(0, cap.count());
    pause = microseconds(pick(rng));
  }
  if (until && Pool::Clock::now() + pause >= *until) return false;
  if (pause.count() > 0) std::this_thread::sleep_for(pause);
  return true;
}

// A borrowed connection, bounded by acquire_timeout and max_elapsed.
Lease borrow(Pool& pool, std::optional<Pool::Clock::time_point> until, std::source_location where) {
  auto deadline = Pool::Clock::now() + pool.config().acquire_timeout;
  if (until) deadline = std::min(deadline, *until);
  return pool.acquire(deadline, where);
}

// The statements of savepoint number n, on the stack (no allocation per savepoint):
// SAVEPOINT usher_savepoint_<n>, RELEASE SAVEPOINT ..., ROLLBACK TO SAVEPOINT ...
class SavepointSql {
 public:
  explicit SavepointSql(unsigned n) noexcept {
    std::snprintf(rollback_, sizeof rollback_, "ROLLBACK TO SAVEPOINT usher_savepoint_%u", n);
    std::snprintf(release_, sizeof release_, "RELEASE SAVEPOINT usher_savepoint_%u", n);
  }
  const char* savepoint() const noexcept { return rollback_ + 12; }  // after "ROLLBACK TO "
  const char* release() const noexcept { return release_; }
  const char* rollback_to() const noexcept { return rollback_; }

 private:
  char rollback_[64];
  char release_[64];
};

// Best effort, after fn threw inside a savepoint: back to the savepoint and forget it.
void rollback_to_quietly(Connection& conn, const SavepointSql& sql) noexcept {
  auto st = conn.transaction_status();
  if (st != TransactionStatus::in_transaction && st != TransactionStatus::in_error) return;
  try {
    conn.exec(sql.rollback_to());
    conn.exec(sql.release());
  } catch (...) {
  }
}

}  // namespace

Transaction::Transaction(const void* owner, Connection& conn, int attempt, int depth,
                         Isolation isolation, Transaction* root) noexcept
    : owner_(owner),
      conn_(&conn),
      attempt_(attempt),
      depth_(depth),
      isolation_(isolation),
      root_(root ? root : this),
      enclosing_(t_innermost_transaction) {
  t_innermost_transaction = this;
}

Transaction::~Transaction() { t_innermost_transaction = enclosing_; }

Transaction* Transaction::current(const void* owner) noexcept {
  for (Transaction* t = t_innermost_transaction; t; t = t->enclosing_)
    if (t->owner_ == owner) return t;
  return nullptr;
}

// The name is generated (a counter per outermost transaction), never taken from the
// caller. On success RELEASE; on a throw ROLLBACK TO (and RELEASE) before the exception
// goes on.
void Transaction::run_savepoint(detail::TransactionBody body) {
  SavepointSql sql(++root_->savepoints_);
  conn_->exec(sql.savepoint());
  try {
    Transaction nested(owner_, *conn_, attempt_, depth_ + 1, isolation_, root_);
    body.call(body.context, nested);
  } catch (...) {
    rollback_to_quietly(*conn_, sql);
    throw;
  }
  switch (conn_->transaction_status()) {
    case TransactionStatus::in_transaction:
      conn_->exec(sql.release());
      return;
    case TransactionStatus::in_error:
      rollback_to_quietly(*conn_, sql);
      throw DatabaseError(
          "savepoint: a statement failed inside the function and its error was caught there; "
          "rolled back to the savepoint", "25P02");
    case TransactionStatus::unknown:
      throw ConnectionError("savepoint: connection lost", "08006");
    default:
      throw Error("savepoint: the function ended the transaction itself or left a statement "
                  "running");
  }
}

void Pool::run_transaction(detail::TransactionBody body, const TransactionOptions& opts,
                           std::source_location where) {
  if (Transaction* enclosing = Transaction::current(core_)) {  // nested: a savepoint
    if (static_cast<int>(opts.isolation) > static_cast<int>(enclosing->isolation()))
      throw std::invalid_argument(
          "transaction: a nested call asks for a stronger isolation level than the "
          "transaction it runs in; it can only be a savepoint of that transaction");
    enclosing->run_savepoint(body);
    return;
  }
  validate(opts);
  const char* begin = begin_sql(opts);
  std::optional<Clock::time_point> until;
  if (opts.max_elapsed.count() > 0) until = Clock::now() + opts.max_elapsed;
  std::size_t lost_before_begin = 0;
  for (int attempt = 1;; ++attempt) {
    std::exception_ptr failure;  // what ended this attempt, to throw if none follows
    try {
      Lease lease = borrow(*this, until, where);  // fresh borrow per attempt
      Connection& conn = *lease;
      // BEGIN (and the timeouts) go with the body's first statement (owed_begin.cpp).
      detail::OwedBegin::owe(conn, begin, opts.statement_timeout, opts.lock_timeout);
      int version = conn.server_version();  // read now: a lost COMMIT closes the connection
      try {
        try {
          Transaction tx(core_, conn, attempt, 0, opts.isolation, nullptr);
          body.call(body.context, tx);
        } catch (...) {
          rollback_quietly(conn);
          throw;
        }
        ExecOptions bounded;  // the COMMIT ends at max_elapsed too
        if (until) bounded.deadline = *until;
        commit(conn, version, bounded);
        return;
      } catch (const ConnectionError&) {
        // The connection turned out broken before BEGIN was answered (the body's first
        // statement found it so): the server ran nothing of the transaction, so the body
        // runs again on a fresh borrow, and that is not an attempt. Each pooled connection
        // can fail that way at most once (the first failure makes the pool validate the
        // others before lending them), so the pool's size bounds these.
        if (!detail::OwedBegin::lost_before_begin(conn) || lost_before_begin >= config().max_size)
          throw;
        ++lost_before_begin;
        --attempt;
        continue;
      } catch (const LostDuringCommit& lost) {
        lease.release();  // broken: closed, its slot free for the resolving borrow
        if (resolve_commit(*this, lost, version ? version : 130000, opts, where) ==
            Resolved::committed)
          return;
        // The server rolled it back (or it wrote nothing): as 40001, run it again.
        if (attempt >= opts.max_attempts)
          throw CommitRolledBack(std::string(lost.error.what()) +
                                     "; the server reports the transaction aborted: nothing "
                                     "was committed",
                                 lost.error.sqlstate());
        failure = std::make_exception_ptr(ConnectionError(
            std::string(lost.error.what()) + "; the server reports the transaction aborted",
            lost.error.sqlstate()));
      }
    } catch (const TransientError& e) {
      if (!retryable(e) || attempt >= opts.max_attempts) throw;
      failure = std::current_exception();
    }
    if (!backoff(attempt, opts, until)) std::rethrow_exception(failure);
  }
}

}  // namespace usher
