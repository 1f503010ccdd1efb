// The statement gates' permits and queues. A statement passes its service's gate
// (max_active, strict FIFO) and then, when usher.max_active_total is set, the server's
// gate (higher priority first, FIFO within a priority). The uncontended path is a few
// atomic operations on a gate's counters; only a full gate takes its lock, to queue. A
// releasing backend hands its permit directly to the first waiter and sets that waiter's
// latch, so exactly one backend wakes per freed permit (a condition variable broadcast
// would wake every waiter of the gate for each release).
//
// Everything here runs in the gate hooks' plain C frames (gate_hooks.cpp): plain data
// only, no C++ object with a destructor, no C++ exception. Errors are PostgreSQL's own
// (cancel, statement_timeout, termination through CHECK_FOR_INTERRUPTS) or raised with
// ereport (queue timeout), after the bookkeeping is done.
#include "gate.hpp"

#include "settings.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/backend_status.h"
}

namespace usher::gate {

namespace {

bool exit_callback_registered = false;

// The permit this backend holds is kept until its transaction ends (gate mode
// 'transaction', a fast-path call, a DECLARE ... WITH HOLD), not given back when a
// statement ends.
bool held_for_transaction = false;

// One gate as the code below sees it: its counters and queue, its lock, its limit
// (0: unlimited), and whether its queue is ordered by priority.
struct GateRef {
  shm::Gate* gate;
  LWLock* lock;
  uint32 max;
  shm::GateStage stage;
};

GateRef service_gate(shm::State* s, int service) {
  return {&s->services[service].gate, &s->gate_locks[service].lock,
          static_cast<uint32>(s->services[service].max_active), shm::service_stage};
}

GateRef server_gate(shm::State* s) {
  return {&s->server_gate, &s->gate_locks[s->service_capacity].lock, static_cast<uint32>(settings::max_active_total),
          shm::server_stage};
}

// Takes a permit if one is free (never more than max; 0 means no limit).
bool try_take(const GateRef& ref) {
  uint32 current = pg_atomic_read_u32(&ref.gate->active);
  for (;;) {
    if (ref.max > 0 && current >= ref.max) return false;
    if (pg_atomic_compare_exchange_u32(&ref.gate->active, &current, current + 1)) return true;
  }
}

void note_peak(shm::Gate* gate) {
  uint32 active = pg_atomic_read_u32(&gate->active);
  uint32 peak = pg_atomic_read_u32(&gate->peak_active);
  while (active > peak && !pg_atomic_compare_exchange_u32(&gate->peak_active, &peak, active)) {
  }
}

void record_wait(shm::Gate* gate, TimestampTz since, TimestampTz now) {
  uint64 waited_us = now > since ? static_cast<uint64>(now - since) : 0;
  pg_atomic_fetch_add_u64(&gate->waited_total, 1);
  pg_atomic_fetch_add_u64(&gate->wait_us_sum, waited_us);
  uint64 max = pg_atomic_read_u64(&gate->wait_us_max);
  while (waited_us > max && !pg_atomic_compare_exchange_u64(&gate->wait_us_max, &max, waited_us)) {
  }
  int bucket = 0;
  while (bucket < shm::wait_buckets - 1 && waited_us > shm::wait_bucket_bounds[bucket] * 1e6) bucket++;
  pg_atomic_fetch_add_u64(&gate->wait_histogram[bucket], 1);
}

// Queues a backend slot (caller holds the gate's lock): at the tail of a service's queue; in
// the server's queue after every waiter of the same or a higher priority.
void enqueue(shm::State* s, const GateRef& ref, int index) {
  shm::Gate* gate = ref.gate;
  int stage = ref.stage;
  int previous = shm::no_slot;
  if (stage == shm::server_stage) {
    int priority = s->slots[index].gate_priority;
    for (int at = gate->queue_head; at != shm::no_slot && s->slots[at].gate_priority >= priority;
         at = s->slots[at].gate[stage].next)
      previous = at;
  } else {
    previous = gate->queue_tail;
  }
  int next = previous == shm::no_slot ? gate->queue_head : s->slots[previous].gate[stage].next;
  s->slots[index].gate[stage].next = next;
  if (previous == shm::no_slot) gate->queue_head = index;
  else s->slots[previous].gate[stage].next = index;
  if (next == shm::no_slot) gate->queue_tail = index;
}

// Removes a backend slot from a gate's queue (caller holds the gate's lock).
void unlink(shm::State* s, const GateRef& ref, int index) {
  shm::Gate* gate = ref.gate;
  int stage = ref.stage;
  int previous = shm::no_slot;
  for (int at = gate->queue_head; at != shm::no_slot; previous = at, at = s->slots[at].gate[stage].next) {
    if (at != index) continue;
    int next = s->slots[at].gate[stage].next;
    if (previous == shm::no_slot) gate->queue_head = next;
    else s->slots[previous].gate[stage].next = next;
    if (gate->queue_tail == index) gate->queue_tail = previous;
    s->slots[at].gate[stage].next = shm::no_slot;
    pg_atomic_fetch_sub_u32(&gate->queued, 1);
    return;
  }
}

// Grants free permits to the first waiters (caller holds the gate's lock).
void grant_waiters(shm::State* s, const GateRef& ref) {
  shm::Gate* gate = ref.gate;
  int stage = ref.stage;
  while (gate->queue_head != shm::no_slot && try_take(ref)) {
    int waiter = gate->queue_head;
    shm::GatePosition* position = &s->slots[waiter].gate[stage];
    gate->queue_head = position->next;
    if (gate->queue_head == shm::no_slot) gate->queue_tail = shm::no_slot;
    position->next = shm::no_slot;
    pg_atomic_fetch_sub_u32(&gate->queued, 1);
    pg_write_barrier();
    position->granted = true;
    SetLatch(shm::latch_of(waiter));
  }
}

// Leaves one gate: a queued backend leaves the queue, an active one (also one granted a
// permit while it was being cancelled) gives its permit back. Returns true if it was queued.
bool leave(shm::State* s, shm::BackendSlot* slot, int index, const GateRef& ref) {
  shm::GatePosition* position = &slot->gate[ref.stage];
  bool was_queued = position->state == shm::GateState::queued;
  if (was_queued) {
    LWLockAcquire(ref.lock, LW_EXCLUSIVE);
    bool granted = position->granted;
    if (!granted) unlink(s, ref, index);
    LWLockRelease(ref.lock);
    position->state = granted ? shm::GateState::active : shm::GateState::none;
    position->granted = false;
  }
  if (position->state != shm::GateState::active) return was_queued;
  position->state = shm::GateState::none;
  // A full barrier: a waiter that announced itself (queued + 1) before this decrement is
  // seen below, and one that announces itself after it sees the free permit.
  pg_atomic_fetch_sub_u32(&ref.gate->active, 1);
  if (pg_atomic_read_u32(&ref.gate->queued) > 0) {
    LWLockAcquire(ref.lock, LW_EXCLUSIVE);
    grant_waiters(s, ref);
    LWLockRelease(ref.lock);
  }
  return was_queued;
}

// Leaves both gates (the server's first: it was entered last), counting the busy time
// of a statement that ran and the cancel of one that waited.
void leave_all(shm::State* s, shm::BackendSlot* slot, int index, bool cancelled) {
  int service = slot->gate_service;
  if (service < 0) return;
  bool ran = slot->gate[shm::service_stage].state == shm::GateState::active &&
             slot->gate[shm::server_stage].state != shm::GateState::queued;
  TimestampTz since = slot->gate[shm::service_stage].since;
  bool waited = leave(s, slot, index, server_gate(s));
  GateRef own = service_gate(s, service);
  waited |= leave(s, slot, index, own);
  if (ran && !waited) {
    TimestampTz now = GetCurrentTimestamp();
    if (now > since) pg_atomic_fetch_add_u64(&own.gate->busy_us_sum, static_cast<uint64>(now - since));
  }
  if (cancelled && waited) pg_atomic_fetch_add_u64(&own.gate->queue_cancels_total, 1);
  slot->gate_service = shm::no_service;
}

void leave_at_exit(int, Datum) {
  shm::State* s = shm::state();
  shm::BackendSlot* slot = shm::my_slot();
  if (s && slot) leave_all(s, slot, shm::my_slot_index(), true);
}

enum class Outcome { admitted, timed_out };

// Waits for a permit. Plain C frame: cancel, statement_timeout and termination raise
// from CHECK_FOR_INTERRUPTS, and PG_CATCH leaves both gates before the error goes on.
Outcome wait_for_slot(shm::State* s, shm::BackendSlot* slot, int index, shm::GatePosition* position,
                      TimestampTz deadline) {
  volatile Outcome outcome = Outcome::admitted;
  PG_TRY();
  {
    for (;;) {
      pg_read_barrier();
      if (position->granted) break;
      long remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
      if (remaining <= 0) {
        outcome = Outcome::timed_out;
        break;
      }
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remaining, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    }
  }
  PG_CATCH();
  {
    leave_all(s, slot, index, true);
    PG_RE_THROW();
  }
  PG_END_TRY();
  return outcome;
}

// Takes a permit at one gate, waiting in its queue until the deadline. Returns false on
// timeout, having left the queue. A statement that must not wait takes a permit even
// beyond the limit, and says so in *past_limit.
bool pass(shm::State* s, shm::BackendSlot* slot, int index, const GateRef& ref, TimestampTz deadline,
          bool may_wait, bool* waited, bool* past_limit) {
  shm::GatePosition* position = &slot->gate[ref.stage];
  position->granted = false;
  position->next = shm::no_slot;
  if (!may_wait) {
    uint32 before = pg_atomic_fetch_add_u32(&ref.gate->active, 1);
    if (ref.max > 0 && before >= ref.max) *past_limit = true;
    position->state = shm::GateState::active;
    return true;
  }
  // Uncontended: nobody waits and a permit is free.
  if (pg_atomic_read_u32(&ref.gate->queued) == 0 && try_take(ref)) {
    position->state = shm::GateState::active;
    return true;
  }
  LWLockAcquire(ref.lock, LW_EXCLUSIVE);
  pg_atomic_fetch_add_u32(&ref.gate->queued, 1);  // announce first: see leave()
  if (ref.gate->queue_head == shm::no_slot && try_take(ref)) {
    pg_atomic_fetch_sub_u32(&ref.gate->queued, 1);
    LWLockRelease(ref.lock);
    position->state = shm::GateState::active;
    return true;
  }
  position->since = GetCurrentTimestamp();
  position->state = shm::GateState::queued;
  enqueue(s, ref, index);
  LWLockRelease(ref.lock);
  *waited = true;

  if (wait_for_slot(s, slot, index, position, deadline) == Outcome::timed_out) {
    LWLockAcquire(ref.lock, LW_EXCLUSIVE);
    bool granted = position->granted;  // a permit may have come at the last moment
    if (!granted) unlink(s, ref, index);
    LWLockRelease(ref.lock);
    position->granted = false;
    if (!granted) {
      position->state = shm::GateState::none;
      return false;
    }
  }
  position->granted = false;
  position->state = shm::GateState::active;
  return true;
}

// Raises the queue timeout (ERROR 53000). Plain buffers: ereport does not return.
[[noreturn]] void raise_timeout(const char* name, const GateRef& ref, TimestampTz since) {
  double waited = TimestampDifferenceMilliseconds(since, GetCurrentTimestamp()) / 1000.0;
  uint32 queued = pg_atomic_read_u32(&ref.gate->queued);
  if (ref.stage == shm::server_stage)
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                    errmsg("statement queue timeout for service \"%s\": the server's %u usher.max_active_total "
                           "slot(s) stayed busy for %.3f s",
                           name, ref.max, waited),
                    errdetail("%u other statement(s) were waiting at the server's gate.", queued),
                    errhint("Raise usher.max_active_total, this service's priority or its queue_timeout with "
                            "usher.set_service('%s', ...).",
                            name)));
  ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_RESOURCES),
                  errmsg("statement queue timeout for service \"%s\": its %u max_active slot(s) stayed busy for "
                         "%.3f s",
                         name, ref.max, waited),
                  errdetail("%u other statement(s) of the service were waiting.", queued),
                  errhint("Raise queue_timeout or max_active with usher.set_service('%s', ...), or lower the "
                          "concurrency of the service's clients.",
                          name)));
  pg_unreachable();
}

