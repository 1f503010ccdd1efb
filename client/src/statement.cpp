// Connection::exec_params: one parameterised statement, its parameters sent as they
// are (text, or binary with their length: nothing is cut at a NUL byte), its error
// thrown as a member of the hierarchy. COPY to or from the client is refused cleanly.
// The one loop that reads a statement's results: exec(), and the pool's own statements
// (sent_statements.hpp, round_trips.cpp).
#include <fmt/format.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "usher/connection.hpp"
#include "usher/errors.hpp"
#include "error_fields.hpp"
#include "param_arrays.hpp"
#include "sent_statements.hpp"
#include "statement_cache.hpp"
#include "wait.hpp"

namespace usher {
namespace {

std::string field(const PGresult* res, int code) {
  const char* v = PQresultErrorField(res, code);
  return v ? v : "";
}

// libpq's text of an error it made itself: no fields, maybe a "SEVERITY:  " prefix.
std::string libpq_message(const char* text) {
  std::string m = detail::trimmed(text);
  for (const char* prefix : {"ERROR:  ", "FATAL:  ", "PANIC:  "})
    if (m.starts_with(prefix)) m.erase(0, std::string_view(prefix).size());
  ErrorFields one;
  one.message = std::move(m);
  return error_line(one);  // libpq's hints come on lines of their own
}


// Text format ends a value at its first NUL: refuse it rather than send less. libpq
// takes a length as an int.
void check(const Param& p, std::size_t number) {
  if (!p.text) return;
  if (p.text->size() > static_cast<std::size_t>(std::numeric_limits<int>::max()))
    throw InvalidParameter(fmt::format("parameter ${} is {} bytes: more than a protocol message "
                                       "can carry", number, p.text->size()),
                           "54000");
  if (p.binary) return;
  if (auto at = p.text->find('\0'); at != std::string::npos)
    throw InvalidParameter(
        fmt::format("parameter ${} holds a NUL byte at offset {} of {}: text cannot carry it; "
                    "bind binary data as usher::Bytes (bytea)", number, at, p.text->size()),
        "22021");
}

}  // namespace

namespace detail {
ErrorFields fields_of(PGconn* conn, const PGresult* res) {
  ErrorFields f;
  if (res) {
    f.sqlstate = field(res, PG_DIAG_SQLSTATE);
    f.severity = field(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    f.message = field(res, PG_DIAG_MESSAGE_PRIMARY);
    f.detail = field(res, PG_DIAG_MESSAGE_DETAIL);
    f.hint = field(res, PG_DIAG_MESSAGE_HINT);
    std::string position = field(res, PG_DIAG_STATEMENT_POSITION);
    f.position = position.empty() ? 0 : std::atoi(position.c_str());
    f.context = field(res, PG_DIAG_CONTEXT);
    f.schema = field(res, PG_DIAG_SCHEMA_NAME);
    f.table = field(res, PG_DIAG_TABLE_NAME);
    f.column = field(res, PG_DIAG_COLUMN_NAME);
    f.datatype = field(res, PG_DIAG_DATATYPE_NAME);
    f.constraint = field(res, PG_DIAG_CONSTRAINT_NAME);
    if (f.message.empty()) f.message = libpq_message(PQresultErrorMessage(res));
  }
  if (f.message.empty()) f.message = libpq_message(PQerrorMessage(conn));
  return f;
}

// Throws the error of `res` (or of the connection when null) as its member of the
// hierarchy, and frees `res`.
[[noreturn]] void throw_for(PGconn* conn, PGresult* res) {
  ErrorFields f = detail::fields_of(conn, res);
  PQclear(res);
  // Errors libpq makes up itself (connection lost) carry no SQLSTATE; a server's code
  // (57P01 at shutdown, ...) is kept.
  if (PQstatus(conn) != CONNECTION_OK && f.sqlstate.empty()) f.sqlstate = "08006";
  if (PQstatus(conn) != CONNECTION_OK && f.sqlstate.starts_with("08")) throw ConnectionError(std::move(f));
  throw_database_error(std::move(f));
}

ParamArrays::ParamArrays(std::span<const Param> params) {
  values.reserve(params.size());
  types.reserve(params.size());
  lengths.reserve(params.size());
  formats.reserve(params.size());
  for (std::size_t i = 0; i < params.size(); ++i) {
    const Param& p = params[i];
    check(p, i + 1);
    values.push_back(p.text ? p.text->data() : nullptr);
    types.push_back(p.type);
    lengths.push_back(p.text ? static_cast<int>(p.text->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
}
}  // namespace detail

namespace {

enum class Ended { done, deadline, aborted, lost };

// Reads every result of the statement just sent, within its ExecOptions: one loop for
// every exec(), and for a pipeline (each statement's results end with a NULL, the whole
// with PGRES_PIPELINE_SYNC; the last result of statement i goes to pipelined[i]). At
// the deadline it sends one cancel request and waits cancel_wait more.
// A COPY with the client is ended here (COPY TO STDOUT: its rows are read and dropped,
// so the statement ends as it would have; COPY FROM STDIN: ended with an error, so
// nothing is loaded) and reported to the caller as not supported -- unless it is the
// COPY the caller asked for (`stop_at`: copy_from/copy_to start it here): then the
// loop stops with the connection in that COPY state and its result as last().
class StatementReader {
 public:
  StatementReader(PGconn* conn, PGcancel* cancel, const ExecOptions& options,
                  std::span<Result> pipelined, ExecStatusType stop_at = PGRES_EMPTY_QUERY)
      : conn_(conn), cancel_(cancel), options_(options), until_(options.deadline),
        pipelined_(pipelined), stop_at_(stop_at) {}
  StatementReader(const StatementReader&) = delete;
  StatementReader& operator=(const StatementReader&) = delete;
  ~StatementReader() { PQclear(error_); }

  Ended read_all() {
    // Blocking mode (the default, never changed): PQsendQueryParams has sent everything
    // unless the socket's buffer was full.
    while (int flushed = PQflush(conn_)) {
      if (flushed < 0) return Ended::lost;
      if (auto stop = wait(true)) return *stop;
    }
    while (true) {
      if (copy_out_) {
        if (auto ended = drop_copy_rows()) return *ended;
        continue;
      }
      while (!copy_out_ && !PQisBusy(conn_)) {
        PGresult* res = PQgetResult(conn_);
        if (!res) {
          // Pipelined: the end of one statement's results; the next one's follow, then
          // the sync. More ends than statements, or a broken connection: nothing more.
          if (pipelined_.empty() || PQstatus(conn_) != CONNECTION_OK ||
              ++statement_ > pipelined_.size())
            return Ended::done;
          continue;
        }
        if (!take(res)) return Ended::lost;
        if (synced_ || stopped_) return Ended::done;
      }
      if (copy_out_) continue;
      if (auto stop = wait(false)) return *stop;
      if (!PQconsumeInput(conn_)) return finish_broken();
    }
  }

  PGresult* release_error() { return std::exchange(error_, nullptr); }
  Result& last() { return last_; }
  bool cancelled() const { return cancelled_; }
  // COPY ... TO STDOUT or FROM STDIN met, or none (PGRES_EMPTY_QUERY).
  ExecStatusType copy() const { return copy_; }
  // Pipelined: the sync's result was read (every statement's results before it).
  bool synced() const { return synced_; }
  // Pipelined: the statement whose error error_ is.
  std::size_t failed_statement() const { return failed_statement_; }
  // Stopped in the COPY state asked for.
  bool stopped() const { return stopped_; }

 private:
  // Keeps the last good result and the first error; false for a COPY that cannot end.
  bool take(PGresult* res) {
    if (PQresultStatus(res) == stop_at_ && stop_at_ != PGRES_EMPTY_QUERY && !error_) {
      stopped_ = true;
      last_ = Result(res);
      return true;
    }
    switch (PQresultStatus(res)) {
      case PGRES_COPY_OUT:
        copy_ = PGRES_COPY_OUT;
        copy_out_ = true;
        PQclear(res);
        return true;
      case PGRES_COPY_IN:
        copy_ = PGRES_COPY_IN;
        PQclear(res);
        return PQputCopyEnd(conn_, "libusher: exec() sends no COPY data") == 1;
      case PGRES_COPY_BOTH:  // replication: nothing to rescue
        PQclear(res);
        return false;
      case PGRES_FATAL_ERROR:
      case PGRES_BAD_RESPONSE:
      case PGRES_NONFATAL_ERROR:
        if (error_) {
          PQclear(res);
        } else {
          error_ = res;
          failed_statement_ = statement_;
        }
        return true;
      case PGRES_PIPELINE_SYNC:
        synced_ = true;
        PQclear(res);
        return true;
      case PGRES_PIPELINE_ABORTED:  // a statement after the pipeline's error: not run
        PQclear(res);
        return true;
      default:
        if (pipelined_.empty())
          last_ = Result(res);
        else if (statement_ < pipelined_.size())
          pipelined_[statement_] = Result(res);
        else
          PQclear(res);
        return true;
    }
  }

  // The connection broke: libpq hands out its own error result ("server closed the
  // connection unexpectedly") at once, without waiting, and the caller throws it as a
  // ConnectionError. A failure on a connection libpq still calls good is not ours to
  // read on.
  Ended finish_broken() {
    if (PQstatus(conn_) == CONNECTION_OK) return Ended::lost;
    copy_out_ = false;
    while (PGresult* res = PQgetResult(conn_)) {
      if (PQresultStatus(res) == PGRES_COPY_OUT || PQresultStatus(res) == PGRES_COPY_IN) {
        PQclear(res);
        break;
      }
      take(res);
    }
    return Ended::done;
  }

  // COPY TO STDOUT rows as they arrive; nullopt while the COPY goes on or once it ended.
  std::optional<Ended> drop_copy_rows() {
    while (true) {
      char* row = nullptr;
      int n = PQgetCopyData(conn_, &row, 1);
      if (n > 0) {
        PQfreemem(row);
        continue;
      }
      if (n == -1) {  // the COPY is over: its own result follows
        copy_out_ = false;
        return std::nullopt;
      }
      if (n == -2) return finish_broken();
      if (auto stop = wait(false)) return stop;  // 0: the next row is not here yet
      if (!PQconsumeInput(conn_)) return finish_broken();
    }
  }

  // Waits for the socket; nullopt when it is ready. At the deadline: one cancel, then
  // cancel_wait more.
  std::optional<Ended> wait(bool for_write) {
    while (true) {
      switch (detail::wait_socket_or_abort(conn_, for_write, until_, options_.abort_fd)) {
        case detail::Wait::ready: return std::nullopt;
        case detail::Wait::aborted: return Ended::aborted;
        case detail::Wait::failed: return finish_broken();
        case detail::Wait::timed_out: break;
      }
      if (cancelled_ || options_.cancel_wait.count() <= 0 || !cancel_) return Ended::deadline;
      cancelled_ = true;
      char err[256];
      if (PQcancel(cancel_, err, sizeof err) != 1) return Ended::deadline;
      until_ = std::chrono::steady_clock::now() + options_.cancel_wait;
    }
  }

  PGconn* conn_;
  PGcancel* cancel_;
  const ExecOptions& options_;
  std::chrono::steady_clock::time_point until_;
  bool cancelled_ = false;
  bool copy_out_ = false;
  std::span<Result> pipelined_;
  std::size_t statement_ = 0;  // pipelined: the statement whose results come now
  std::size_t failed_statement_ = 0;
  bool synced_ = false;
  ExecStatusType stop_at_;
  bool stopped_ = false;
  ExecStatusType copy_ = PGRES_EMPTY_QUERY;
  PGresult* error_ = nullptr;
  Result last_;
};

[[noreturn]] void refuse_copy(ExecStatusType kind, bool failed) {
  const char* what = kind == PGRES_COPY_IN ? "COPY ... FROM STDIN" : "COPY ... TO STDOUT";
  const char* outcome = kind == PGRES_COPY_IN ? "ended with an error, nothing was loaded"
                        : failed             ? "failed while its rows were read"
                                             : "ran; the rows it sent were read and dropped";
  throw NotSupported(
      fmt::format("exec() does not support {}: the statement {}; use Connection::{}",
                  what, outcome, kind == PGRES_COPY_IN ? "copy_from()" : "copy_to()"),
      "0A000");
}

}  // namespace

Result Connection::exec_params(const std::string& sql, std::span<const Param> params) {
  return exec_params(sql, params, ExecOptions{});
}

Result Connection::exec_params(const std::string& sql, std::span<const Param> params,
                               const ExecOptions& options) {
  return exec_params(sql.c_str(), params, options);
}

Result Connection::exec_params(const char* sql, std::span<const Param> params,
                               const ExecOptions& options) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  if (statements_) {  // prepared statements in use on this connection (statement_cache.cpp)
    statements_->note(sql);
    if (statements_->automatic() && detail::StatementCache::cacheable(sql)) {
      pay_owed(options);
      return exec_cached(sql, params, options);
    }
  }
  ++uses_;
  if (owed_.begin) return exec_behind_owed(sql, params, options);  // owed_begin.cpp
  int sent;
  if (params.empty()) {  // most of the pool's and a transaction's statements
    sent = PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0);
  } else {
    detail::ParamArrays a(params);
    sent = PQsendQueryParams(conn_, sql, a.count(), a.types.data(), a.values.data(),
                             a.lengths.data(), a.formats.data(), 0);
  }
  if (!sent) detail::throw_for(conn_, nullptr);
  return read_results(options);
}

Result Connection::read_results(const ExecOptions& options, std::span<Result> pipelined,
                                detail::ReadMode mode) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  StatementReader reader(conn_, cancel_, options, pipelined,
                         mode.stop_at_copy == detail::CopyStop::in    ? PGRES_COPY_IN
                         : mode.stop_at_copy == detail::CopyStop::out ? PGRES_COPY_OUT
                                                  : PGRES_EMPTY_QUERY);
  switch (reader.read_all()) {
    case Ended::done:
      break;
    case Ended::deadline:
      close();  // a statement in an unknown state: this connection is not used again
      throw ConnectionError(
          reader.cancelled()
              ? fmt::format("statement still running {} ms after its deadline and its cancel "
                            "request: connection closed", options.cancel_wait.count())
              : std::string("statement still running at its deadline: connection closed"),
          "08006");
    case Ended::aborted:
      close();
      throw ConnectAborted("statement abandoned: its abort descriptor became readable; connection closed");
    case Ended::lost: {
      // A server's error that ended the session keeps its code (FATAL 57P01 ...).
      PGresult* error = reader.release_error();
      ErrorFields f = detail::fields_of(conn_, error);
      PQclear(error);
      std::string message = libpq_message(PQerrorMessage(conn_));
      close();  // lost, or a COPY that cannot end: either way not usable again
      if ((f.severity == "FATAL" || f.severity == "PANIC") && !f.sqlstate.empty())
        throw_database_error(std::move(f));
      if (message.empty()) message = "the statement's answer could not be read";
      throw ConnectionError(message, "08006");
    }
  }
  if (reader.stopped()) return std::move(reader.last());  // in the COPY state asked for
  PGresult* error = reader.release_error();
  if (error && mode.failed_statement) *mode.failed_statement = reader.failed_statement();
  if (PQstatus(conn_) != CONNECTION_OK) detail::throw_for(conn_, error);  // ConnectionError
  if (!pipelined.empty() && (!reader.synced() || !PQexitPipelineMode(conn_))) {
    PQclear(error);
    close();  // a pipeline that did not end: not usable again
    throw ConnectionError("a pipeline's answer ended before its sync: connection closed", "08006");
  }
  if (reader.copy() != PGRES_EMPTY_QUERY) {
    bool failed = error != nullptr;
    PQclear(error);
    refuse_copy(reader.copy(), failed);
  }
  if (error) {
    if (reader.cancelled()) {
      if (field(error, PG_DIAG_SQLSTATE) == "57014") {
        ErrorFields f = detail::fields_of(conn_, error);
        PQclear(error);
        std::string what = "statement cancelled at its deadline: " + error_line(f);
        throw QueryCanceled(what, std::move(f));
      }
    }
    detail::throw_for(conn_, error);
  }
  return std::move(reader.last());
}

void Connection::exec_pipelined(const char* first, const char* second,
                                std::span<Result, 2> results, const ExecOptions& options) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  pay_owed(options);
  ++uses_;
  auto send = [this](const char* sql) {
    return PQsendQueryParams(conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0) == 1;
  };
  if (!PQenterPipelineMode(conn_) || !send(first) || !PQsendFlushRequest(conn_) ||
      !send(second) || !PQpipelineSync(conn_)) {
    ErrorFields f = detail::fields_of(conn_, nullptr);
    close();  // half a pipeline sent: not usable again
    throw ConnectionError(f.message, "08006");
  }
  read_results(options, results);
}

void Connection::start_copy(const std::string& sql, detail::CopyStop direction) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  pay_owed(ExecOptions{});
  ++uses_;
  if (!PQsendQueryParams(conn_, sql.c_str(), 0, nullptr, nullptr, nullptr, nullptr, 0))
    detail::throw_for(conn_, nullptr);
  Result started = read_results(ExecOptions{}, {}, detail::ReadMode{direction});
  const bool in = direction == detail::CopyStop::in;
  ExecStatusType want = in ? PGRES_COPY_IN : PGRES_COPY_OUT;
  if (started.native() && PQresultStatus(started.native()) == want) return;
  // It ran as something else (and is over: the connection is idle again).
  throw NotSupported(
      fmt::format("Connection::{} runs one COPY ... {} statement; \"{}\" was not one (it ran)",
                  in ? "copy_from()" : "copy_to()", in ? "FROM STDIN" : "TO STDOUT", sql),
      "0A000");
}

void Connection::copy_failed(const char* what) {
  std::string message = libpq_message(PQerrorMessage(conn_));
  close();  // a COPY in an unknown state: not usable again
  throw ConnectionError(fmt::format("{}: {}; connection closed", what,
                                    message.empty() ? "libpq reported no reason" : message),
                        "08006");
}

namespace detail {
bool SentStatements::send(Connection& conn, const char* sql) {
  // Not through native(): the pool's own statements are not a borrower's use.
  if (conn.statements_) conn.statements_->note(sql);  // the session reset: DISCARD ALL
  return conn.conn_ && PQsendQueryParams(conn.conn_, sql, 0, nullptr, nullptr, nullptr, nullptr, 0);
}
}  // namespace detail

}  // namespace usher
