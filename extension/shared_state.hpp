// pg_usher's shared memory: the published service registry, role mappings, per-service
// counters and one slot per PGPROC. Requested in shmem_request_hook, attached in
// shmem_startup_hook, guarded by one LWLock from the named tranche "pg_usher" (the
// lease fields of a slot by the slot's own spinlock, so a pool's checkout never
// touches the shared lock; the gates' queues by their own locks, gate.cpp). That lock
// is taken in shared_state.cpp only: readers copy one snapshot (take_snapshot), writers
// run their change in locked().
//
// Connection counts are never stored: they are derived by counting the slots that
// name a service. A slot is filled at login and emptied by the backend's
// before_shmem_exit callback, and a crash resets all of shared memory, so no exit
// path can make a count drift.
#pragma once

#include <type_traits>

#include "pg_includes.hpp"

extern "C" {
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
}

namespace usher::shm {

constexpr int no_service = -1;
constexpr int no_slot = -1;
constexpr int holder_bytes = 64;  // a lease holder is cut to this many bytes

// Upper bounds (seconds) of the statement gate's wait-time histogram; the last bucket
// is +Inf.
constexpr double wait_bucket_bounds[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30};
constexpr int wait_buckets = sizeof(wait_bucket_bounds) / sizeof(wait_bucket_bounds[0]) + 1;

// The statement gate of one service (admission control, part 2). The counters are
// atomics so that the uncontended path takes no lock; the queue of waiting slots is
// changed only under the service's gate lock.
struct Gate {
  pg_atomic_uint32 active;  // statements holding a slot
  pg_atomic_uint32 queued;  // statements waiting for one
  int32 queue_head;         // slot index of the longest waiter, or no_slot
  int32 queue_tail;
  pg_atomic_uint64 admitted_total;        // statements admitted (at once or after waiting)
  pg_atomic_uint64 waited_total;          // of those, how many had to wait
  pg_atomic_uint64 queue_timeouts_total;  // waits ended by queue_timeout
  pg_atomic_uint64 queue_cancels_total;   // waits ended by cancel, statement_timeout, exit
  pg_atomic_uint64 wait_us_sum;           // time spent waiting, admitted waits only
  pg_atomic_uint64 wait_us_max;
  pg_atomic_uint64 wait_histogram[wait_buckets];  // admitted waits by wait time (not cumulative)
  pg_atomic_uint64 busy_us_sum;           // time statements held a slot (for Little's law)
  pg_atomic_uint32 peak_active;
  // Statements admitted without waiting although the gate was full, because their
  // transaction was already running (gate mode 'statement': a later statement of a
  // transaction must not queue behind statements that may wait for its locks).
  pg_atomic_uint64 past_limit_total;
};

// How long a slot of the service's gate is held: by a statement (the default), or by
// a transaction, from its first statement until it ends.
enum class GateMode : uint8 { statement = 0, transaction = 1 };

struct Service {
  bool in_use;   // entry allocated; its counters are live
  bool listed;   // in the registry now published
  bool enabled;  // listed and enforced; a disabled service's sessions count as 'default'
  char name[NAMEDATALEN];
  int32 max_connections;       // 0: unlimited
  int32 reserved_connections;
  int32 max_active;            // 0: unlimited
  int32 queue_timeout_ms;
  int32 priority;
  GateMode gate_mode;
  int32 peak;
  uint64 admitted_total;
  uint64 rejected_quota_total;
  uint64 rejected_reservation_total;
  uint64 rejected_full_total;  // refused because every slot for ordinary roles was in use
  Gate gate;
};

struct RoleMapping {
  char role[NAMEDATALEN];
  int32 service;  // index into services
};

// Where a backend stands at a statement gate.
enum class GateState : uint8 { none, queued, active };

// A statement passes two gates: its service's (max_active, FIFO) and, when
// usher.max_active_total is set, the server's (FIFO within a priority, higher priority
// first).
enum GateStage { service_stage = 0, server_stage = 1, gate_stages = 2 };

// A backend's place at one gate. Written by the owning backend, and by a releasing
// backend (under that gate's lock) when it hands a slot to this queued one.
struct GatePosition {
  volatile GateState state;
  volatile bool granted;
  int32 next;         // next waiter in that gate's queue, or no_slot
  TimestampTz since;  // queued since, or active since
};

struct BackendSlot {
  int32 pid;        // 0: free
  int32 service;    // index into services, or no_service when not counted
  bool superuser;
  // The statement gates.
  int32 gate_service;   // the service of the statement at the gates, or no_service
  int32 gate_priority;  // its priority, which orders the server gate's queue
  GatePosition gate[gate_stages];
  slock_t lease_mutex;
  char lease_holder[holder_bytes + 1];  // empty: no lease
  TimestampTz lease_start;
  // A superuser admitted before the registry's first publication (ordinary logins wait
  // for it; superusers do not): what it logged in as, so that the first publication
  // counts it under its real service (admission::settle_provisional).
  bool provisional;
  char login_role[NAMEDATALEN];
  char login_service[NAMEDATALEN];  // application_name up to the first '/'
};

struct State {
  LWLock* lock;        // the registry, role mappings and slots' service fields
  LWLockPadded* gate_locks;  // one per service entry (its gate's queue), then the server gate's
  Gate server_gate;          // usher.max_active_total
  bool published;  // a registry has been published since shared memory was set up
  TimestampTz published_at;
  uint64 publications;
  // Until the first publication, logins of ordinary roles wait (admission.cpp). The
  // publisher (worker.cpp) reports how its runs end: no registry to publish (the
  // database does not exist, or pg_usher is not installed there) lets them in as
  // 'default'; a run that failed is retried.
  bool registry_absent;
  bool publisher_connected;   // the current publisher run connected to usher.database
  int32 publisher_failures;   // publisher runs that ended without publishing
  bool registry_wait_logged;  // the first waiting login has said so in the server log
  int32 service_capacity;
  int32 role_mapping_capacity;
  int32 role_mapping_count;
  int32 slot_count;
  Service* services;
  RoleMapping* role_mappings;
  BackendSlot* slots;
};

// The index of the built-in 'default' service: always entry 0.
constexpr int default_service_index = 0;

// Installs the shared-memory hooks; called from _PG_init while preloading.
void install_hooks();

// The attached state, or nullptr when pg_usher was not preloaded.
State* state();

// The state, or ERROR 55000 with a HINT to preload pg_usher, naming `feature`.
State* require(const char* feature);

// This backend's slot (MyProc's index), or nullptr without shared memory.
BackendSlot* my_slot();

// The index of this backend's slot, or no_slot.
int my_slot_index();

// The latch of the backend owning the slot at `index`, to wake it.
Latch* latch_of(int index);

// Resets a service entry's gate (a new or reused entry).
void init_gate(Gate* gate);

// The slot of the PGPROC at `proc_index`.
inline BackendSlot* slot_at(State* s, int proc_index) {
  return proc_index >= 0 && proc_index < s->slot_count ? &s->slots[proc_index] : nullptr;
}

// Counts, for every service entry, the slots that name it (caller holds the lock).
// `counts` has service_capacity entries; returns the total of counted slots.
int count_sessions(const State* s, int32* counts);

// --- The registry lock -------------------------------------------------------------------
//
// State::lock is taken in this module only: readers take a snapshot (below), writers (a
// login's admission, a registry publication, the publisher's flags, a backend's exit)
// run their change as `body` in locked(). `body` works on shared memory alone (reads,
// writes, counting, strlcpy): no palloc, no ereport, nothing that can raise, so the
// lock is always released here. Plain C: locked() itself holds no C++ object, and the
// only call that can raise is LWLockAcquire (too many LWLocks held).
enum class Access : uint8 { shared, exclusive };

namespace detail {
void lock(State* s, Access access);
void unlock(State* s);
}  // namespace detail

template <typename Body>
auto locked(State* s, Access access, Body&& body) {
  detail::lock(s, access);
  if constexpr (std::is_void_v<decltype(body())>) {
    body();
    detail::unlock(s);
  } else {
    auto result = body();
    detail::unlock(s);
    return result;
  }
}

// --- Reading: one consistent snapshot -------------------------------------------------
//
// Every reader of the per-service figures (usher.service_status,
// usher.published_services, usher.metrics(), the sampler, usher.backends) copies them
// out with take_snapshot() and works on the copy: the registry lock is taken only here,
// and which services a reader sees is decided by one rule, visible().

// A service is visible while it is in the published registry, and after it left it
// (dropped, or its entry retired) as long as sessions still count under it.
inline bool visible(const Service& service, int32 sessions) {
  return service.in_use && (service.listed || sessions > 0);
}

// One visible service as the snapshot saw it.
struct ServiceCopy {
  int32 entry;       // its index in State::services (the sampler's rows are keyed by it)
  int32 sessions;    // backend slots counted under it
  int32 superusers;  // of those, superusers' sessions
  Service service;   // the entry; read its gate's atomics with pg_atomic_read_* (copies)
};

// One backend slot's admission, as usher.backends shows it.
struct SlotCopy {
  int32 service;         // entry index, or no_service
  GateState gate_state;  // queued at either gate is queued; else its service gate's state
  TimestampTz gate_since;
};

struct Snapshot {
  int service_count;       // visible services, in entry order
  ServiceCopy* services;   // [service_capacity]
  int32* position;         // [service_capacity]: entry index -> index in services, or -1
  bool published;
  TimestampTz published_at;
  int role_count;
  RoleMapping* roles;      // [role_mapping_capacity]
  int slot_count;          // 0 unless asked for
  SlotCopy* slots;         // [slot_count], or nullptr
  // Scratch for counting, one per entry: allocated with the snapshot.
  int32* sessions;
  int32* superusers;
  int capacity;            // the entries this snapshot has room for
};

// Allocates a snapshot of `s` in `context` (with room for every backend slot when
// `with_slots`). May raise (palloc); take it before copying, and keep it to copy again
// (the sampler takes one per tick into the same memory).
Snapshot* new_snapshot(const State* s, MemoryContext context, bool with_slots);

// Copies the services, role mappings and, if the snapshot has room, the backend slots
// under the shared lock: only memcpy and counting there. Plain C; the only call that can
// raise is LWLockAcquire (too many LWLocks held).
void take_snapshot(State* s, Snapshot* into);

// The visible service of entry `entry` in a snapshot, or nullptr.
inline ServiceCopy* snapshot_service(Snapshot* snapshot, int entry) {
  if (entry < 0 || entry >= snapshot->capacity || snapshot->position[entry] < 0) return nullptr;
  return &snapshot->services[snapshot->position[entry]];
}

// A service entry by name among the entries in use, or -1.
int find_service(const State* s, const char* name);

// The entry a login for `name` counts under: the listed, enabled service of that
// name, else 'default'.
int enforced_service(const State* s, const char* name);

}  // namespace usher::shm
