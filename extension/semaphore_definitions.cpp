// Semaphore definitions: the table usher.semaphore, published to shared memory when a
// transaction that changed it commits (never on rollback), at server start by the
// publisher worker, and as empty when DROP EXTENSION pg_usher commits. Mirrors the
// service registry (registry.cpp); both publish through publish_on_commit.hpp.
#include <string>

#include "guard.hpp"
#include "publish_on_commit.hpp"
#include "semaphore_state.hpp"
#include "semaphores.hpp"
#include "settings.hpp"
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

namespace usher::semaphores {

namespace {

struct Definition {
  char name[NAMEDATALEN];
  int32 capacity;
};

// What a transaction will publish when it commits, in TopMemoryContext.
struct Definitions {
  int count;
  Definition* items;
};

object_access_hook_type previous_object_access_hook = nullptr;

Definitions* empty_definitions() {
  auto* d = static_cast<Definitions*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Definitions)));
  d->items = static_cast<Definition*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Definition)));
  return d;
}

void free_definitions(Definitions* d) {
  if (d == nullptr) return;
  pfree(d->items);
  pfree(d);
}

// Reads the table with `snapshot` (inside a transaction). Plain data only: SPI errors
// are PostgreSQL errors.
Definitions* read(::Snapshot snapshot) {
  MemoryContext caller = CurrentMemoryContext;
  // As the table's owner, whoever committed, with search_path pinned (spi.hpp).
  spi::InternalScope scope = spi::enter_internal(spi::owner_of_usher_table("semaphore"));
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "pg_usher: SPI_connect failed");
  SPIPlanPtr plan = SPI_prepare("SELECT name, capacity FROM usher.semaphore ORDER BY name", 0, nullptr);
  if (plan == nullptr ||
      SPI_execute_snapshot(plan, nullptr, nullptr, snapshot, InvalidSnapshot, true, false, 0) != SPI_OK_SELECT)
    elog(ERROR, "pg_usher: could not read usher.semaphore");
  auto* d = static_cast<Definitions*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Definitions)));
  d->count = static_cast<int>(SPI_processed);
  d->items = static_cast<Definition*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Definition) * (SPI_processed + 1)));
  for (uint64 r = 0; r < SPI_processed; r++) {
    HeapTuple tuple = SPI_tuptable->vals[r];
    TupleDesc desc = SPI_tuptable->tupdesc;
    char* name = SPI_getvalue(tuple, desc, 1);
    strlcpy(d->items[r].name, name ? name : "", NAMEDATALEN);
    bool isnull;
    Datum capacity = SPI_getbinval(tuple, desc, 2, &isnull);
    d->items[r].capacity = isnull ? 0 : DatumGetInt32(capacity);
  }
  SPI_finish();
  spi::leave_internal(scope);
  MemoryContextSwitchTo(caller);
  return d;
}

// Copies definitions into shared memory. Never raises (it runs at commit); returns how
// many did not fit in usher.max_semaphores.
int publish(const Definitions* d) {
  sem::State* s = sem::state();
  if (s == nullptr) return 0;
  int skipped = 0;
  LWLockAcquire(s->lock, LW_EXCLUSIVE);
  for (int i = 0; i < s->capacity; i++) s->semaphores[i].listed = false;
  for (int r = 0; r < d->count; r++) {
    int index = sem::find(s, d->items[r].name, true);
    if (index == sem::none) {
      for (int i = 0; i < s->capacity && index == sem::none; i++)
        if (!s->semaphores[i].in_use) index = i;
      if (index == sem::none) {
        skipped++;
        continue;
      }
      sem::Semaphore* fresh = &s->semaphores[index];
      memset(fresh, 0, sizeof(sem::Semaphore));
      fresh->queue_head = fresh->queue_tail = sem::none;
      fresh->in_use = true;
      strlcpy(fresh->name, d->items[r].name, NAMEDATALEN);
    }
    s->semaphores[index].listed = true;
    s->semaphores[index].capacity = d->items[r].capacity;
  }
  // A raised capacity admits waiters; a dropped semaphore or one lowered below a
  // request refuses them; an entry nobody uses any more is freed.
  for (int i = 0; i < s->capacity; i++)
    if (s->semaphores[i].in_use) sem::serve_queue(s, i);
  s->published = true;
  s->publications++;
  LWLockRelease(s->lock);
  return skipped;
}

