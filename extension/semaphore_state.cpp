#include "semaphore_state.hpp"

#include "guard.hpp"
#include "settings.hpp"
#include "shmem_hooks.hpp"
#include "shared_state.hpp"

extern "C" {
#include "access/twophase.h"
#include "storage/latch.h"
}

namespace usher::sem {

namespace {

constexpr const char* tranche_name = "pg_usher semaphores";
State* attached = nullptr;

// The segment: State, then the semaphores, then one Slot per PGPROC.
Size layout(State* s) {
  return shm::SegmentLayout(s)
      .array(&State::semaphores, settings::max_semaphores)
      .array(&State::slots, shm::proc_slot_count())
      .size();
}

void init(State* s) {
  s->lock = &GetNamedLWLockTranche(tranche_name)[0].lock;
  s->capacity = settings::max_semaphores;
  s->slot_count = shm::proc_slot_count();
  for (int i = 0; i < s->capacity; i++) s->semaphores[i].queue_head = s->semaphores[i].queue_tail = none;
  for (int i = 0; i < s->slot_count; i++) {
    Slot* slot = &s->slots[i];
    for (auto& holding : slot->holdings) holding.semaphore = none;
    slot->wait_state = WaitState::idle;
    slot->wait_semaphore = none;
    slot->wait_next = none;
  }
}

constexpr shm::Segment<State> segment{tranche_name, [] { return 1; }, layout, init, &attached};

void settle(State* s, int index, WaitState outcome) {
  Slot* slot = &s->slots[index];
  slot->wait_state = outcome;
  SetLatch(&ProcGlobal->allProcs[index].procLatch);
}

}  // namespace

void install_hooks() {
  shm::add_segment<segment>();
}

State* state() { return attached; }

// Both segments exist exactly when pg_usher is preloaded: the same 55000 and HINT.
State* require(const char* feature) {
  shm::require(feature);
  return attached;
}

int my_index() { return attached == nullptr ? none : shm::my_slot_index(); }

int find(const State* s, const char* name, bool include_unlisted) {
  for (int i = 0; i < s->capacity; i++) {
    const Semaphore* semaphore = &s->semaphores[i];
    if (semaphore->in_use && (semaphore->listed || include_unlisted) && strcmp(semaphore->name, name) == 0)
      return i;
  }
  return none;
}

Holding* holding_of(Slot* slot, int semaphore, bool allocate) {
  for (auto& holding : slot->holdings)
    if (holding.semaphore == semaphore) return &holding;
  if (!allocate) return nullptr;
  for (auto& holding : slot->holdings)
    if (holding.semaphore == none) {
      holding.semaphore = semaphore;
      holding.permits = 0;
      return &holding;
    }
  return nullptr;
}

void tidy_holding(Slot* slot, Holding* holding) {
  if (holding == nullptr || holding->permits > 0) return;
  if (slot->wait_state == WaitState::waiting && slot->wait_semaphore == holding->semaphore) return;
  holding->semaphore = none;
  holding->permits = 0;
}

void serve_queue(State* s, int index) {
  Semaphore* semaphore = &s->semaphores[index];
  while (semaphore->queue_head != none) {
    int head = semaphore->queue_head;
    Slot* waiter = &s->slots[head];
    WaitState outcome;
    if (!semaphore->listed) {
      outcome = WaitState::refused_dropped;
    } else if (semaphore->capacity > 0 && waiter->wait_permits > semaphore->capacity) {
      outcome = WaitState::refused_capacity;
    } else if (fits(semaphore->held, waiter->wait_permits, semaphore->capacity)) {
      outcome = WaitState::granted;
    } else {
      break;  // strict FIFO: nobody overtakes the head
    }
    semaphore->queue_head = waiter->wait_next;
    if (semaphore->queue_head == none) semaphore->queue_tail = none;
    waiter->wait_next = none;
    semaphore->waiters--;
    Holding* holding = holding_of(waiter, index, false);
    if (outcome == WaitState::granted && holding != nullptr) {
      holding->permits += waiter->wait_permits;
      semaphore->held += waiter->wait_permits;
      semaphore->peak_held = Max(semaphore->peak_held, semaphore->held);
      semaphore->acquired_total++;
    }
    settle(s, head, outcome);
    if (outcome != WaitState::granted) tidy_holding(waiter, holding);
  }
  reclaim_if_unused(semaphore);
}

void dequeue(State* s, int index) {
  Slot* slot = &s->slots[index];
  Semaphore* semaphore = &s->semaphores[slot->wait_semaphore];
  int previous = none;
  for (int at = semaphore->queue_head; at != none; previous = at, at = s->slots[at].wait_next) {
    if (at != index) continue;
    if (previous == none)
      semaphore->queue_head = slot->wait_next;
    else
      s->slots[previous].wait_next = slot->wait_next;
    if (semaphore->queue_tail == index) semaphore->queue_tail = previous;
    semaphore->waiters--;
    break;
  }
  slot->wait_next = none;
  slot->wait_state = WaitState::idle;
}

void give_back(State* s, Slot* slot, int index, int permits) {
  Holding* holding = holding_of(slot, index, false);
  if (holding == nullptr) return;
  permits = Min(permits, holding->permits);
  holding->permits -= permits;
  s->semaphores[index].held -= permits;
  tidy_holding(slot, holding);
  serve_queue(s, index);
}

void reclaim_if_unused(Semaphore* semaphore) {
  if (semaphore->in_use && !semaphore->listed && semaphore->held == 0 && semaphore->waiters == 0) {
    memset(semaphore, 0, sizeof(Semaphore));
    semaphore->queue_head = semaphore->queue_tail = none;
  }
}

}  // namespace usher::sem
