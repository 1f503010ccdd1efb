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

int sample_interval_ms = 1000;  // usher.sample_interval (SIGHUP)
int history_samples = 3600;     // usher.history_samples (server start)
int cpu_cores_setting = 0;      // usher.cpu_cores (superuser; 0 = detect)

Ring* attached = nullptr;
int incarnation_capacity() { return settings::max_services * 4 + 16; }

Size ring_size() {
  Size size = MAXALIGN(sizeof(Ring));
  size = add_size(size, MAXALIGN(mul_size(history_samples, sizeof(TimestampTz))));
  size = add_size(size, MAXALIGN(mul_size(mul_size(history_samples, settings::max_services), sizeof(Row))));
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
    r->capacity = history_samples;
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

void define_settings() {
  DefineCustomIntVariable(
      "usher.sample_interval", "How often the launcher samples per-service activity into usher.activity_history.",
      nullptr, &sample_interval_ms, 1000, 100, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
  DefineCustomIntVariable(
      "usher.cpu_cores", "CPU cores usher.pool_advice() assumes (0: detect with sysconf).", nullptr,
      &cpu_cores_setting, 0, 0, 65536, PGC_SUSET, 0, nullptr, nullptr, nullptr);
  if (process_shared_preload_libraries_in_progress)
    DefineCustomIntVariable(
        "usher.history_samples", "Samples usher.activity_history keeps per service (a ring buffer).",
        "Shared memory used: about 32 bytes x usher.history_samples x usher.max_services.",
        &history_samples, 3600, 10, 1000000, PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
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

void install() {
  define_settings();
  if (!process_shared_preload_libraries_in_progress) return;
  shm::add_shmem_part(request, startup);
}

Ring* ring() { return attached; }

int interval_ms() { return sample_interval_ms; }

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
  if (cpu_cores_setting > 0) {
    *source = "usher.cpu_cores";
    return cpu_cores_setting;
  }
  *source = "sysconf";
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(Min(n, 65536L)) : 1;
}

}  // namespace usher::sampler
