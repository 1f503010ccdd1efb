#include "shared_state.hpp"

#include "guard.hpp"
#include "shmem_hooks.hpp"
#include "settings.hpp"

extern "C" {
#include "access/twophase.h"
}

namespace usher::shm {

namespace {

constexpr const char* tranche_name = "pg_usher";
State* attached = nullptr;

// The segment: State, then the services, the role mappings and one BackendSlot per PGPROC.
Size layout(State* s) {
  return SegmentLayout(s)
      .array(&State::services, settings::max_services)
      .array(&State::role_mappings, settings::max_role_mappings)
      .array(&State::slots, proc_slot_count())
      .size();
}

// Lock 0 guards the registry and the slots' service fields; then one per service entry
// for its statement gate's queue, and one for the server's gate.
int lock_count() { return 1 + settings::max_services + 1; }

// Until the registry is first published, every session counts under 'default', which
// has no limits.
void init_default_service(Service* service) {
  memset(service, 0, sizeof(Service));
  init_gate(&service->gate);
  service->in_use = true;
  service->listed = true;
  service->enabled = true;
  strlcpy(service->name, "default", NAMEDATALEN);
}

void init(State* s) {
  LWLockPadded* locks = GetNamedLWLockTranche(tranche_name);
  s->lock = &locks[0].lock;
  s->gate_locks = &locks[1];
  s->service_capacity = settings::max_services;
  s->role_mapping_capacity = settings::max_role_mappings;
  s->slot_count = proc_slot_count();
  for (int i = 0; i < s->service_capacity; i++) init_gate(&s->services[i].gate);
  init_gate(&s->server_gate);
  for (int i = 0; i < s->slot_count; i++) {
    s->slots[i].service = no_service;
    s->slots[i].gate_service = no_service;
    for (auto& position : s->slots[i].gate) position.next = no_slot;
    SpinLockInit(&s->slots[i].lease_mutex);
  }
  init_default_service(&s->services[default_service_index]);
}

constexpr Segment<State> segment{tranche_name, lock_count, layout, init, &attached};

}  // namespace

void install_hooks() {
  add_segment<segment>();
}

State* state() { return attached; }

State* require(const char* feature) {
  if (attached == nullptr)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                std::string(feature) + " needs pg_usher in shared_preload_libraries", {},
                "Add pg_usher to shared_preload_libraries in postgresql.conf and restart the server.");
  return attached;
}

int my_slot_index() {
  if (attached == nullptr || MyProc == nullptr) return no_slot;
  int index = static_cast<int>(MyProc - ProcGlobal->allProcs);
  return index >= 0 && index < attached->slot_count ? index : no_slot;
}

BackendSlot* my_slot() {
  int index = my_slot_index();
  return index == no_slot ? nullptr : &attached->slots[index];
}

Latch* latch_of(int index) { return &ProcGlobal->allProcs[index].procLatch; }

void init_gate(Gate* gate) {
  pg_atomic_init_u32(&gate->active, 0);
  pg_atomic_init_u32(&gate->queued, 0);
  pg_atomic_init_u32(&gate->peak_active, 0);
  gate->queue_head = gate->queue_tail = no_slot;
  pg_atomic_uint64* counters[] = {&gate->admitted_total, &gate->waited_total, &gate->queue_timeouts_total,
                                  &gate->queue_cancels_total, &gate->wait_us_sum, &gate->wait_us_max,
                                  &gate->busy_us_sum, &gate->past_limit_total};
  for (auto* counter : counters) pg_atomic_init_u64(counter, 0);
  for (auto& bucket : gate->wait_histogram) pg_atomic_init_u64(&bucket, 0);
}

int count_sessions(const State* s, int32* counts) {
  for (int i = 0; i < s->service_capacity; i++) counts[i] = 0;
  int total = 0;
  for (int i = 0; i < s->slot_count; i++) {
    int service = s->slots[i].service;
    if (service < 0 || service >= s->service_capacity) continue;
    counts[service]++;
    total++;
  }
  return total;
}