// A fast-path function call (libpq's PQfn) runs no statement of its own: the queries
// of the function it calls are the top-level statements the gate sees. The call is
// one transaction, so its first query takes the permit and the call keeps it to its end.
// Known from the activity state, which needs track_activities (on by default).
bool in_fast_path_call() { return MyBEEntry != nullptr && MyBEEntry->st_state == STATE_FASTPATH; }

}  // namespace

void acquire() {
  // Only the first statement of a transaction may wait. A later one may hold locks
  // (rows it wrote, LOCK TABLE, advisory locks) that running statements wait for:
  // queueing it behind them would deadlock until queue_timeout. It takes a permit
  // without waiting (counted in past_limit_total when the gate was full), so the
  // statements that wait see the load it adds. Noted for every top-level statement,
  // gated or not, so that a statement after an ungated one never waits either.
  static LocalTransactionId last_transaction = InvalidLocalTransactionId;
  LocalTransactionId transaction = pg::local_transaction_id();
  bool may_wait = transaction != last_transaction;
  last_transaction = transaction;

  shm::State* s = shm::state();
  int index = shm::my_slot_index();
  if (!settings::gate || s == nullptr || index == shm::no_slot) return;
  shm::BackendSlot* slot = &s->slots[index];
  int service = slot->service;
  if (service < 0 || slot->superuser || slot->gate_service != shm::no_service) return;
  shm::Service* entry = &s->services[service];
  if (entry->max_active == 0 && settings::max_active_total == 0) return;
  if (!exit_callback_registered) {
    before_shmem_exit(leave_at_exit, 0);
    exit_callback_registered = true;
  }
  char name[NAMEDATALEN];
  strlcpy(name, entry->name, NAMEDATALEN);
  slot->gate_service = service;
  slot->gate_priority = entry->priority;
  held_for_transaction = entry->gate_mode == shm::GateMode::transaction || in_fast_path_call();
  TimestampTz start = GetCurrentTimestamp();
  TimestampTz deadline = TimestampTzPlusMilliseconds(start, entry->queue_timeout_ms);
  bool waited = false;
  bool past_limit = false;

  // The service's gate counts every gated statement of the service (without a
  // max_active of its own it never queues), then the server's gate, if any.
  GateRef own = service_gate(s, service);
  if (!pass(s, slot, index, own, deadline, may_wait, &waited, &past_limit)) {
    slot->gate_service = shm::no_service;
    held_for_transaction = false;
    pg_atomic_fetch_add_u64(&own.gate->queue_timeouts_total, 1);
    raise_timeout(name, own, start);
  }
  if (settings::max_active_total > 0) {
    GateRef server = server_gate(s);
    if (!pass(s, slot, index, server, deadline, may_wait, &waited, &past_limit)) {
      leave(s, slot, index, own);
      slot->gate_service = shm::no_service;
      held_for_transaction = false;
      pg_atomic_fetch_add_u64(&own.gate->queue_timeouts_total, 1);
      raise_timeout(name, server, start);
    }
    pg_atomic_fetch_add_u64(&server.gate->admitted_total, 1);
    note_peak(server.gate);
  }
  // The statement runs from here: its busy time counts from now.
  TimestampTz now = waited ? GetCurrentTimestamp() : start;
  slot->gate[shm::service_stage].since = now;
  if (waited) record_wait(own.gate, start, now);
  if (past_limit) pg_atomic_fetch_add_u64(&own.gate->past_limit_total, 1);
  pg_atomic_fetch_add_u64(&own.gate->admitted_total, 1);
  note_peak(own.gate);
}

