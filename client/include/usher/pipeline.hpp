#pragma once
// usher::Pipeline: statements sent together in libpq's pipeline mode and their results
// read in one round trip (Connection::exec_pipeline). See docs/client.md, "Pipelines".
//
//   usher::Pipeline batch;
//   for (auto& e : events) batch.add("INSERT INTO events (id, body) VALUES ($1, $2)", e.id, e.body);
//   std::vector<usher::Result> results = conn.exec_pipeline(batch);   // one per statement
//
// The statements between the pipeline's start and its one sync run as one implicit
// transaction (unless they contain BEGIN/COMMIT themselves): when one fails, the ones
// before it are rolled back too and the ones after it are not run (skipped).

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "usher/connection.hpp"
#include "usher/errors.hpp"

namespace usher {

class Pipeline {
 public:
  // Appends one statement with its parameters ($1, $2, ...); returns its index.
  template <typename... Args>
  std::size_t add(std::string sql, const Args&... args) {
    statements_.push_back(Statement{std::move(sql), {to_param(args)...}});
    return statements_.size() - 1;
  }
  std::size_t size() const noexcept { return statements_.size(); }
  bool empty() const noexcept { return statements_.empty(); }
  void clear() noexcept { statements_.clear(); }

 private:
  friend class Connection;
  struct Statement {
    std::string sql;
    std::vector<Param> params;
  };
  std::vector<Statement> statements_;
};

// What became of one statement of a failed pipeline.
enum class PipelineStatus {
  done,     // ran before the failure (rolled back with it, unless it committed itself)
  failed,   // the statement whose error this is
  skipped,  // after the failure: not run
};

// A statement of a pipeline failed. sqlstate(), the fields and is_transient() are those
// of the server's error; what() names the statement by its index. cause() is that error
// as exec() throws it (UniqueViolation, SerializationFailure, ...).
class PipelineError : public virtual DatabaseError {
 public:
  PipelineError(const std::string& what, ErrorFields fields, std::size_t failed_index,
                std::size_t statements, std::exception_ptr cause,
                std::shared_ptr<const std::vector<Result>> results);
  PipelineError(const PipelineError&) = default;
  PipelineError& operator=(const PipelineError&) = default;

  // The index (0-based, as Pipeline::add returned it) of the statement that failed.
  std::size_t failed_index() const noexcept { return failed_index_; }
  std::size_t statements() const noexcept { return statements_; }
  PipelineStatus status(std::size_t index) const noexcept {
    return index < failed_index_ ? PipelineStatus::done
           : index == failed_index_ ? PipelineStatus::failed
                                    : PipelineStatus::skipped;
  }
  // Statements after the failed one (none of them ran).
  std::size_t skipped() const noexcept { return statements_ - failed_index_ - 1; }
  // The results of the statements before the failed one (an empty Result for the others).
  const std::vector<Result>& results() const noexcept { return *results_; }
  // The server's error as its own type.
  const std::exception_ptr& cause() const noexcept { return cause_; }
  [[noreturn]] void rethrow_cause() const { std::rethrow_exception(cause_); }

 private:
  std::size_t failed_index_;
  std::size_t statements_;
  std::exception_ptr cause_;
  std::shared_ptr<const std::vector<Result>> results_;
};

}  // namespace usher
