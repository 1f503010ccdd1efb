// usher.backends: one row per client backend, read straight from the backend status
// array (the snapshot pg_stat_activity reads too), with the service it belongs to,
// ages as intervals, its wait event and, for lock waits only, who blocks it.
// usher.health_sessions_internal(): the same sessions for usher.health(), narrowed to
// the ones a health check can report on, so that health() builds no row per idle session.
#include "common/service_name.hpp"  // common/ before any PostgreSQL header (common/pure_cpp.hpp)

#include "backend_status.hpp"
#include "shared_state.hpp"
#include "sql_function.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/ip.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
}

namespace {

enum Column {
  col_pid, col_service, col_service_enforced, col_database, col_role, col_client_addr, col_client_port,
  col_application_name, col_state, col_backend_age, col_xact_age, col_query_age,
  col_state_age, col_wait_event_type, col_wait_event, col_blocking_pids, col_query,
  col_lease_holder, col_lease_age, col_admission_state, col_queued_since, column_count
};

// Wait events live in PGPROC, not in the status array. Looking each pid up with
// BackendPidGetProc costs a scan of the proc array per row (what pg_stat_activity
// does); one pass that collects every proc's (pid, wait_event_info), sorted, makes it
// a binary search. Reads are unlocked, as PostgreSQL's own reads of wait_event_info.
struct ProcWait {
  int pid;
  uint32 wait_event_info;
  int proc_index;  // also the index of the backend's pg_usher slot
};

int compare_pid(const void* a, const void* b) {
  int pa = static_cast<const ProcWait*>(a)->pid, pb = static_cast<const ProcWait*>(b)->pid;
  return (pa > pb) - (pa < pb);
}

ProcWait* collect_waits(uint32* count) {
  uint32 total = ProcGlobal->allProcCount;
  auto* waits = static_cast<ProcWait*>(palloc(sizeof(ProcWait) * (total + 1)));
  uint32 n = 0;
  for (uint32 i = 0; i < total; i++) {
    volatile PGPROC* proc = &ProcGlobal->allProcs[i];
    int pid = proc->pid;
    if (pid == 0) continue;
    waits[n].pid = pid;
    waits[n].wait_event_info = proc->wait_event_info;
    waits[n].proc_index = static_cast<int>(i);
    n++;
  }
  qsort(waits, n, sizeof(ProcWait), compare_pid);
  *count = n;
  return waits;
}

const ProcWait* proc_of(const ProcWait* waits, uint32 count, int pid) {
  ProcWait key{pid, 0, -1};
  return static_cast<const ProcWait*>(bsearch(&key, waits, count, sizeof(ProcWait), compare_pid));
}

const char* state_name(BackendState state) {
  switch (state) {
    case STATE_IDLE: return "idle";
    case STATE_RUNNING: return "active";
    case STATE_IDLEINTRANSACTION: return "idle in transaction";
    case STATE_FASTPATH: return "fastpath function call";
    case STATE_IDLEINTRANSACTION_ABORTED: return "idle in transaction (aborted)";
    case STATE_DISABLED: return "disabled";
    default: return nullptr;
  }
}

// An age as an interval; NULL when the start time is unset.
bool set_age(Datum* value, TimestampTz start, TimestampTz now) {
  if (start == 0) return false;
  auto* age = static_cast<Interval*>(palloc0(sizeof(Interval)));
  age->time = now > start ? now - start : 0;
  *value = IntervalPGetDatum(age);
  return true;
}

// The service each backend slot was admitted under and its place at the gates, from
// one snapshot of shared state (nullptr without shared memory: the columns are then
// NULL).
usher::shm::Snapshot* copy_enforced_services() {
  usher::shm::State* s = usher::shm::state();
  if (s == nullptr) return nullptr;
  usher::shm::Snapshot* snapshot = usher::shm::new_snapshot(s, CurrentMemoryContext, true);
  usher::shm::take_snapshot(s, snapshot);
  return snapshot;
}

// The lease on a backend slot (usher.checkout), copied under its spinlock; an empty
// holder without shared memory or outside the slots.
struct Lease {
  char holder[usher::shm::holder_bytes + 1];
  TimestampTz since;
};

Lease read_lease(int proc_index) {
  Lease lease{};
  usher::shm::State* s = usher::shm::state();
  if (s == nullptr || proc_index < 0 || proc_index >= s->slot_count) return lease;
  usher::shm::BackendSlot* slot = usher::shm::slot_at(s, proc_index);
  SpinLockAcquire(&slot->lease_mutex);
  memcpy(lease.holder, slot->lease_holder, sizeof lease.holder);
  lease.since = slot->lease_start;
  SpinLockRelease(&slot->lease_mutex);
  return lease;
}

void set_lease_columns(Datum* values, bool* nulls, const Lease& lease, int holder_column,
                       int age_column, TimestampTz now) {
  if (lease.holder[0] == '\0') return;
  values[holder_column] = CStringGetTextDatum(lease.holder);
  nulls[holder_column] = false;
  nulls[age_column] = !set_age(&values[age_column], lease.since, now);
}

void set_admission_columns(Datum* values, bool* nulls, usher::shm::Snapshot* e, int proc_index, TimestampTz now) {
  if (e == nullptr || proc_index < 0 || proc_index >= e->slot_count) return;
  const usher::shm::SlotCopy& admission = e->slots[proc_index];
  if (const usher::shm::ServiceCopy* service = usher::shm::snapshot_service(e, admission.service)) {
    values[col_service_enforced] = CStringGetTextDatum(service->service.name);
    nulls[col_service_enforced] = false;
  }
  if (admission.gate_state != usher::shm::GateState::none) {
    bool queued = admission.gate_state == usher::shm::GateState::queued;
    values[col_admission_state] = CStringGetTextDatum(queued ? "queued" : "active");
    nulls[col_admission_state] = false;
    if (queued) {
      values[col_queued_since] = TimestampTzGetDatum(admission.gate_since);
      nulls[col_queued_since] = false;
    }
  }
  set_lease_columns(values, nulls, read_lease(proc_index), col_lease_holder, col_lease_age, now);
}

// Client address and port as pg_stat_activity shows them: NULL for Unix sockets.
void set_client_address(Datum* values, bool* nulls, const SockAddr* client) {
  int family = client->addr.ss_family;
  if (family != AF_INET && family != AF_INET6) return;
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (pg_getnameinfo_all(&client->addr, client->salen, host, sizeof host, port, sizeof port,
                         NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return;
  clean_ipv6_addr(family, host);
  values[col_client_addr] = DirectFunctionCall1(inet_in, CStringGetDatum(host));
  values[col_client_port] = Int32GetDatum(atoi(port));
  nulls[col_client_addr] = nulls[col_client_port] = false;
}

// `name` columns are fixed-width: the tuplestore copies NAMEDATALEN bytes.
Datum name_datum(const char* text) {
  auto* name = static_cast<NameData*>(palloc0(NAMEDATALEN));
  namestrcpy(name, text);
  return NameGetDatum(name);
}

// The columns both functions show the same way: service (from application_name), role,
// state, state and transaction ages, wait event type. Indexes of the caller's columns.
struct SessionColumns {
  int service, role, state, xact_age, state_age, wait_event_type;
};

void set_session_columns(Datum* values, bool* nulls, const SessionColumns& col,
                         const PgBackendStatus* be, uint32 wait, TimestampTz now) {
  auto service = usher::service_of_application(be->st_appname ? be->st_appname : "");
  values[col.service] = PointerGetDatum(cstring_to_text_with_len(service.data(), service.size()));
  nulls[col.service] = false;
  if (char* role = GetUserNameFromId(be->st_userid, true)) {
    values[col.role] = name_datum(role);
    nulls[col.role] = false;
  }
  if (const char* state = state_name(be->st_state)) {
    values[col.state] = CStringGetTextDatum(state);
    nulls[col.state] = false;
  }
  nulls[col.xact_age] = !set_age(&values[col.xact_age], be->st_xact_start_timestamp, now);
  nulls[col.state_age] = !set_age(&values[col.state_age], be->st_state_start_timestamp, now);
  if (const char* type = pgstat_get_wait_event_type(wait)) {
    values[col.wait_event_type] = CStringGetTextDatum(type);
    nulls[col.wait_event_type] = false;
  }
}

bool waits_for_lock(uint32 wait_event_info) { return (wait_event_info & 0xFF000000) == PG_WAIT_LOCK; }

Datum blocking_pids(int pid, uint32 wait_event_info) {
  if (waits_for_lock(wait_event_info))
    return DirectFunctionCall1(pg_blocking_pids, Int32GetDatum(pid));
  return PointerGetDatum(construct_empty_array(INT4OID));
}

constexpr SessionColumns backend_session_columns{col_service, col_role, col_state, col_xact_age,
                                                  col_state_age, col_wait_event_type};

Datum list_backends(FunctionCallInfo fcinfo) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  TimestampTz now = GetCurrentTimestamp();
  bool reads_all_stats = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
  uint32 wait_count;
  ProcWait* waits = collect_waits(&wait_count);
  usher::shm::Snapshot* enforced = copy_enforced_services();

  int backend_count = pgstat_fetch_stat_numbackends();
  for (int i = 1; i <= backend_count; i++) {
    LocalPgBackendStatus* local = usher::pg::local_backend_status(i);
    if (local == nullptr) continue;
    PgBackendStatus* be = &local->backendStatus;
    if (be->st_backendType != B_BACKEND || be->st_procpid <= 0) continue;

    Datum values[column_count];
    bool nulls[column_count];
    for (int c = 0; c < column_count; c++) nulls[c] = true;

    values[col_pid] = Int32GetDatum(be->st_procpid);
    values[col_application_name] = CStringGetTextDatum(be->st_appname ? be->st_appname : "");
    nulls[col_pid] = nulls[col_application_name] = false;

    if (char* db = get_database_name(be->st_databaseid)) {
      values[col_database] = name_datum(db);
      nulls[col_database] = false;
    }
    nulls[col_backend_age] = !set_age(&values[col_backend_age], be->st_proc_start_timestamp, now);
    nulls[col_query_age] = !set_age(&values[col_query_age], be->st_activity_start_timestamp, now);

    const ProcWait* proc = proc_of(waits, wait_count, be->st_procpid);
    uint32 wait = proc ? proc->wait_event_info : 0;
    set_session_columns(values, nulls, backend_session_columns, be, wait, now);
    set_admission_columns(values, nulls, enforced, proc ? proc->proc_index : -1, now);
    if (const char* event = pgstat_get_wait_event(wait)) {
      values[col_wait_event] = CStringGetTextDatum(event);
      nulls[col_wait_event] = false;
    }
    values[col_blocking_pids] = blocking_pids(be->st_procpid, wait);
    nulls[col_blocking_pids] = false;

    // Query text and client address follow pg_stat_activity's rule: your own
    // role's sessions, or pg_read_all_stats (which pg_monitor includes).
    if (reads_all_stats || has_privs_of_role(GetUserId(), be->st_userid)) {
      set_client_address(values, nulls, &be->st_clientaddr);
      values[col_query] = CStringGetTextDatum(pgstat_clip_activity(be->st_activity_raw));
      nulls[col_query] = false;
    }
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return (Datum)0;
}

// usher.health_sessions_internal(): the client backends other than the caller's that a
// per-session check of usher.health() can report on -- idle in a transaction (aborted
// or not), in a transaction, waiting for a lock, or lent (usher.checkout) -- one row
// each (sessions = 1); the rest, which no check names, in one row with pid NULL and
// sessions = how many they are. So health() counts every session (sum(sessions)) but
// builds rows only for the ones it may report, not one per idle connection.
enum HealthColumn {
  hcol_sessions, hcol_pid, hcol_service, hcol_role, hcol_state, hcol_state_age, hcol_xact_age,
  hcol_wait_event_type, hcol_lease_holder, hcol_lease_age, health_column_count
};
constexpr SessionColumns health_session_columns{hcol_service, hcol_role, hcol_state, hcol_xact_age,
                                                 hcol_state_age, hcol_wait_event_type};

bool reported_by_a_check(const PgBackendStatus* be, uint32 wait, const Lease& lease) {
  return be->st_state == STATE_IDLEINTRANSACTION || be->st_state == STATE_IDLEINTRANSACTION_ABORTED ||
         be->st_xact_start_timestamp != 0 || waits_for_lock(wait) || lease.holder[0] != '\0';
}

Datum list_health_sessions(FunctionCallInfo fcinfo) {
  ReturnSetInfo* rsinfo = usher::pg::begin_materialized_srf(fcinfo);
  TimestampTz now = GetCurrentTimestamp();
  uint32 wait_count;
  ProcWait* waits = collect_waits(&wait_count);
  int32 others = 0;

  // Read in place, slot by slot (backend_status.hpp): the snapshot every other reader
  // takes copies every session's strings, and was 91 % of this function's time.
  int slots = 0;
  const PgBackendStatus* shared = usher::pg::shared_backend_status(&slots);
  int backend_count = shared ? slots : pgstat_fetch_stat_numbackends();
  usher::pg::SessionStatus copy;
  for (int i = 1; i <= backend_count; i++) {
    const PgBackendStatus* be;
    if (shared) {
      if (!usher::pg::read_session_status(shared, i - 1, &copy)) continue;
      be = &copy.status;
    } else {
      LocalPgBackendStatus* local = usher::pg::local_backend_status(i);
      if (local == nullptr) continue;
      be = &local->backendStatus;
    }
    if (be->st_backendType != B_BACKEND || be->st_procpid <= 0 || be->st_procpid == MyProcPid) continue;

    const ProcWait* proc = proc_of(waits, wait_count, be->st_procpid);
    uint32 wait = proc ? proc->wait_event_info : 0;
    Lease lease = read_lease(proc ? proc->proc_index : -1);
    if (!reported_by_a_check(be, wait, lease)) {
      others++;
      continue;
    }
    Datum values[health_column_count];
    bool nulls[health_column_count];
    for (int c = 0; c < health_column_count; c++) nulls[c] = true;
    values[hcol_sessions] = Int32GetDatum(1);
    values[hcol_pid] = Int32GetDatum(be->st_procpid);
    nulls[hcol_sessions] = nulls[hcol_pid] = false;
    set_session_columns(values, nulls, health_session_columns, be, wait, now);
    set_lease_columns(values, nulls, lease, hcol_lease_holder, hcol_lease_age, now);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  if (others > 0) {
    Datum values[health_column_count] = {};
    bool nulls[health_column_count];
    for (int c = 0; c < health_column_count; c++) nulls[c] = c != hcol_sessions;
    values[hcol_sessions] = Int32GetDatum(others);
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return (Datum)0;
}

}  // namespace

USHER_SQL_FUNCTION(usher_backends) { return list_backends(fcinfo); }

USHER_SQL_FUNCTION(usher_health_sessions) { return list_health_sessions(fcinfo); }
