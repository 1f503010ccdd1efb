// Semaphore definitions: the table usher.semaphore, published to shared memory when a
// transaction that changed it commits (never on rollback), at server start by the
// publisher worker, and as empty when DROP EXTENSION pg_usher commits. Mirrors the
// service registry (registry.cpp); both publish through publish_on_commit.hpp.
#include "guard.hpp"
#include "publish_on_commit.hpp"
#include "semaphore_state.hpp"
#include "semaphores.hpp"
#include "settings.hpp"
#include "spi.hpp"
#include "sql_function.hpp"

extern "C" {
#include "utils/memutils.h"
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

constexpr spi::Column definition_columns[] = {{spi::Column::name, offsetof(Definition, name)},
                                              {spi::Column::int4, offsetof(Definition, capacity)}};

// Reads the table with `snapshot` (inside a transaction), as the table's owner, whoever
// committed, with search_path pinned (spi.hpp). Plain data only: SPI errors are
// PostgreSQL errors.
Definitions* read(::Snapshot snapshot) {
  Oid owner = spi::owner_of_usher_table("semaphore");
  auto* d = static_cast<Definitions*>(MemoryContextAllocZero(TopMemoryContext, sizeof(Definitions)));
  d->count = spi::read_rows("SELECT name, capacity FROM usher.semaphore ORDER BY name", owner, snapshot,
                            TopMemoryContext, definition_columns, &d->items);
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

}  // namespace

// Published when a transaction that changed usher.semaphore commits (usher.set_semaphore
// and drop_semaphore lock the table, which serialises writers).
PublishOnCommit publication{
    .attached = [] { return sem::state() != nullptr; },
    .read = [](::Snapshot snapshot) -> void* { return read(snapshot); },
    .empty = []() -> void* { return empty_definitions(); },
    .publish = [](const void* pending) { return publish(static_cast<const Definitions*>(pending)); },
    .free = [](void* pending) { free_definitions(static_cast<Definitions*>(pending)); },
    .report =
        [](const void* pending, int skipped) {
          ereport(LOG, (errmsg("pg_usher: published %d semaphore(s) from database \"%s\"",
                               static_cast<const Definitions*>(pending)->count - skipped,
                               settings::database ? settings::database : "")));
        },
    .entries = "semaphore(s)",
    .limit = "usher.max_semaphores",
    .full_hint = "Release the permits of dropped semaphores, or raise usher.max_semaphores and restart the server.",
    .prepare_refusal = "cannot PREPARE a transaction that changed pg_usher's semaphores",
    .feature = "usher.set_semaphore",
    .published_from = "semaphores are defined in database",
    .change_in = "Define semaphores in database",
    .change_in_hint = "; usher.acquire and usher.release work in every database with pg_usher installed.",
    .publishes_what = "publishes the semaphores",
    .warning_hint = ".",
    .trigger_function = "usher._semaphores_changed()",
};

void install_hooks() {
  publication.install();
}

}  // namespace usher::semaphores

// Trigger on usher.semaphore: publish when this transaction commits.
USHER_SQL_FUNCTION(usher_semaphores_changed) {
  return usher::semaphores::publication.on_trigger(fcinfo);
}

// ERROR 55000 unless pg_usher is preloaded and this is the database named by
// usher.database: definitions anywhere else would never be published.
USHER_SQL_FUNCTION(usher_check_semaphores_writable) {
  usher::semaphores::publication.check_writable();
  return (Datum)0;
}
