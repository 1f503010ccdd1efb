#include "sampler.hpp"

#include <unistd.h>

#include "guard.hpp"
#include "shmem_hooks.hpp"
#include "settings.hpp"
#include "shared_state.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/shmem.h"
}

namespace usher::sampler {

namespace {

constexpr const char* tranche_name = "pg_usher sampler";

Ring* attached = nullptr;
int incarnation_capacity() { return settings::max_services * 4 + 16; }

Size ring_size() {
  Size size = MAXALIGN(sizeof(Ring));
  size = add_size(size, MAXALIGN(mul_size(settings::history_samples, sizeof(TimestampTz))));
  size = add_size(size, MAXALIGN(mul_size(mul_size(settings::history_samples, settings::max_services), sizeof(Row))));
  size = add_size(size, MAXALIGN(mul_size(incarnation_capacity(), sizeof(Incarnation))));
  size = add_size(size, MAXALIGN(mul_size(settings::max_services, sizeof(EntryState))));
  return size;
}

void request() {
  RequestAddinShmemSpace(ring_size());
  RequestNamedLWLockTranche(tranche_name, 1);
}

void startup() {
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found;
  auto* r = static_cast<Ring*>(ShmemInitStruct("pg_usher sampler", ring_size(), &found));
  if (!found) {
    memset(r, 0, ring_size());
    r->lock = &GetNamedLWLockTranche(tranche_name)[0].lock;
    r->capacity = settings::history_samples;
    r->services = settings::max_services;
    r->incarnation_capacity = incarnation_capacity();
    r->next_incarnation = 1;
    char* next = reinterpret_cast<char*>(r) + MAXALIGN(sizeof(Ring));
    r->tick_at = reinterpret_cast<TimestampTz*>(next);
    next += MAXALIGN(sizeof(TimestampTz) * r->capacity);
    r->rows = reinterpret_cast<Row*>(next);
    next += MAXALIGN(sizeof(Row) * r->capacity * r->services);
    r->incarnations = reinterpret_cast<Incarnation*>(next);
    next += MAXALIGN(sizeof(Incarnation) * r->incarnation_capacity);
    r->entries = reinterpret_cast<EntryState*>(next);
  }
  LWLockRelease(AddinShmemInitLock);
  attached = r;
}

// The snapshot the sampler copies shared state into: allocated once, in the
// launcher's TopMemoryContext.
shm::Snapshot* snapshot_for(shm::State* s) {
  static shm::Snapshot* snapshot = nullptr;
  if (snapshot == nullptr) snapshot = shm::new_snapshot(s, TopMemoryContext, false);
  return snapshot;
}

// What a tick records of one service.
Row row_of(shm::ServiceCopy& copy) {
  shm::Gate& gate = copy.service.gate;
  Row row{};
  row.connected = copy.sessions;
  row.active = static_cast<int32>(pg_atomic_read_u32(&gate.active));
  row.queued = static_cast<int32>(pg_atomic_read_u32(&gate.queued));
  row.admitted_total = pg_atomic_read_u64(&gate.admitted_total);
  row.busy_us_sum = pg_atomic_read_u64(&gate.busy_us_sum);
  return row;
}

uint32 new_incarnation(Ring* r, int entry, const char* name) {
  uint32 id = r->next_incarnation++;
  if (r->next_incarnation == 0) r->next_incarnation = 1;  // 0 means "not sampled"
  Incarnation* slot = &r->incarnations[id % r->incarnation_capacity];
  slot->id = id;
  slot->entry = entry;
  strlcpy(slot->name, name, NAMEDATALEN);
  return id;
}

}  // namespace

void install_hooks() { shm::add_shmem_part(request, startup); }

Ring* ring() { return attached; }

int interval_ms() { return settings::sample_interval_ms; }

void take_sample() {
  shm::State* s = shm::state();
  Ring* r = attached;
  if (s == nullptr || r == nullptr) return;
  // The services usher.service_status lists (shm::visible), as one snapshot.
  shm::Snapshot* snapshot = snapshot_for(s);
  shm::take_snapshot(s, snapshot);

  TimestampTz now = GetCurrentTimestamp();
  LWLockAcquire(r->lock, LW_EXCLUSIVE);
  int position = static_cast<int>(r->ticks % static_cast<uint64>(r->capacity));
  r->tick_at[position] = now;
  Row* tick = &r->rows[static_cast<Size>(position) * r->services];
  for (int i = 0; i < r->services; i++) {
    shm::ServiceCopy* copy = shm::snapshot_service(snapshot, i);
    if (copy == nullptr) {
      tick[i] = Row{};
      continue;
    }
    const char* name = copy->service.name;
    Row row = row_of(*copy);
    EntryState& e = r->entries[i];
    if (e.incarnation == 0 || strcmp(e.name, name) != 0 || row.admitted_total < e.admitted_total ||
        row.busy_us_sum < e.busy_us_sum) {
      e.incarnation = new_incarnation(r, i, name);
      strlcpy(e.name, name, NAMEDATALEN);
    }
    e.admitted_total = row.admitted_total;
    e.busy_us_sum = row.busy_us_sum;
    row.incarnation = e.incarnation;
    tick[i] = row;
  }
  r->ticks++;
  LWLockRelease(r->lock);
}

int cpu_cores(const char** source) {
  if (settings::cpu_cores > 0) {
    *source = "usher.cpu_cores";
    return settings::cpu_cores;
  }
  *source = "sysconf";
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(Min(n, 65536L)) : 1;
}

}  // namespace usher::sampler
