#include "registry.hpp"

#include <string>

#include "admission.hpp"
#include "gate.hpp"
#include "guard.hpp"
#include "publish_on_commit.hpp"
#include "settings.hpp"
#include "shared_state.hpp"
#include "spi.hpp"
#include "sql_function.hpp"

extern "C" {
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

namespace usher::registry {

namespace {

constexpr const char* services_sql =
    "SELECT name, max_connections, reserved_connections, max_active, "
    "(extract(epoch FROM queue_timeout) * 1000::numeric)::int4, priority, enabled, "
    // gate_mode came with 1.1.0: read through the row's JSON, so that a server running
    // this module before ALTER EXTENSION pg_usher UPDATE reads NULL, not an error.
    "pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.->>) 'gate_mode'::pg_catalog.text "
    "FROM usher.service s ORDER BY name";
constexpr const char* roles_sql = "SELECT role_name::text, service FROM usher.role_service ORDER BY 1";

// Runs a read-only query with the given snapshot; the rows stay in SPI_tuptable.
void run(const char* sql, ::Snapshot snapshot) {
  SPIPlanPtr plan = SPI_prepare(sql, 0, nullptr);
  if (plan == nullptr) elog(ERROR, "pg_usher: could not prepare %s", sql);
  if (SPI_execute_snapshot(plan, nullptr, nullptr, snapshot, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
    elog(ERROR, "pg_usher: could not read the registry: %s", sql);
}

int32 int_column(HeapTuple tuple, TupleDesc desc, int column) {
  bool isnull;
  Datum value = SPI_getbinval(tuple, desc, column, &isnull);
  return isnull ? 0 : DatumGetInt32(value);
}

void text_column(char* to, HeapTuple tuple, TupleDesc desc, int column) {
  char* value = SPI_getvalue(tuple, desc, column);
  strlcpy(to, value ? value : "", NAMEDATALEN);
}

object_access_hook_type previous_object_access_hook = nullptr;

// The scratch buffer publish() counts sessions into, allocated with the registry (before
// commit) because publish() runs at commit, where no allocation may fail.
int32* counts_buffer() {
  shm::State* s = shm::state();
  return static_cast<int32*>(
      MemoryContextAllocZero(TopMemoryContext, sizeof(int32) * (s != nullptr ? s->service_capacity : 1)));
}

Registry* empty_registry() {
  auto* registry = static_cast<Registry*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Registry)));
  registry->services = static_cast<ServiceRow*>(MemoryContextAllocZero(TopMemoryContext, sizeof(ServiceRow)));
  registry->roles = static_cast<RoleRow*>(MemoryContextAllocZero(TopMemoryContext, sizeof(RoleRow)));
  registry->counts = counts_buffer();
  return registry;
}

// An entry for a service that is not in shared memory yet: a free entry, else one of a
// service no longer listed and with no session counted under it (its counters reset).
int allocate_service(shm::State* s, const int32* counts) {
  for (int i = 0; i < s->service_capacity; i++)
    if (!s->services[i].in_use) return i;
  for (int i = 0; i < s->service_capacity; i++)
    if (!s->services[i].listed && counts[i] == 0 && i != shm::default_service_index) return i;
  return -1;
}

}  // namespace

Registry* read(::Snapshot snapshot) {
  MemoryContext caller = CurrentMemoryContext;
  // As the registry's owner, whoever committed (a role granted EXECUTE on set_service
  // has no rights on the tables), with search_path pinned (spi.hpp).
  spi::InternalScope scope = spi::enter_internal(spi::owner_of_usher_table("service"));
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_usher: SPI_connect failed");
  auto* registry = static_cast<Registry*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Registry)));
  registry->counts = counts_buffer();

  run(services_sql, snapshot);
  registry->service_count = static_cast<int>(SPI_processed);
  registry->services = static_cast<ServiceRow*>(
      MemoryContextAllocZero(TopMemoryContext, sizeof(ServiceRow) * (SPI_processed + 1)));
  for (uint64 r = 0; r < SPI_processed; r++) {
    HeapTuple tuple = SPI_tuptable->vals[r];
    TupleDesc desc = SPI_tuptable->tupdesc;
    ServiceRow* row = &registry->services[r];
    text_column(row->name, tuple, desc, 1);
    row->max_connections = int_column(tuple, desc, 2);
    row->reserved_connections = int_column(tuple, desc, 3);
    row->max_active = int_column(tuple, desc, 4);
    row->queue_timeout_ms = int_column(tuple, desc, 5);
    row->priority = int_column(tuple, desc, 6);
    bool isnull;
    row->enabled = DatumGetBool(SPI_getbinval(tuple, desc, 7, &isnull)) && !isnull;
    char* gate_mode = SPI_getvalue(tuple, desc, 8);
    row->gate_mode = gate_mode != nullptr && strcmp(gate_mode, "transaction") == 0 ? shm::GateMode::transaction
                                                                                    : shm::GateMode::statement;
  }

  run(roles_sql, snapshot);
  registry->role_count = static_cast<int>(SPI_processed);
  registry->roles = static_cast<RoleRow*>(
      MemoryContextAllocZero(TopMemoryContext, sizeof(RoleRow) * (SPI_processed + 1)));
  for (uint64 r = 0; r < SPI_processed; r++) {
    text_column(registry->roles[r].role, SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);
    text_column(registry->roles[r].service, SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
  }
  SPI_finish();
  spi::leave_internal(scope);
  MemoryContextSwitchTo(caller);
  return registry;
}

