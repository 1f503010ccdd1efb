// usher.service_status and usher.published_services: what shared memory holds about
// each service, copied out as one snapshot (shared_state.hpp: take_snapshot), then
// turned into rows.
#include "shared_state.hpp"
#include "sql_function.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

namespace {

using usher::shm::Service;
using usher::shm::ServiceCopy;

// The columns of usher.service_status_internal, in declaration order.
enum StatusColumn {
  st_service, st_listed, st_enabled, st_max_connections, st_reserved_connections, st_max_active, st_current,
  st_current_superusers, st_peak, st_reserved_in_use, st_admitted_total, st_rejected_quota_total,
  st_rejected_reservation_total, st_rejected_total, st_active, st_queued, st_peak_active,
  st_statements_admitted_total, st_statements_waited_total, st_queue_timeouts_total, st_queue_cancels_total,
  st_wait_seconds_sum, st_wait_seconds_max, st_busy_seconds_sum,
  // 1.1.0
  st_rejected_full_total, st_gate_mode, st_statements_past_limit_total, status_columns
};

// The columns of usher.published_services_internal.
enum PublishedColumn {
  pub_name, pub_max_connections, pub_reserved_connections, pub_max_active, pub_queue_timeout, pub_priority,
  pub_enabled, pub_roles, pub_published_at,
  // 1.1.0
  pub_gate_mode, published_columns
};

// Allocated before the lock is taken; under it (shared_state.cpp), only memcpy and
// counting.
usher::shm::Snapshot* snapshot_of(usher::shm::State* s) {
  usher::shm::Snapshot* snapshot = usher::shm::new_snapshot(s, CurrentMemoryContext, false);
  usher::shm::take_snapshot(s, snapshot);
  return snapshot;
}

const char* gate_mode_name(usher::shm::GateMode mode) {
  return mode == usher::shm::GateMode::transaction ? "transaction" : "statement";
}

// A server may run this module before ALTER EXTENSION pg_usher UPDATE has added the
// newer columns to the SQL declaration: rows carry only the declared columns.
void put_row(ReturnSetInfo* rsinfo, Datum* values, bool* nulls, int filled) {
  if (rsinfo->setDesc->natts > filled)
    ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                    errmsg("pg_usher: the SQL declaration has %d columns, this module knows %d",
                           rsinfo->setDesc->natts, filled),
                    errhint("Install the pg_usher module that matches the extension's version.")));
  tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

Datum interval_ms(int32 ms) {
  auto* value = static_cast<Interval*>(palloc0(sizeof(Interval)));
  value->time = static_cast<int64>(ms) * 1000;
  return IntervalPGetDatum(value);
}

// The columns both views have: the service's name, whether it is enforced, its limits.
struct SharedColumns {
  int name, enabled, max_connections, reserved_connections, max_active;
};
constexpr SharedColumns status_shared{st_service, st_enabled, st_max_connections, st_reserved_connections,
                                      st_max_active};
constexpr SharedColumns published_shared{pub_name, pub_enabled, pub_max_connections, pub_reserved_connections,
                                         pub_max_active};

void put_shared(Datum* values, const Service& sv, const SharedColumns& c) {
  values[c.name] = CStringGetTextDatum(sv.name);
  values[c.enabled] = BoolGetDatum(sv.enabled);
  values[c.max_connections] = Int32GetDatum(sv.max_connections);
  values[c.reserved_connections] = Int32GetDatum(sv.reserved_connections);
  values[c.max_active] = Int32GetDatum(sv.max_active);
}

Datum count(pg_atomic_uint64& value) { return Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&value))); }
Datum seconds(pg_atomic_uint64& value) {
  return Float8GetDatum(static_cast<double>(pg_atomic_read_u64(&value)) / 1e6);
}
Datum gauge(pg_atomic_uint32& value) { return Int32GetDatum(static_cast<int32>(pg_atomic_read_u32(&value))); }

