// usher.service_status and usher.published_services: what shared memory holds about
// each service, copied out under the shared lock, then turned into rows.
#include "shared_state.hpp"
#include "sql_function.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "utils/array.h"
}

namespace {

using usher::shm::Service;

struct Copy {
  int count;
  Service* services;
  int32* sessions;
  int32* superusers;
  bool published;
  TimestampTz published_at;
  int role_count;
  usher::shm::RoleMapping* roles;
};

// Everything is allocated before the lock is taken; under it, only memcpy and counting.
Copy copy_state(usher::shm::State* s) {
  Copy c{};
  c.services = static_cast<Service*>(palloc(sizeof(Service) * s->service_capacity));
  c.sessions = static_cast<int32*>(palloc0(sizeof(int32) * s->service_capacity));
  c.superusers = static_cast<int32*>(palloc0(sizeof(int32) * s->service_capacity));
  c.roles = static_cast<usher::shm::RoleMapping*>(palloc(sizeof(usher::shm::RoleMapping) * (s->role_mapping_capacity + 1)));
  LWLockAcquire(s->lock, LW_SHARED);
  c.count = s->service_capacity;
  memcpy(c.services, s->services, sizeof(Service) * s->service_capacity);
  usher::shm::count_sessions(s, c.sessions);
  for (int i = 0; i < s->slot_count; i++)
    if (s->slots[i].service >= 0 && s->slots[i].superuser) c.superusers[s->slots[i].service]++;
  c.published = s->published;
  c.published_at = s->published_at;
  c.role_count = s->role_mapping_count;
  memcpy(c.roles, s->role_mappings, sizeof(usher::shm::RoleMapping) * s->role_mapping_count);
  LWLockRelease(s->lock);
  return c;
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

Datum service_status(FunctionCallInfo fcinfo, usher::shm::State* s) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  Copy c = copy_state(s);
  for (int i = 0; i < c.count; i++) {
    const Service& sv = c.services[i];
    // Retired entries stay while sessions still count under them.
    if (!sv.in_use || (!sv.listed && c.sessions[i] == 0)) continue;
    Datum values[27];
    bool nulls[27] = {};
    values[0] = CStringGetTextDatum(sv.name);
    values[1] = BoolGetDatum(sv.listed);
    values[2] = BoolGetDatum(sv.enabled);
    values[3] = Int32GetDatum(sv.max_connections);
    values[4] = Int32GetDatum(sv.reserved_connections);
    values[5] = Int32GetDatum(sv.max_active);
    values[6] = Int32GetDatum(c.sessions[i]);
    values[7] = Int32GetDatum(c.superusers[i]);
    values[8] = Int32GetDatum(sv.peak);
    values[9] = Int32GetDatum(Min(c.sessions[i], sv.reserved_connections));
    values[10] = Int64GetDatum(static_cast<int64>(sv.admitted_total));
    values[11] = Int64GetDatum(static_cast<int64>(sv.rejected_quota_total));
    values[12] = Int64GetDatum(static_cast<int64>(sv.rejected_reservation_total));
    values[13] = Int64GetDatum(
        static_cast<int64>(sv.rejected_quota_total + sv.rejected_reservation_total + sv.rejected_full_total));
    // The statement gate.
    usher::shm::Gate& g = c.services[i].gate;
    auto count = [](pg_atomic_uint64& v) { return Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&v))); };
    auto seconds = [](pg_atomic_uint64& v) { return Float8GetDatum(static_cast<double>(pg_atomic_read_u64(&v)) / 1e6); };
    values[14] = Int32GetDatum(static_cast<int32>(pg_atomic_read_u32(&g.active)));
    values[15] = Int32GetDatum(static_cast<int32>(pg_atomic_read_u32(&g.queued)));
    values[16] = Int32GetDatum(static_cast<int32>(pg_atomic_read_u32(&g.peak_active)));
    values[17] = count(g.admitted_total);
    values[18] = count(g.waited_total);
    values[19] = count(g.queue_timeouts_total);
    values[20] = count(g.queue_cancels_total);
    values[21] = seconds(g.wait_us_sum);
    values[22] = seconds(g.wait_us_max);
    values[23] = seconds(g.busy_us_sum);
    // 1.1.0
    values[24] = Int64GetDatum(static_cast<int64>(sv.rejected_full_total));
    values[25] = CStringGetTextDatum(gate_mode_name(sv.gate_mode));
    values[26] = count(g.past_limit_total);
    put_row(rsinfo, values, nulls, 27);
  }
  return (Datum)0;
}

Datum published_services(FunctionCallInfo fcinfo, usher::shm::State* s) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  Copy c = copy_state(s);
  for (int i = 0; i < c.count; i++) {
    const Service& sv = c.services[i];
    if (!sv.in_use || !sv.listed) continue;
    Datum values[10];
    bool nulls[10] = {};
    values[0] = CStringGetTextDatum(sv.name);
    values[1] = Int32GetDatum(sv.max_connections);
    values[2] = Int32GetDatum(sv.reserved_connections);
    values[3] = Int32GetDatum(sv.max_active);
    values[4] = interval_ms(sv.queue_timeout_ms);
    values[5] = Int32GetDatum(sv.priority);
    values[6] = BoolGetDatum(sv.enabled);
    int mapped = 0;
    Datum* roles = static_cast<Datum*>(palloc(sizeof(Datum) * (c.role_count + 1)));
    for (int r = 0; r < c.role_count; r++)
      if (c.roles[r].service == i) roles[mapped++] = CStringGetTextDatum(c.roles[r].role);
    values[7] = PointerGetDatum(construct_array(roles, mapped, TEXTOID, -1, false, TYPALIGN_INT));
    if (c.published) values[8] = TimestampTzGetDatum(c.published_at);
    else nulls[8] = true;
    // 1.1.0
    values[9] = CStringGetTextDatum(gate_mode_name(sv.gate_mode));
    put_row(rsinfo, values, nulls, 10);
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
