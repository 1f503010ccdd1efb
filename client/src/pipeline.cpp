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
  // Every parameter checked before anything is sent: a refused one sends nothing.
  std::vector<detail::ParamArrays> arrays;
  arrays.reserve(n);
  for (const auto& s : batch.statements_) arrays.emplace_back(s.params);
  ++uses_;
  bool sent = PQenterPipelineMode(conn_) == 1;
  for (std::size_t i = 0; sent && i < n; ++i) {
    const detail::ParamArrays& a = arrays[i];
    sent = PQsendQueryParams(conn_, batch.statements_[i].sql.c_str(), a.count(), a.types.data(),
                             a.values.data(), a.lengths.data(), a.formats.data(), 0) == 1;
  }
  if (!sent || !PQpipelineSync(conn_)) {
    ErrorFields f = detail::fields_of(conn_, nullptr);
    close();  // part of a pipeline sent: not usable again
    throw ConnectionError(fmt::format("a pipeline of {} statements could not be sent: {}; "
                                      "connection closed", n, f.message),
                          "08006");
  }
  std::size_t failed = 0;
  try {
    read_results(options, results, detail::ReadMode{0, &failed});
  } catch (const ConnectionError&) {
    throw;  // lost: no statement to blame
  } catch (const DatabaseError& e) {
    auto before = std::make_shared<std::vector<Result>>(std::move(results));
    for (std::size_t i = failed; i < before->size(); ++i) (*before)[i] = Result();
    throw PipelineError(fmt::format("statement {} of the pipeline's {} failed ({} after it "
                                    "skipped): {}", failed, n, n - failed - 1, e.what()),
                        e.fields(), failed, n, std::current_exception(), std::move(before));
  }
  return results;
}

}  // namespace usher
