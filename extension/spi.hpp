// Read-only SQL from C++: runs a query through SPI and copies the result out as text,
// so C++ code can work on it with ordinary containers. Every PostgreSQL call goes
// through pg::call, so an error becomes a usher::PgError and no longjmp crosses C++.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pg_includes.hpp"

namespace usher::spi {

// The search_path every internal SQL text of pg_usher runs with, and the one pinned on
// every function of schema usher (SET search_path = ...).
constexpr const char* safe_search_path = "pg_catalog, pg_temp";

// Internal SQL that runs outside any pg_usher SQL function (the publication at COMMIT,
// the publisher worker) must not depend on the session: it runs between enter_internal()
// and leave_internal(), with search_path pinned to safe_search_path in a GUC nest level
// of its own and, when run_as is a valid role, as that role in a security-restricted
// operation (SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION, as
// fmgr_security_definer and VACUUM do). Plain data, PostgreSQL calls only: call them
// directly from plain frames or inside pg::call. On the success path leave_internal()
// restores both; if anything in between raises, the (sub)transaction abort restores the
// user, security context and GUC nest level, as it does for a SECURITY DEFINER function.
struct InternalScope {
  Oid saved_user;
  int saved_context;
  int guc_nest_level;
};
InternalScope enter_internal(Oid run_as);
void leave_internal(const InternalScope& scope);

// The owner of table usher.<relname> (ERROR if it does not exist): the role whose
// rights a publication reads that table with, whoever committed the change.
Oid owner_of_usher_table(const char* relname);

// Plain-data reads of internal SQL (the publications at PRE_COMMIT, the publisher
// worker): one query, run read-only with a given snapshot, as a given role, between
// enter_internal() and leave_internal(), every row copied into a struct of plain fields.
// PostgreSQL calls only, nothing to destroy: call it from plain frames or inside
// pg::call.
struct Column {
  // text into char[NAMEDATALEN] (cut), int4 into int32, boolean into bool;
  // NULL reads as "", 0, false.
  enum Kind : uint8 { name, int4, boolean } kind;
  size_t offset;  // of the field in the row struct (offsetof)
};

// Runs `sql` as `run_as` (InvalidOid: the current user) with `snapshot` and copies its
// rows into an array allocated zeroed in `context` (room for one row more, so never
// empty), `row_size` bytes a row, each column into its field. Returns the row count.
int read_rows(const char* sql, Oid run_as, ::Snapshot snapshot, MemoryContext context, const Column* columns,
              int column_count, size_t row_size, void** rows);

template <typename Row, size_t N>
int read_rows(const char* sql, Oid run_as, ::Snapshot snapshot, MemoryContext context, const Column (&columns)[N],
              Row** rows) {
  void* read = nullptr;
  int count = read_rows(sql, run_as, snapshot, context, columns, static_cast<int>(N), sizeof(Row), &read);
  *rows = static_cast<Row*>(read);
  return count;
}

class Table {
 public:
  Table(size_t columns, std::vector<std::optional<std::string>> cells)
      : columns_(columns), cells_(std::move(cells)) {}

  size_t rows() const { return columns_ ? cells_.size() / columns_ : 0; }
  // NULL is std::nullopt; every other value is its text output form.
  const std::optional<std::string>& at(size_t row, size_t column) const {
    return cells_.at(row * columns_ + column);
  }

 private:
  size_t columns_;
  std::vector<std::optional<std::string>> cells_;
};

// Runs `sql` read-only in its own SPI connection and returns every row. `sql` must be a
// string literal: its plan is prepared once per backend and kept.
Table query(const char* sql);

}  // namespace usher::spi
