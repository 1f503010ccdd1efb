// Connection::exec_pipeline: a batch of statements in libpq's pipeline mode, one sync
// at the end, their results read by the one statement loop (statement.cpp:
// read_results), which names the statement whose error it throws.
#include "usher/pipeline.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <utility>

#include "error_fields.hpp"
#include "param_arrays.hpp"

namespace usher {

PipelineError::PipelineError(const std::string& what, ErrorFields fields, std::size_t failed_index,
                             std::size_t statements, std::exception_ptr cause,
                             std::shared_ptr<const std::vector<Result>> results)
    : Error(what, std::move(fields)),
      failed_index_(failed_index),
      statements_(statements),
      cause_(std::move(cause)),
      results_(std::move(results)) {}

std::vector<Result> Connection::exec_pipeline(const Pipeline& batch, const ExecOptions& options) {
  if (!conn_) throw ConnectionError("connection is not open", "08003");
  const std::size_t n = batch.size();
  std::vector<Result> results(n);
  if (n == 0) return results;
  pay_owed(options);
  // Every parameter checked before anything is sent: a refused one sends nothing.
  std::vector<detail::ParamArrays> arrays;
  arrays.reserve(n);
  for (const auto& s : batch.statements_) arrays.emplace_back(s.params);
  // A text repeated by the next statement (a batch of the same INSERT) is parsed once:
  // Parse into the unnamed statement, then Bind/Execute for each (PQsendQueryPrepared
  // with ""). The unnamed statement lives until the next Parse, inside this pipeline's
  // one transaction (so PgBouncer in transaction mode keeps it on one server). A Parse
  // has a result of its own: `slots` has one entry per result, the statement it is for.
  auto same_text = [&](std::size_t a, std::size_t b) {
    const auto& x = batch.statements_[a];
    const auto& y = batch.statements_[b];
    return x.sql == y.sql && arrays[a].types == arrays[b].types;
  };
  std::vector<std::size_t> slots;
  slots.reserve(n + n / 2);
  ++uses_;
  bool sent = PQenterPipelineMode(conn_) == 1;
  bool prepared = false;  // the unnamed statement holds statement i's text
  for (std::size_t i = 0; sent && i < n; ++i) {
    const detail::ParamArrays& a = arrays[i];
    const char* sql = batch.statements_[i].sql.c_str();
    if (prepared && same_text(i - 1, i)) {
      sent = PQsendQueryPrepared(conn_, "", a.count(), a.values.data(), a.lengths.data(),
                                 a.formats.data(), 0) == 1;
    } else if (i + 1 < n && same_text(i, i + 1)) {
      sent = PQsendPrepare(conn_, "", sql, a.count(), a.types.data()) == 1 &&
             PQsendQueryPrepared(conn_, "", a.count(), a.values.data(), a.lengths.data(),
                                 a.formats.data(), 0) == 1;
      prepared = true;
      slots.push_back(i);  // the Parse's own result
    } else {
      sent = PQsendQueryParams(conn_, sql, a.count(), a.types.data(), a.values.data(),
                               a.lengths.data(), a.formats.data(), 0) == 1;
      prepared = false;
    }
    slots.push_back(i);
  }
  if (!sent || !PQpipelineSync(conn_)) {
    ErrorFields f = detail::fields_of(conn_, nullptr);
    close();  // part of a pipeline sent: not usable again
    throw ConnectionError(fmt::format("a pipeline of {} statements could not be sent: {}; "
                                      "connection closed", n, f.message),
                          "08006");
  }
  // Each statement's result is the last of its slots (a Parse's comes before).
  std::vector<Result> slot_results(slots.size());
  auto gather = [&] {
    for (std::size_t k = 0; k < slots.size(); ++k)
      if (slot_results[k].native()) results[slots[k]] = std::move(slot_results[k]);
  };
  std::size_t failed = 0;
  try {
    read_results(options, slot_results, detail::ReadMode{detail::CopyStop::none, &failed});
  } catch (const ConnectionError&) {
    throw;  // lost: no statement to blame
  } catch (const DatabaseError& e) {
    gather();
    std::size_t statement = slots.at(failed);
    auto before = std::make_shared<std::vector<Result>>(std::move(results));
    for (std::size_t i = statement; i < before->size(); ++i) (*before)[i] = Result();
    throw PipelineError(fmt::format("statement {} of the pipeline's {} failed ({} after it "
                                    "skipped): {}", statement, n, n - statement - 1, e.what()),
                        e.fields(), statement, n, std::current_exception(), std::move(before));
  }
  gather();
  return results;
}

}  // namespace usher