void release() {
  held_for_transaction = false;
  shm::State* s = shm::state();
  int index = shm::my_slot_index();
  if (s == nullptr || index == shm::no_slot) return;
  shm::BackendSlot* slot = &s->slots[index];
  if (slot->gate_service == shm::no_service) return;
  leave_all(s, slot, index, false);
}

void statement_ended() {
  if (!held_for_transaction) release();
}

void transaction_ended() { release(); }

void hold_until_transaction_end() {
  shm::BackendSlot* slot = shm::my_slot();
  if (slot != nullptr && slot->gate_service != shm::no_service) held_for_transaction = true;
}

void admit_waiters(shm::State* s, int service) {
  GateRef ref = service_gate(s, service);
  if (pg_atomic_read_u32(&ref.gate->queued) == 0) return;
  LWLockAcquire(ref.lock, LW_EXCLUSIVE);
  grant_waiters(s, ref);
  LWLockRelease(ref.lock);
}

void admit_server_waiters(shm::State* s) {
  GateRef ref = server_gate(s);
  if (pg_atomic_read_u32(&ref.gate->queued) == 0) return;
  LWLockAcquire(ref.lock, LW_EXCLUSIVE);
  grant_waiters(s, ref);
  LWLockRelease(ref.lock);
}

}  // namespace usher::gate
