// Pool::transaction without its template: BEGIN text, COMMIT and its failure modes,
// which errors retry, and the backoff between attempts.
#include <algorithm>
#include <random>
#include <stdexcept>
#include <source_location>
#include <string>
#include <thread>

#include "usher/errors.hpp"
#include "usher/pool.hpp"

namespace usher {
namespace {

void validate(const TransactionOptions& o) {
  if (o.max_attempts < 1)
    throw std::invalid_argument("TransactionOptions.max_attempts: must be at least 1");
  if (o.base_delay.count() < 0 || o.max_delay < o.base_delay)
    throw std::invalid_argument("TransactionOptions.base_delay/max_delay: need 0 <= base_delay <= max_delay");
  if (o.deferrable && !(o.isolation == Isolation::serializable && o.read_only))
    throw std::invalid_argument("TransactionOptions.deferrable: only with serializable and read_only");
}

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
  auto st = conn.transaction_status();
  if (st != TransactionStatus::in_transaction && st != TransactionStatus::in_error) return;
  try {
    conn.exec("ROLLBACK");
  } catch (...) {
  }
}

void commit(Connection& conn) {
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
  try {
    conn.exec("COMMIT");
  } catch (const ConnectionError& e) {
    throw CommitUnknown(std::string("transaction: connection lost during COMMIT, outcome "
                                    "unknown: ") + e.what(), e.sqlstate());
  }
}

// Whole-transaction retry cures these: the server rolled the transaction back, and the
// conflict (or the lock holder) is gone or going. Class 53 (disk full, out of memory,
// too many connections) is not retried: it does not clear in milliseconds.
bool retryable(const TransientError& e) {
  const auto& s = e.sqlstate();
  return s == "40001" || s == "40P01" || s == "55P03";
}

// Full jitter: uniform in [0, min(max_delay, base_delay * 2^(attempt-1))].
void backoff(int attempt, const TransactionOptions& o) {
  using std::chrono::microseconds;
  auto cap = microseconds(o.base_delay);
  for (int i = 1; i < attempt && cap < microseconds(o.max_delay); ++i) cap *= 2;
  cap = std::min(cap, microseconds(o.max_delay));
  if (cap.count() <= 0) return;
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<long long> pick(0, cap.count());
  std::this_thread::sleep_for(microseconds(pick(rng)));
}

// A borrowed connection with BEGIN sent. A connection that dies before BEGIN is
// answered ran nothing of the transaction: borrowing afresh is always safe, and is not
// an attempt. Each pooled connection can fail that way at most once (the first failure
// makes the pool validate the others before lending them), so the pool's size bounds
// these retries.
Lease begin_on_fresh_borrow(Pool& pool, const char* begin, std::source_location where) {
  for (std::size_t lost = 0;; ++lost) {
    Lease lease = pool.acquire(where);
    try {
      lease->exec(begin);
      return lease;
    } catch (const ConnectionError&) {
      if (lost >= pool.config().max_size) throw;
    }
  }
}

}  // namespace

void Pool::run_transaction(detail::TransactionBody body, const TransactionOptions& opts,
                           std::source_location where) {
  validate(opts);
  const char* begin = begin_sql(opts);
  for (int attempt = 1;; ++attempt) {
    try {
      Lease lease = begin_on_fresh_borrow(*this, begin, where);  // fresh borrow per attempt
      Connection& conn = *lease;
      try {
        body.call(body.context, conn, attempt);
      } catch (...) {
        rollback_quietly(conn);
        throw;
      }
      commit(conn);
      return;
    } catch (const TransientError& e) {
      if (!retryable(e) || attempt >= opts.max_attempts) throw;
    }
    backoff(attempt, opts);
  }
}

}  // namespace usher
