// The statement gate's slots and queue. The uncontended path is two atomic operations
// on the service's counters; only a full service takes its gate lock, to queue. A
// releasing backend hands its slot directly to the longest waiter and sets that
// waiter's latch, so exactly one backend wakes per freed slot (a condition variable
// broadcast would wake every waiter of the service for each release).
#include "gate.hpp"

#include <string>

#include "guard.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/latch.h"
}

namespace usher::gate {

bool enabled = true;

namespace {

bool exit_callback_registered = false;

LWLock* gate_lock(shm::State* s, int service) { return &s->gate_locks[service].lock; }

// Takes a slot if one is free (never more than max).
bool try_take(shm::Gate* gate, uint32 max) {
  uint32 current = pg_atomic_read_u32(&gate->active);
  while (current < max)
    if (pg_atomic_compare_exchange_u32(&gate->active, &current, current + 1)) return true;
  return false;
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

void become_active(shm::BackendSlot* slot, shm::Gate* gate, int service) {
  slot->gate_service = service;
  slot->gate_since = GetCurrentTimestamp();
  slot->gate_state = shm::GateState::active;
  pg_atomic_fetch_add_u64(&gate->admitted_total, 1);
  note_peak(gate);
}

// Removes a slot from its service's queue (caller holds the gate lock).
void unlink(shm::State* s, shm::Gate* gate, int index) {
  int previous = shm::no_slot;
  for (int at = gate->queue_head; at != shm::no_slot; previous = at, at = s->slots[at].gate_next) {
    if (at != index) continue;
    int next = s->slots[at].gate_next;
    if (previous == shm::no_slot) gate->queue_head = next;
    else s->slots[previous].gate_next = next;
    if (gate->queue_tail == index) gate->queue_tail = previous;
    s->slots[at].gate_next = shm::no_slot;
    pg_atomic_fetch_sub_u32(&gate->queued, 1);
    return;
  }
}

// Grants free slots to the longest waiters (caller holds the gate lock).
void grant_waiters(shm::State* s, int service) {
  shm::Gate* gate = &s->services[service].gate;
  uint32 max = static_cast<uint32>(s->services[service].max_active);
  while (gate->queue_head != shm::no_slot) {
    // max_active 0 (the limit was removed): every waiter goes.
    if (max > 0 && !try_take(gate, max)) break;
    if (max == 0) pg_atomic_fetch_add_u32(&gate->active, 1);
    int waiter = gate->queue_head;
    shm::BackendSlot* slot = &s->slots[waiter];
    gate->queue_head = slot->gate_next;
    if (gate->queue_head == shm::no_slot) gate->queue_tail = shm::no_slot;
    slot->gate_next = shm::no_slot;
    pg_atomic_fetch_sub_u32(&gate->queued, 1);
    pg_write_barrier();
    slot->gate_granted = true;
    SetLatch(shm::latch_of(waiter));
  }
}

// Leaves the gate on any way out of a wait or a statement: a queued backend leaves the
// queue, an active one (also one granted a slot while it was being cancelled) gives it
// back.
void leave(shm::State* s, shm::BackendSlot* slot, int index, bool cancelled) {
  int service = slot->gate_service;
  if (service < 0) return;
  shm::Gate* gate = &s->services[service].gate;
  if (slot->gate_state == shm::GateState::queued) {
    LWLockAcquire(gate_lock(s, service), LW_EXCLUSIVE);
    bool granted = slot->gate_granted;
    if (!granted) unlink(s, gate, index);
    LWLockRelease(gate_lock(s, service));
    if (cancelled) pg_atomic_fetch_add_u64(&gate->queue_cancels_total, 1);
    slot->gate_state = granted ? shm::GateState::active : shm::GateState::none;
    slot->gate_granted = false;
    if (!granted) return;
  }
  if (slot->gate_state != shm::GateState::active) return;
  TimestampTz now = GetCurrentTimestamp();
  if (now > slot->gate_since) pg_atomic_fetch_add_u64(&gate->busy_us_sum, static_cast<uint64>(now - slot->gate_since));
  slot->gate_state = shm::GateState::none;
  // A full barrier: a waiter that announced itself (queued + 1) before this decrement is
  // seen below, and one that announces itself after it sees the free slot.
  pg_atomic_fetch_sub_u32(&gate->active, 1);
  if (pg_atomic_read_u32(&gate->queued) > 0) {
    LWLockAcquire(gate_lock(s, service), LW_EXCLUSIVE);
    grant_waiters(s, service);
    LWLockRelease(gate_lock(s, service));
  }
}

void leave_at_exit(int, Datum) {
  shm::State* s = shm::state();
  shm::BackendSlot* slot = shm::my_slot();
  if (s && slot) leave(s, slot, shm::my_slot_index(), true);
}

enum class WaitOutcome { admitted, timed_out };

// Waits for a slot. Plain C frame: cancel, statement_timeout and termination raise
// from CHECK_FOR_INTERRUPTS, and PG_CATCH leaves the queue before the error goes on.
WaitOutcome wait_for_slot(shm::State* s, shm::BackendSlot* slot, int index, int timeout_ms) {
  TimestampTz deadline = TimestampTzPlusMilliseconds(slot->gate_since, timeout_ms);
  volatile WaitOutcome outcome = WaitOutcome::admitted;
  PG_TRY();
  {
    for (;;) {
      pg_read_barrier();
      if (slot->gate_granted) break;
      long remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
      if (remaining <= 0) {
        outcome = WaitOutcome::timed_out;
        break;
      }
      (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remaining, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    }
  }
  PG_CATCH();
  {
    leave(s, slot, index, true);
    PG_RE_THROW();
  }
  PG_END_TRY();
  return outcome;
}

[[noreturn]] void raise_timeout(const shm::Service& service, int waited_ms, uint32 queued) {
  char waited[32];
  snprintf(waited, sizeof waited, "%.3f", waited_ms / 1000.0);
  throw Error(ERRCODE_INSUFFICIENT_RESOURCES,
              "statement queue timeout for service \"" + std::string(service.name) + "\": its " +
                  std::to_string(service.max_active) + " max_active slot(s) stayed busy for " + waited + " s",
              std::to_string(queued) + " other statement(s) of the service were waiting.",
              "Raise queue_timeout or max_active with usher.set_service('" + std::string(service.name) +
                  "', ...), or lower the concurrency of the service's clients.");
}

}  // namespace

void acquire() {
  shm::State* s = shm::state();
  int index = shm::my_slot_index();
  if (!enabled || s == nullptr || index == shm::no_slot) return;
  shm::BackendSlot* slot = &s->slots[index];
  int service = slot->service;
  if (service < 0 || slot->superuser || slot->gate_state != shm::GateState::none) return;
  shm::Service* entry = &s->services[service];
  uint32 max = static_cast<uint32>(entry->max_active);
  if (max == 0) return;
  shm::Gate* gate = &entry->gate;
  if (!exit_callback_registered) {
    before_shmem_exit(leave_at_exit, 0);
    exit_callback_registered = true;
  }

  // Uncontended: nobody waits and a slot is free.
  if (pg_atomic_read_u32(&gate->queued) == 0 && try_take(gate, max)) {
    become_active(slot, gate, service);
    return;
  }

  LWLockAcquire(gate_lock(s, service), LW_EXCLUSIVE);
  pg_atomic_fetch_add_u32(&gate->queued, 1);  // announce first: see leave()
  if (gate->queue_head == shm::no_slot && try_take(gate, max)) {
    pg_atomic_fetch_sub_u32(&gate->queued, 1);
    LWLockRelease(gate_lock(s, service));
    become_active(slot, gate, service);
    return;
  }
  slot->gate_service = service;
  slot->gate_granted = false;
  slot->gate_next = shm::no_slot;
  slot->gate_since = GetCurrentTimestamp();
  slot->gate_state = shm::GateState::queued;
  if (gate->queue_tail == shm::no_slot) gate->queue_head = index;
  else s->slots[gate->queue_tail].gate_next = index;
  gate->queue_tail = index;
  LWLockRelease(gate_lock(s, service));

  TimestampTz queued_since = slot->gate_since;
  int timeout_ms = entry->queue_timeout_ms;
  if (wait_for_slot(s, slot, index, timeout_ms) == WaitOutcome::timed_out) {
    LWLockAcquire(gate_lock(s, service), LW_EXCLUSIVE);
    bool granted = slot->gate_granted;  // a slot may have come at the last moment
    if (!granted) unlink(s, gate, index);
    uint32 still_queued = pg_atomic_read_u32(&gate->queued);
    LWLockRelease(gate_lock(s, service));
    slot->gate_granted = false;
    if (!granted) {
      slot->gate_state = shm::GateState::none;
      pg_atomic_fetch_add_u64(&gate->queue_timeouts_total, 1);
      raise_timeout(*entry, timeout_ms, still_queued);
    }
  }
  slot->gate_granted = false;
  TimestampTz now = GetCurrentTimestamp();
  record_wait(gate, queued_since, now);
  become_active(slot, gate, service);
  // become_active counted the admission; the granter already took the slot.
}

void release() {
  shm::State* s = shm::state();
  int index = shm::my_slot_index();
  if (s == nullptr || index == shm::no_slot) return;
  shm::BackendSlot* slot = &s->slots[index];
  if (slot->gate_state == shm::GateState::none) return;
  leave(s, slot, index, false);
}

void admit_waiters(shm::State* s, int service) {
  if (pg_atomic_read_u32(&s->services[service].gate.queued) == 0) return;
  LWLockAcquire(gate_lock(s, service), LW_EXCLUSIVE);
  grant_waiters(s, service);
  LWLockRelease(gate_lock(s, service));
}

}  // namespace usher::gate
