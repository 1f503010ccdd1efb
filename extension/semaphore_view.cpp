// usher.semaphores: one row per semaphore in shared memory (the defined ones, and
// dropped ones still held or waited on), with its holders. Copied under the shared lock
// into palloc'd memory, turned into rows after the lock is released. Plain C frames:
// only the check that pg_usher is preloaded runs in C++ (inside the guard), so no
// PostgreSQL error can unwind through a C++ frame.
#include "semaphore_state.hpp"
#include "sql_function.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

namespace {

using namespace usher::sem;

// The columns of usher.semaphores_internal(), in its declared order.
enum Column {
  col_name, col_capacity, col_held, col_available, col_waiters, col_holders, col_holder_pids, col_peak_held,
  col_acquired_total, col_timeouts_total, col_defined, column_count
};

struct HolderRow {
  int32 semaphore;
  int32 pid;
};

Datum semaphores_view(FunctionCallInfo fcinfo, State* s) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  auto* copy = static_cast<Semaphore*>(palloc(sizeof(Semaphore) * s->capacity));
  auto* holders = static_cast<HolderRow*>(palloc(sizeof(HolderRow) * s->slot_count * holdings_per_backend));
  auto* pids = static_cast<Datum*>(palloc(sizeof(Datum) * (s->slot_count + 1)));
  int holder_count = 0;

  LWLockAcquire(s->lock, LW_SHARED);
  memcpy(copy, s->semaphores, sizeof(Semaphore) * s->capacity);
  for (int i = 0; i < s->slot_count; i++)
    for (const Holding& holding : s->slots[i].holdings)
      if (holding.semaphore != none && holding.permits > 0)
        holders[holder_count++] = {holding.semaphore, ProcGlobal->allProcs[i].pid};
  LWLockRelease(s->lock);

  for (int i = 0; i < s->capacity; i++) {
    const Semaphore& sem = copy[i];
    if (!sem.in_use) continue;
    int n = 0;
    for (int h = 0; h < holder_count; h++)
      if (holders[h].semaphore == i) pids[n++] = Int32GetDatum(holders[h].pid);
    // Ascending pids: a stable order for readers and tests.
    for (int a = 1; a < n; a++)
      for (int b = a; b > 0 && DatumGetInt32(pids[b - 1]) > DatumGetInt32(pids[b]); b--) {
        Datum t = pids[b];
        pids[b] = pids[b - 1];
        pids[b - 1] = t;
      }
    Datum values[column_count];
    bool nulls[column_count] = {};
    values[col_name] = CStringGetTextDatum(sem.name);
    values[col_capacity] = Int32GetDatum(sem.capacity);
    values[col_held] = Int32GetDatum(sem.held);
    values[col_available] = Int32GetDatum(Max(sem.capacity - sem.held, 0));
    values[col_waiters] = Int32GetDatum(sem.waiters);
    values[col_holders] = Int32GetDatum(n);
    values[col_holder_pids] = PointerGetDatum(construct_array(pids, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
    values[col_peak_held] = Int32GetDatum(sem.peak_held);
    values[col_acquired_total] = Int64GetDatum(static_cast<int64>(sem.acquired_total));
    values[col_timeouts_total] = Int64GetDatum(static_cast<int64>(sem.timeouts_total));
    values[col_defined] = BoolGetDatum(sem.listed);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return (Datum)0;
}

}  // namespace

USHER_SQL_FUNCTION_PLAIN(usher_semaphores, State*, require("usher.semaphores")) {
  return semaphores_view(fcinfo, checked);
}
