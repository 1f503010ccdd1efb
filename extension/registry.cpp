#include "registry.hpp"

#include "admission.hpp"
#include "gate.hpp"
#include "guard.hpp"
#include "publish_on_commit.hpp"
#include "settings.hpp"
#include "shared_state.hpp"
#include "spi.hpp"
#include "sql_function.hpp"

extern "C" {
#include "utils/memutils.h"
}

namespace usher::registry {

namespace {

constexpr const char* services_sql =
    "SELECT name, max_connections, reserved_connections, max_active, "
    "(extract(epoch FROM queue_timeout) * 1000::numeric)::int4, priority, enabled, "
    // gate_mode came with 1.1.0: read through the row's JSON, so that a server running
    // this module before ALTER EXTENSION pg_usher UPDATE reads NULL (false), not an error.
    "(pg_catalog.to_jsonb(s) OPERATOR(pg_catalog.->>) 'gate_mode'::pg_catalog.text) "
    "OPERATOR(pg_catalog.=) 'transaction'::pg_catalog.text "
    "FROM usher.service s ORDER BY name";
constexpr spi::Column service_columns[] = {
    {spi::Column::name, offsetof(ServiceRow, name)},
    {spi::Column::int4, offsetof(ServiceRow, max_connections)},
    {spi::Column::int4, offsetof(ServiceRow, reserved_connections)},
    {spi::Column::int4, offsetof(ServiceRow, max_active)},
    {spi::Column::int4, offsetof(ServiceRow, queue_timeout_ms)},
    {spi::Column::int4, offsetof(ServiceRow, priority)},
    {spi::Column::boolean, offsetof(ServiceRow, enabled)},
    {spi::Column::boolean, offsetof(ServiceRow, transaction_gate)}};
constexpr const char* roles_sql = "SELECT role_name::text, service FROM usher.role_service ORDER BY 1";
constexpr spi::Column role_columns[] = {{spi::Column::name, offsetof(RoleRow, role)},
                                        {spi::Column::name, offsetof(RoleRow, service)}};

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
  // As the registry's owner, whoever committed (a role granted EXECUTE on set_service
  // has no rights on the tables), with search_path pinned (spi.hpp).
  Oid owner = spi::owner_of_usher_table("service");
  auto* registry = static_cast<Registry*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Registry)));
  registry->counts = counts_buffer();
  registry->service_count =
      spi::read_rows(services_sql, owner, snapshot, TopMemoryContext, service_columns, &registry->services);
  registry->role_count = spi::read_rows(roles_sql, owner, snapshot, TopMemoryContext, role_columns, &registry->roles);
  return registry;
}

namespace {

// Copies the registry into shared memory, under the registry lock. `counts` is scratch
// allocated before commit. Returns how many services did not fit.
int publish_locked(shm::State* s, const Registry* registry, int32* counts) {
  int skipped = 0;
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
    service->gate_mode = row->transaction_gate ? shm::GateMode::transaction : shm::GateMode::statement;
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
  return skipped;
}

}  // namespace

int publish(const Registry* registry) {
  shm::State* s = shm::state();
  if (s == nullptr) return 0;
  // Counts are needed to know which retired entries may be reused: a buffer allocated
  // with the registry, before commit (this runs at commit, where nothing may fail).
  int skipped = shm::locked(s, shm::Access::exclusive, [&] { return publish_locked(s, registry, registry->counts); });
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

// Published when a transaction that changed the registry commits (usher.set_service,
// drop_service and set_role_service lock usher.service, which serialises writers).
PublishOnCommit publication{
    .attached = [] { return shm::state() != nullptr; },
    .read = [](::Snapshot snapshot) -> void* { return read(snapshot); },
    .empty = []() -> void* { return empty_registry(); },
    .publish = [](const void* pending) { return publish(static_cast<const Registry*>(pending)); },
    .free = [](void* pending) { free_registry(static_cast<Registry*>(pending)); },
    .report =
        [](const void* pending, int) {
          auto* registry = static_cast<const Registry*>(pending);
          ereport(LOG, (errmsg("pg_usher: published %d service(s) and %d role mapping(s) from database \"%s\"",
                               registry->service_count, registry->role_count, settings::database)));
        },
    .entries = "service(s)",
    .limit = "usher.max_services",
    .full_hint = "Raise usher.max_services and restart the server.",
    .prepare_refusal = "cannot PREPARE a transaction that changed the pg_usher service registry",
    .feature = "changing the service registry",
    .published_from = "the service registry is enforced from database",
    .change_in = "Change services in database",
    .change_in_hint = ", or set usher.database (takes effect at the next server start).",
    .publishes_what = "enforces the registry",
    .warning_hint = ", or set usher.database.",
    .trigger_function = "usher._registry_changed()",
};

void install_hooks() { publication.install(); }

}  // namespace usher::registry

USHER_SQL_FUNCTION(usher_registry_changed) { return usher::registry::publication.on_trigger(fcinfo); }

USHER_SQL_FUNCTION(usher_check_registry_writable) {
  usher::registry::publication.check_writable();
  return (Datum)0;
}