Datum service_status(FunctionCallInfo fcinfo, usher::shm::State* s) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  usher::shm::Snapshot* snapshot = snapshot_of(s);
  for (int i = 0; i < snapshot->service_count; i++) {
    ServiceCopy& copy = snapshot->services[i];
    Service& sv = copy.service;
    usher::shm::Gate& g = sv.gate;
    Datum values[status_columns];
    bool nulls[status_columns] = {};
    put_shared(values, sv, status_shared);
    values[st_listed] = BoolGetDatum(sv.listed);
    values[st_current] = Int32GetDatum(copy.sessions);
    values[st_current_superusers] = Int32GetDatum(copy.superusers);
    values[st_peak] = Int32GetDatum(sv.peak);
    values[st_reserved_in_use] = Int32GetDatum(Min(copy.sessions, sv.reserved_connections));
    values[st_admitted_total] = Int64GetDatum(static_cast<int64>(sv.admitted_total));
    values[st_rejected_quota_total] = Int64GetDatum(static_cast<int64>(sv.rejected_quota_total));
    values[st_rejected_reservation_total] = Int64GetDatum(static_cast<int64>(sv.rejected_reservation_total));
    values[st_rejected_total] = Int64GetDatum(
        static_cast<int64>(sv.rejected_quota_total + sv.rejected_reservation_total + sv.rejected_full_total));
    // The statement gate.
    values[st_active] = gauge(g.active);
    values[st_queued] = gauge(g.queued);
    values[st_peak_active] = gauge(g.peak_active);
    values[st_statements_admitted_total] = count(g.admitted_total);
    values[st_statements_waited_total] = count(g.waited_total);
    values[st_queue_timeouts_total] = count(g.queue_timeouts_total);
    values[st_queue_cancels_total] = count(g.queue_cancels_total);
    values[st_wait_seconds_sum] = seconds(g.wait_us_sum);
    values[st_wait_seconds_max] = seconds(g.wait_us_max);
    values[st_busy_seconds_sum] = seconds(g.busy_us_sum);
    values[st_rejected_full_total] = Int64GetDatum(static_cast<int64>(sv.rejected_full_total));
    values[st_gate_mode] = CStringGetTextDatum(gate_mode_name(sv.gate_mode));
    values[st_statements_past_limit_total] = count(g.past_limit_total);
    put_row(rsinfo, values, nulls, status_columns);
  }
  return (Datum)0;
}

// The services of the published registry: the visible ones that are listed.
Datum published_services(FunctionCallInfo fcinfo, usher::shm::State* s) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  usher::shm::Snapshot* snapshot = snapshot_of(s);
  for (int i = 0; i < snapshot->service_count; i++) {
    const ServiceCopy& copy = snapshot->services[i];
    const Service& sv = copy.service;
    if (!sv.listed) continue;
    Datum values[published_columns];
    bool nulls[published_columns] = {};
    put_shared(values, sv, published_shared);
    values[pub_queue_timeout] = interval_ms(sv.queue_timeout_ms);
    values[pub_priority] = Int32GetDatum(sv.priority);
    int mapped = 0;
    Datum* roles = static_cast<Datum*>(palloc(sizeof(Datum) * (snapshot->role_count + 1)));
    for (int r = 0; r < snapshot->role_count; r++)
      if (snapshot->roles[r].service == copy.entry) roles[mapped++] = CStringGetTextDatum(snapshot->roles[r].role);
    values[pub_roles] = PointerGetDatum(construct_array(roles, mapped, TEXTOID, -1, false, TYPALIGN_INT));
    if (snapshot->published) values[pub_published_at] = TimestampTzGetDatum(snapshot->published_at);
    else nulls[pub_published_at] = true;
    values[pub_gate_mode] = CStringGetTextDatum(gate_mode_name(sv.gate_mode));
    put_row(rsinfo, values, nulls, published_columns);
  }
  return (Datum)0;
}

}  // namespace

// Plain C frames: only the check that pg_usher is preloaded runs in C++, inside the
// guard; copying shared memory and building rows call PostgreSQL (palloc, LWLockAcquire,
// the tuplestore), whose errors then unwind no C++ frame.
USHER_SQL_FUNCTION_PLAIN(usher_service_status, usher::shm::State*, usher::shm::require("usher.service_status")) {
  return service_status(fcinfo, checked);
}

USHER_SQL_FUNCTION_PLAIN(usher_published_services, usher::shm::State*,
                         usher::shm::require("usher.published_services")) {
  return published_services(fcinfo, checked);
}