namespace detail {

void lock(State* s, Access access) { LWLockAcquire(s->lock, access == Access::exclusive ? LW_EXCLUSIVE : LW_SHARED); }
void unlock(State* s) { LWLockRelease(s->lock); }

}  // namespace detail

Snapshot* new_snapshot(const State* s, MemoryContext context, bool with_slots) {
  auto* snapshot = static_cast<Snapshot*>(MemoryContextAllocZero(context, sizeof(Snapshot)));
  int capacity = s->service_capacity;
  snapshot->capacity = capacity;
  snapshot->services = static_cast<ServiceCopy*>(MemoryContextAllocZero(context, sizeof(ServiceCopy) * capacity));
  snapshot->position = static_cast<int32*>(MemoryContextAllocZero(context, sizeof(int32) * capacity));
  snapshot->sessions = static_cast<int32*>(MemoryContextAllocZero(context, sizeof(int32) * capacity));
  snapshot->superusers = static_cast<int32*>(MemoryContextAllocZero(context, sizeof(int32) * capacity));
  snapshot->roles =
      static_cast<RoleMapping*>(MemoryContextAllocZero(context, sizeof(RoleMapping) * (s->role_mapping_capacity + 1)));
  if (with_slots) {
    snapshot->slot_count = s->slot_count;
    snapshot->slots = static_cast<SlotCopy*>(MemoryContextAllocZero(context, sizeof(SlotCopy) * (s->slot_count + 1)));
  }
  return snapshot;
}

namespace {

SlotCopy copy_slot(const BackendSlot& slot) {
  // Queued at either gate is queued; otherwise active once past the service's gate.
  const GatePosition* queued = nullptr;
  for (const auto& position : slot.gate)
    if (position.state == GateState::queued) queued = &position;
  const GatePosition& service_position = slot.gate[service_stage];
  return {slot.service, queued ? GateState::queued : service_position.state,
          queued ? queued->since : service_position.since};
}

}  // namespace

void take_snapshot(State* s, Snapshot* into) {
  int capacity = Min(into->capacity, s->service_capacity);
  int slots = into->slots != nullptr ? Min(into->slot_count, s->slot_count) : 0;
  LWLockAcquire(s->lock, LW_SHARED);
  count_sessions(s, into->sessions);
  for (int i = 0; i < capacity; i++) into->superusers[i] = 0;
  for (int i = 0; i < s->slot_count; i++) {
    int service = s->slots[i].service;
    if (service >= 0 && service < capacity && s->slots[i].superuser) into->superusers[service]++;
  }
  into->service_count = 0;
  for (int i = 0; i < capacity; i++) {
    into->position[i] = -1;
    if (!visible(s->services[i], into->sessions[i])) continue;
    into->position[i] = into->service_count;
    ServiceCopy& copy = into->services[into->service_count++];
    copy.entry = i;
    copy.sessions = into->sessions[i];
    copy.superusers = into->superusers[i];
    memcpy(&copy.service, &s->services[i], sizeof(Service));
  }
  into->published = s->published;
  into->published_at = s->published_at;
  into->role_count = s->role_mapping_count;
  memcpy(into->roles, s->role_mappings, sizeof(RoleMapping) * s->role_mapping_count);
  for (int i = 0; i < slots; i++) into->slots[i] = copy_slot(s->slots[i]);
  LWLockRelease(s->lock);
}

int find_service(const State* s, const char* name) {
  for (int i = 0; i < s->service_capacity; i++)
    if (s->services[i].in_use && strcmp(s->services[i].name, name) == 0) return i;
  return -1;
}

int enforced_service(const State* s, const char* name) {
  int index = find_service(s, name);
  if (index >= 0 && s->services[index].listed && s->services[index].enabled) return index;
  return default_service_index;
}

}  // namespace usher::shm
