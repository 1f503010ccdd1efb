#include "sampler.hpp"

#include <unistd.h>

#include "guard.hpp"
#include "shmem_hooks.hpp"
#include "settings.hpp"
#include "shared_state.hpp"

namespace usher::sampler {

namespace {

constexpr const char* tranche_name = "pg_usher sampler";

Ring* attached = nullptr;
int incarnation_capacity() { return settings::max_services * 4 + 16; }

// The segment: Ring, then the ticks' times, a row per tick and service, the
// incarnations and a state per service entry.
Size layout(Ring* r) {
  return shm::SegmentLayout(r)
      .array(&Ring::tick_at, settings::history_samples)
      .array(&Ring::rows, mul_size(settings::history_samples, settings::max_services))
      .array(&Ring::incarnations, incarnation_capacity())
      .array(&Ring::entries, settings::max_services)
      .size();
}

void init(Ring* r) {
  r->lock = &GetNamedLWLockTranche(tranche_name)[0].lock;
  r->capacity = settings::history_samples;
  r->services = settings::max_services;
  r->incarnation_capacity = incarnation_capacity();
  r->next_incarnation = 1;
}

constexpr shm::Segment<Ring> segment{tranche_name, [] { return 1; }, layout, init, &attached};

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

void install_hooks() { shm::add_segment<segment>(); }

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
