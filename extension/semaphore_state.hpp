// Shared memory of the application semaphores (usher.acquire / usher.release): the
// published definitions with their permits in use and a FIFO queue of waiters, and per
// PGPROC the permits that backend holds and the request it waits on. One segment of its
// own ("pg_usher semaphores") and one LWLock from the tranche of the same name guard
// all of it: semaphores are taken per transaction or per job, not per row.
//
// Everything here is plain data; nothing in this header raises.
#pragma once

#include "pg_includes.hpp"

extern "C" {
#include "storage/lwlock.h"
}

namespace usher::sem {

constexpr int none = -1;
// A backend holds permits of at most this many different semaphores at once.
constexpr int holdings_per_backend = 16;

// Where a queued request stands. Written by the waiter (enqueue, give up) and by any
// backend that hands out permits (grant, refuse), always under the lock.
enum class WaitState : uint8 {
  idle,
  waiting,
  granted,            // permits were added to the waiter's holding
  refused_dropped,    // the semaphore was dropped while waiting
  refused_capacity,   // its capacity was lowered below the request
};

struct Semaphore {
  bool in_use;   // entry allocated (listed, or still held / waited on after a drop)
  bool listed;   // in the definitions published now
  char name[NAMEDATALEN];
  int32 capacity;
  int32 held;       // permits held, all backends
  int32 waiters;    // requests queued
  int32 peak_held;  // most permits ever held at once (since the entry was allocated)
  int32 queue_head; // PGPROC index of the oldest waiter, or none
  int32 queue_tail;
  uint64 acquired_total;  // successful acquire() calls
  uint64 timeouts_total;  // acquire() calls that returned false
};

struct Holding {
  int32 semaphore;  // index, or none (free)
  int32 permits;
};

struct Slot {
  Holding holdings[holdings_per_backend];
  // The request this backend waits on (at most one at a time).
  volatile WaitState wait_state;
  int32 wait_semaphore;
  int32 wait_permits;
  int32 wait_next;  // next waiter in the same queue, or none
};

struct State {
  LWLock* lock;
  int32 capacity;    // usher.max_semaphores
  int32 slot_count;  // one per PGPROC
  bool published;    // definitions published since shared memory was set up
  uint64 publications;
  Semaphore* semaphores;
  Slot* slots;
};

// Adds the semaphores' shared-memory part (sized by usher.max_semaphores); from
// _PG_init while preloading.
void install_hooks();

// The attached state, or nullptr when pg_usher was not preloaded.
State* state();

// The state, or ERROR 55000 with a HINT to preload pg_usher, naming `feature`.
State* require(const char* feature);

// This backend's PGPROC index, or none.
int my_index();

// Whether `permits` more fit beside the `held` ones within `capacity`. Computed in 64
// bits: held + permits can pass INT32_MAX (two requests of 1.5 billion against a
// capacity of 2 billion), and a wrapped sum would grant what does not fit. Every grant
// goes through here, so held never exceeds the capacity it was granted under, and a
// holding, the local log and held itself all stay within int4.
inline bool fits(int32 held, int32 permits, int32 capacity) {
  return static_cast<int64>(held) + static_cast<int64>(permits) <= static_cast<int64>(capacity);
}

// Under the lock (exclusive unless stated):
// A listed semaphore by name, or none. (`include_unlisted`: also dropped entries still
// in use.)
int find(const State* s, const char* name, bool include_unlisted);
// The holding of `semaphore` in `slot`, or nullptr; `allocate` takes a free one.
Holding* holding_of(Slot* slot, int semaphore, bool allocate);
// Frees a holding with no permits, unless the slot still waits on its semaphore.
void tidy_holding(Slot* slot, Holding* holding);
// Hands permits to the waiters at the head of the queue while they fit (strict FIFO),
// refuses waiters the semaphore can no longer serve, and wakes each one it settles.
void serve_queue(State* s, int semaphore);
// Removes the waiter `index` from its semaphore's queue (it must be queued).
void dequeue(State* s, int index);
// Gives back `permits` of `semaphore` held in `slot`, then serves the queue.
void give_back(State* s, Slot* slot, int semaphore, int permits);
// Frees an entry no longer listed once nothing holds or waits on it.
void reclaim_if_unused(Semaphore* semaphore);

}  // namespace usher::sem
