// Connection::stream_params: one statement's rows handed over one at a time as they
// arrive (libpq's single-row mode: PostgreSQL 15's libpq has no chunked mode), so a
// result larger than memory is never held.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <exception>

#include "error_fields.hpp"
#include "param_arrays.hpp"
#include "statement_cache.hpp"
#include "usher/connection.hpp"
#include "usher/errors.hpp"
#include "wait.hpp"

namespace usher {

std::size_t Connection::stream_params(const std::string& sql, std::span<const Param> params,
                                      const std::function<void(const Row&)>& on_row,
                                      const ExecOptions& options) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  if (statements_) statements_->note(sql);
  pay_owed(options);
  ++uses_;
  detail::ParamArrays a(params);
  if (!PQsendQueryParams(conn_, sql.c_str(), a.count(), a.types.data(), a.values.data(),
                         a.lengths.data(), a.formats.data(), 0) ||
      !PQsetSingleRowMode(conn_)) {
    ErrorFields f = detail::fields_of(conn_, nullptr);
    close();  // sent, or half sent, without single-row mode: not ours to read on
    throw ConnectionError(f.message, "08006");
  }
  std::size_t rows = 0;
  std::exception_ptr failure;  // on_row threw: the rest is read and dropped
  PGresult* error = nullptr;
  bool copy = false;
  while (true) {
    while (PQisBusy(conn_)) {
      auto waited = detail::wait_socket_or_abort(conn_, false, options.deadline, options.abort_fd);
      if (waited == detail::Wait::timed_out || waited == detail::Wait::aborted) {
        PQclear(error);
        close();  // a statement still running: this connection is not used again
        if (waited == detail::Wait::aborted) throw ConnectAborted("stream abandoned: its abort descriptor became readable; connection closed");
        throw ConnectionError("streamed statement still running at its deadline: connection closed", "08006");
      }
      if (waited == detail::Wait::failed || !PQconsumeInput(conn_)) break;
    }
    PGresult* res = PQgetResult(conn_);
    if (!res) break;
    switch (PQresultStatus(res)) {
      case PGRES_SINGLE_TUPLE:
        if (failure) {
          PQclear(res);
          break;
        }
        try {
          Result one(res);
          on_row(one.row(0));
          ++rows;
        } catch (...) {
          failure = std::current_exception();
          if (cancel_) {
            char err[256];
            PQcancel(cancel_, err, sizeof err);
          }
        }
        break;
      case PGRES_COPY_IN:
      case PGRES_COPY_OUT:
      case PGRES_COPY_BOTH:
        PQclear(res);
        copy = true;
        break;
      case PGRES_FATAL_ERROR:
      case PGRES_BAD_RESPONSE:
      case PGRES_NONFATAL_ERROR:
        if (error) PQclear(res); else error = res;
        break;
      default:  // PGRES_TUPLES_OK (the end), PGRES_COMMAND_OK
        PQclear(res);
        break;
    }
    if (copy) break;
  }
  if (copy) {
    PQclear(error);
    close();
    throw NotSupported("stream() does not support COPY: connection closed", "0A000");
  }
  if (failure) {
    PQclear(error);  // the cancel's 57014, most likely
    std::rethrow_exception(failure);
  }
  if (error || PQstatus(conn_) != CONNECTION_OK) detail::throw_for(conn_, error);
  return rows;
}

}  // namespace usher