int publish(const Registry* registry) {
  shm::State* s = shm::state();
  if (s == nullptr) return 0;
  // Counts are needed to know which retired entries may be reused: a buffer allocated
  // with the registry, before commit (this runs at commit, where nothing may fail).
  int32* counts = registry->counts;
  int skipped = 0;

  LWLockAcquire(s->lock, LW_EXCLUSIVE);
  shm::count_sessions(s, counts);
  for (int i = 0; i < s->service_capacity; i++) s->services[i].listed = false;
  s->services[shm::default_service_index].listed = true;
  s->services[shm::default_service_index].enabled = true;

  for (int r = 0; r < registry->service_count; r++) {
    const ServiceRow* row = &registry->services[r];
    int index = shm::find_service(s, row->name);
    if (index < 0) {
      index = allocate_service(s, counts);
      if (index < 0) {
        skipped++;
        continue;
      }
      memset(&s->services[index], 0, sizeof(shm::Service));
      shm::init_gate(&s->services[index].gate);
      s->services[index].in_use = true;
      strlcpy(s->services[index].name, row->name, NAMEDATALEN);
    }
    shm::Service* service = &s->services[index];
    service->listed = true;
    service->enabled = row->enabled || index == shm::default_service_index;
    service->max_connections = row->max_connections;
    service->reserved_connections = row->reserved_connections;
    service->max_active = row->max_active;
    service->queue_timeout_ms = row->queue_timeout_ms;
    service->priority = row->priority;
    service->gate_mode = row->gate_mode;
  }

  s->role_mapping_count = 0;
  for (int r = 0; r < registry->role_count && s->role_mapping_count < s->role_mapping_capacity; r++) {
    int index = shm::find_service(s, registry->roles[r].service);
    if (index < 0 || !s->services[index].listed) continue;
    shm::RoleMapping* mapping = &s->role_mappings[s->role_mapping_count++];
    strlcpy(mapping->role, registry->roles[r].role, NAMEDATALEN);
    mapping->service = index;
  }
  admission::settle_provisional(s, counts);
  s->published = true;
  s->published_at = GetCurrentTimestamp();
  s->publications++;
  LWLockRelease(s->lock);
  // A raised (or removed) max_active frees slots for statements already waiting.
  for (int i = 0; i < s->service_capacity; i++)
    if (s->services[i].in_use) gate::admit_waiters(s, i);
  return skipped;
}

void free_registry(Registry* registry) {
  if (registry == nullptr) return;
  pfree(registry->services);
  pfree(registry->roles);
  pfree(registry->counts);
  pfree(registry);
}

namespace {

// Published when a transaction that changed the registry commits (usher.set_service,
// drop_service and set_role_service lock usher.service, which serialises writers).
PublishOnCommit publication{
    .attached = [] { return shm::state() != nullptr; },
    .read = [](::Snapshot snapshot) -> void* { return read(snapshot); },
    .empty = []() -> void* { return empty_registry(); },
    .publish = [](const void* pending) { return publish(static_cast<const Registry*>(pending)); },
    .free = [](void* pending) { free_registry(static_cast<Registry*>(pending)); },
    .entries = "service(s)",
    .limit = "usher.max_services",
    .full_hint = "Raise usher.max_services and restart the server.",
    .prepare_refusal = "cannot PREPARE a transaction that changed the pg_usher service registry",
};
// The DROP EXTENSION hook below marks the transaction through these names: the same
// as publication.mark_dropped().
bool& changed = publication.changed;
bool& dropped = publication.dropped;
void watch_transaction() { publication.watch(); }

void on_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
  if (previous_object_access_hook) previous_object_access_hook(access, class_id, object_id, sub_id, arg);
  if (access != OAT_DROP || class_id != ExtensionRelationId || shm::state() == nullptr) return;
  char* name = get_extension_name(object_id);
  if (name == nullptr || strcmp(name, "pg_usher") != 0) return;
  watch_transaction();
  changed = dropped = true;
}

}  // namespace

void install_hooks() {
  previous_object_access_hook = object_access_hook;
  object_access_hook = [](ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
    usher::guard([&] { on_object_access(access, class_id, object_id, sub_id, arg); });
  };
}

void mark_changed() {
  if (shm::state() != nullptr && !in_registry_database())
    ereport(WARNING, (errmsg("pg_usher enforces the registry of database \"%s\", not this one",
                             settings::database ? settings::database : ""),
                      errhint("Change services in database \"%s\", or set usher.database.",
                              settings::database ? settings::database : "")));
  publication.mark_changed();
}

}  // namespace usher::registry

USHER_SQL_FUNCTION(usher_registry_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw usher::Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "usher._registry_changed() must be called as a trigger");
  usher::registry::mark_changed();
  return PointerGetDatum(nullptr);
}

USHER_SQL_FUNCTION(usher_check_registry_writable) {
  usher::shm::require("changing the service registry");
  const char* registry_database = usher::settings::database ? usher::settings::database : "";
  const char* here = get_database_name(MyDatabaseId);
  if (here == nullptr) here = "";  // being dropped
  if (strcmp(here, registry_database) != 0)
    throw usher::Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                       std::string("the service registry is enforced from database \"") + registry_database +
                           "\", not \"" + here + "\"",
                       {},
                       std::string("Change services in database \"") + registry_database +
                           "\", or set usher.database (takes effect at the next server start).");
  return (Datum)0;
}