// Published when a transaction that changed usher.semaphore commits (usher.set_semaphore
// and drop_semaphore lock the table, which serialises writers).
PublishOnCommit publication{
    .attached = [] { return sem::state() != nullptr; },
    .read = [](::Snapshot snapshot) -> void* { return read(snapshot); },
    .empty = []() -> void* { return empty_definitions(); },
    .publish = [](const void* pending) { return publish(static_cast<const Definitions*>(pending)); },
    .free = [](void* pending) { free_definitions(static_cast<Definitions*>(pending)); },
    .entries = "semaphore(s)",
    .limit = "usher.max_semaphores",
    .full_hint = "Release the permits of dropped semaphores, or raise usher.max_semaphores and restart the server.",
    .prepare_refusal = "cannot PREPARE a transaction that changed pg_usher's semaphores",
};

void on_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
  if (previous_object_access_hook) previous_object_access_hook(access, class_id, object_id, sub_id, arg);
  if (access != OAT_DROP || class_id != ExtensionRelationId || sem::state() == nullptr) return;
  char* name = get_extension_name(object_id);
  if (name == nullptr || strcmp(name, "pg_usher") != 0) return;
  publication.mark_dropped();
}

}  // namespace

void install_hooks() {
  previous_object_access_hook = object_access_hook;
  object_access_hook = [](ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
    usher::guard([&] { on_object_access(access, class_id, object_id, sub_id, arg); });
  };
}

void publish_from_table() {
  if (sem::state() == nullptr) return;
  Definitions* d = read(GetActiveSnapshot());
  int skipped = publish(d);
  ereport(LOG, (errmsg("pg_usher: published %d semaphore(s) from database \"%s\"", d->count - skipped,
                       settings::database ? settings::database : "")));
  if (skipped > 0)
    ereport(WARNING, (errmsg("pg_usher: %d semaphore(s) did not fit in usher.max_semaphores", skipped),
                      errhint("Raise usher.max_semaphores and restart the server.")));
  free_definitions(d);
}

}  // namespace usher::semaphores

// Trigger on usher.semaphore: publish when this transaction commits.
USHER_SQL_FUNCTION(usher_semaphores_changed) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw usher::Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, "usher._semaphores_changed() must be called as a trigger");
  // CREATE EXTENSION empties the table to publish "no semaphores" (a database dropped
  // with the extension in it leaves stale definitions behind); stay quiet there.
  if (usher::sem::state() != nullptr && !creating_extension && !usher::in_registry_database())
    ereport(WARNING, (errmsg("pg_usher publishes the semaphores of database \"%s\", not this one",
                             usher::settings::database ? usher::settings::database : ""),
                      errhint("Define semaphores in database \"%s\".",
                              usher::settings::database ? usher::settings::database : "")));
  usher::semaphores::publication.mark_changed();
  return PointerGetDatum(nullptr);
}

// ERROR 55000 unless pg_usher is preloaded and this is the database named by
// usher.database: definitions anywhere else would never be published.
USHER_SQL_FUNCTION(usher_check_semaphores_writable) {
  usher::sem::require("usher.set_semaphore");
  const char* registry_database = usher::settings::database ? usher::settings::database : "";
  const char* here = get_database_name(MyDatabaseId);
  if (here == nullptr) here = "";  // being dropped
  if (strcmp(here, registry_database) != 0)
    throw usher::Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                       std::string("semaphores are defined in database \"") + registry_database + "\", not \"" +
                           here + "\"",
                       {},
                       std::string("Define semaphores in database \"") + registry_database +
                           "\"; usher.acquire and usher.release work in every database with pg_usher installed.");
  return (Datum)0;
}
