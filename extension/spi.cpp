#include "spi.hpp"

#include <unordered_map>

#include "guard.hpp"

extern "C" {
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace usher::spi {

InternalScope enter_internal(Oid run_as) {
  InternalScope scope{};
  GetUserIdAndSecContext(&scope.saved_user, &scope.saved_context);
  scope.guc_nest_level = NewGUCNestLevel();
  if (OidIsValid(run_as))
    SetUserIdAndSecContext(run_as,
                           scope.saved_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  (void)set_config_option("search_path", safe_search_path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                          false);
  return scope;
}

void leave_internal(const InternalScope& scope) {
  AtEOXact_GUC(true, scope.guc_nest_level);
  SetUserIdAndSecContext(scope.saved_user, scope.saved_context);
}

Oid owner_of_usher_table(const char* relname) {
  Oid relid = get_relname_relid(relname, get_namespace_oid("usher", false));
  if (!OidIsValid(relid)) elog(ERROR, "pg_usher: table usher.%s does not exist", relname);
  HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "pg_usher: cache lookup failed for relation %u", relid);
  Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
  ReleaseSysCache(tuple);
  return owner;
}

int read_rows(const char* sql, Oid run_as, ::Snapshot snapshot, MemoryContext context, const Column* columns,
              int column_count, size_t row_size, void** rows) {
  MemoryContext caller = CurrentMemoryContext;
  InternalScope scope = enter_internal(run_as);
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_usher: SPI_connect failed");
  SPIPlanPtr plan = SPI_prepare(sql, 0, nullptr);
  if (plan == nullptr) elog(ERROR, "pg_usher: could not prepare %s", sql);
  if (SPI_execute_snapshot(plan, nullptr, nullptr, snapshot, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
    elog(ERROR, "pg_usher: could not read: %s", sql);
  int count = static_cast<int>(SPI_processed);
  auto* read = static_cast<char*>(MemoryContextAllocZero(context, row_size * (SPI_processed + 1)));
  TupleDesc desc = SPI_tuptable->tupdesc;
  for (int r = 0; r < count; r++) {
    HeapTuple tuple = SPI_tuptable->vals[r];
    char* row = read + row_size * r;
    for (int c = 0; c < column_count; c++) {
      char* field = row + columns[c].offset;
      bool isnull;
      Datum value = SPI_getbinval(tuple, desc, c + 1, &isnull);
      if (isnull) continue;  // zeroed: "", 0, false
      switch (columns[c].kind) {
        case Column::name:
          strlcpy(field, SPI_getvalue(tuple, desc, c + 1), NAMEDATALEN);
          break;
        case Column::int4:
          *reinterpret_cast<int32*>(field) = DatumGetInt32(value);
          break;
        case Column::boolean:
          *reinterpret_cast<bool*>(field) = DatumGetBool(value);
          break;
      }
    }
  }
  SPI_finish();
  leave_internal(scope);
  MemoryContextSwitchTo(caller);
  *rows = read;
  return count;
}

namespace {

// Plain C: runs a prepared plan and leaves the result as palloc'd C strings (NULL for
// SQL NULL) in the SPI memory context, for the C++ side to copy before SPI_finish.
struct RawResult {
  char** cells;
  uint64 rows;
  int columns;
};

void run(SPIPlanPtr plan, RawResult* out) {
  int rc = SPI_execute_plan(plan, nullptr, nullptr, true, 0);
  if (rc != SPI_OK_SELECT) elog(ERROR, "pg_usher: query failed: %s", SPI_result_code_string(rc));
  out->rows = SPI_processed;
  out->columns = SPI_tuptable->tupdesc->natts;
  out->cells = static_cast<char**>(palloc(sizeof(char*) * (out->rows * out->columns + 1)));
  for (uint64 r = 0; r < out->rows; r++)
    for (int c = 0; c < out->columns; c++)
      out->cells[r * out->columns + c] =
          SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, c + 1);
}

SPIPlanPtr prepare_and_keep(const char* sql) {
  SPIPlanPtr plan = SPI_prepare(sql, 0, nullptr);
  if (plan == nullptr) elog(ERROR, "pg_usher: could not prepare: %s", sql);
  SPI_keepplan(plan);
  return plan;
}

// Plans live for the backend (SPI_keepplan), keyed by the query text's address: the
// callers pass string literals. A plan whose objects change is replanned by
// PostgreSQL's plan cache.
std::unordered_map<const char*, SPIPlanPtr> kept_plans;

}  // namespace

Table query(const char* sql) {
  // Its callers are pg_usher functions whose search_path is pinned already; pinned here
  // too, because a kept plan must never be made under another path.
  InternalScope scope = pg::call([] { return enter_internal(InvalidOid); });
  pg::call([] {
    if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_usher: SPI_connect failed");
  });
  SPIPlanPtr plan = kept_plans[sql];
  if (plan == nullptr) {
    plan = pg::call([&] { return prepare_and_keep(sql); });
    kept_plans[sql] = plan;
  }
  RawResult raw{};
  pg::call([&] { run(plan, &raw); });
  std::vector<std::optional<std::string>> cells;
  cells.reserve(raw.rows * raw.columns);
  for (uint64 i = 0; i < raw.rows * raw.columns; i++)
    cells.emplace_back(raw.cells[i] ? std::optional<std::string>(raw.cells[i]) : std::nullopt);
  pg::call([&] {
    SPI_finish();
    leave_internal(scope);
  });
  return Table(static_cast<size_t>(raw.columns), std::move(cells));
}

}  // namespace usher::spi
