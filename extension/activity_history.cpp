// usher.activity_history: the sampler's ring buffer, oldest tick first, one row per
// sample and service, with the statements admitted and the busy time since that
// service's previous sample (NULL at its first sample, or after its counters were
// reset). Copied out under the sampler's shared lock, then turned into rows.
#include "sampler.hpp"
#include "shared_state.hpp"
#include "sql_function.hpp"

namespace {

using usher::sampler::Incarnation;
using usher::sampler::Ring;
using usher::sampler::Row;

struct Copy {
  int ticks;  // filled ticks, oldest first from `first`
  int first;
  int capacity;
  int services;
  int incarnation_capacity;
  TimestampTz* tick_at;
  Row* rows;
  Incarnation* incarnations;
};

// Everything is allocated before the lock is taken; under it, only memcpy.
Copy copy_ring(Ring* r) {
  Copy c{};
  c.capacity = r->capacity;
  c.services = r->services;
  c.incarnation_capacity = r->incarnation_capacity;
  c.tick_at = static_cast<TimestampTz*>(palloc(sizeof(TimestampTz) * c.capacity));
  c.rows = static_cast<Row*>(palloc(sizeof(Row) * static_cast<Size>(c.capacity) * c.services));
  c.incarnations = static_cast<Incarnation*>(palloc(sizeof(Incarnation) * c.incarnation_capacity));
  LWLockAcquire(r->lock, LW_SHARED);
  uint64 ticks = r->ticks;
  c.ticks = static_cast<int>(Min(ticks, static_cast<uint64>(c.capacity)));
  c.first = ticks > static_cast<uint64>(c.capacity) ? static_cast<int>(ticks % c.capacity) : 0;
  memcpy(c.tick_at, r->tick_at, sizeof(TimestampTz) * c.capacity);
  memcpy(c.rows, r->rows, sizeof(Row) * static_cast<Size>(c.capacity) * c.services);
  memcpy(c.incarnations, r->incarnations, sizeof(Incarnation) * c.incarnation_capacity);
  LWLockRelease(r->lock);
  return c;
}

// The columns of usher.activity_history, in its declared order.
enum Column { col_sampled_at, col_service, col_connected, col_active, col_queued, col_statements, col_busy_seconds, column_count };

const char* name_of(const Copy& c, uint32 incarnation) {
  const Incarnation& inc = c.incarnations[incarnation % c.incarnation_capacity];
  return inc.id == incarnation ? inc.name : nullptr;
}

Datum activity_history(FunctionCallInfo fcinfo) {
  usher::shm::require("usher.activity_history");
  Ring* r = usher::sampler::ring();
  if (r == nullptr) return (Datum)0;  // not reached: both segments are set up together
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  Copy c = copy_ring(r);
  // The previous sample of each entry, for deltas.
  Row* previous = static_cast<Row*>(palloc0(sizeof(Row) * c.services));
  for (int t = 0; t < c.ticks; t++) {
    int position = (c.first + t) % c.capacity;
    const Row* tick = &c.rows[static_cast<Size>(position) * c.services];
    for (int i = 0; i < c.services; i++) {
      const Row& row = tick[i];
      if (row.incarnation == 0) continue;
      const char* name = name_of(c, row.incarnation);
      bool continues = previous[i].incarnation == row.incarnation;
      uint64 statements = continues ? row.admitted_total - previous[i].admitted_total : 0;
      uint64 busy_us = continues ? row.busy_us_sum - previous[i].busy_us_sum : 0;
      previous[i] = row;
      // An incarnation whose name was overwritten (extreme registry churn) is skipped.
      if (name == nullptr) continue;
      Datum values[column_count];
      bool nulls[column_count] = {};
      values[col_sampled_at] = TimestampTzGetDatum(c.tick_at[position]);
      values[col_service] = CStringGetTextDatum(name);
      values[col_connected] = Int32GetDatum(row.connected);
      values[col_active] = Int32GetDatum(row.active);
      values[col_queued] = Int32GetDatum(row.queued);
      values[col_statements] = Int64GetDatum(static_cast<int64>(statements));
      values[col_busy_seconds] = Float8GetDatum(static_cast<double>(busy_us) / 1e6);
      nulls[col_statements] = nulls[col_busy_seconds] = !continues;
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  }
  return (Datum)0;
}

}  // namespace

USHER_SQL_FUNCTION(usher_activity_history) { return activity_history(fcinfo); }

// The cores usher.pool_advice() plans for, and where the number comes from.
USHER_SQL_FUNCTION(usher_cpu_cores) {
  enum Column { col_cores, col_source, column_count };
  usher::shm::require("usher.pool_advice");
  TupleDesc desc;
  if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
    elog(ERROR, "return type must be a row type");
  const char* source = nullptr;
  Datum values[column_count];
  bool nulls[column_count] = {};
  values[col_cores] = Int32GetDatum(usher::sampler::cpu_cores(&source));
  values[col_source] = CStringGetTextDatum(source);
  return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}
