// usher.semaphores: one row per semaphore in shared memory (the defined ones, and
// dropped ones still held or waited on), with its holders. Copied under the shared lock
// into palloc'd memory, turned into rows after the lock is released. Plain C frames:
// only the check that pg_usher is preloaded runs in C++ (inside the guard), so no
// PostgreSQL error can unwind through a C++ frame.
#include "guard.hpp"
#include "semaphore_state.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

namespace {

using namespace usher::sem;

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
    Datum values[11];
    bool nulls[11] = {};
    values[0] = CStringGetTextDatum(sem.name);
    values[1] = Int32GetDatum(sem.capacity);
    values[2] = Int32GetDatum(sem.held);
    values[3] = Int32GetDatum(Max(sem.capacity - sem.held, 0));
    values[4] = Int32GetDatum(sem.waiters);
    values[5] = Int32GetDatum(n);
    values[6] = PointerGetDatum(construct_array(pids, n, INT4OID, sizeof(int32), true, TYPALIGN_INT));
    values[7] = Int32GetDatum(sem.peak_held);
    values[8] = Int64GetDatum(static_cast<int64>(sem.acquired_total));
    values[9] = Int64GetDatum(static_cast<int64>(sem.timeouts_total));
    values[10] = BoolGetDatum(sem.listed);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return (Datum)0;
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(usher_semaphores);
Datum usher_semaphores(PG_FUNCTION_ARGS) {
  State* s = usher::guard([] { return require("usher.semaphores"); });
  return semaphores_view(fcinfo, s);
}
}
