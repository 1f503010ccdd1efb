// The activity sampler: every usher.sample_interval the launcher worker records, per
// service, connected sessions, active and queued statements and the gate's cumulative
// counters into a ring buffer in a shared-memory segment of its own (named LWLock
// tranche "pg_usher sampler"). usher.activity_history reads it; usher.pool_advice()
// builds on it.
#pragma once

#include "pg_includes.hpp"

extern "C" {
#include "storage/lwlock.h"
}

namespace usher::sampler {

// One service at one tick. incarnation 0: the entry was not sampled at that tick.
struct Row {
  uint32 incarnation;
  int32 connected;
  int32 active;
  int32 queued;
  uint64 admitted_total;  // the gate's cumulative counters, for rates
  uint64 busy_us_sum;
};

// A service entry under one name with counters that only grew. A new incarnation
// starts when an entry is reused for another name or its counters were reset, so
// histories and rates of different services never mix.
struct Incarnation {
  uint32 id;  // 0: free
  int32 entry;
  char name[NAMEDATALEN];
};

// What the sampler saw last in each service entry.
struct EntryState {
  uint32 incarnation;
  char name[NAMEDATALEN];
  uint64 admitted_total;
  uint64 busy_us_sum;
};

struct Ring {
  LWLock* lock;
  int32 capacity;              // ticks kept (usher.history_samples)
  int32 services;              // rows per tick (usher.max_services)
  int32 incarnation_capacity;
  uint64 ticks;                // ticks taken since shared memory was set up
  uint32 next_incarnation;
  TimestampTz* tick_at;        // [capacity]
  Row* rows;                   // [capacity * services]
  Incarnation* incarnations;   // [incarnation_capacity], by id % capacity
  EntryState* entries;         // [services]
};

// Adds the ring's shared-memory part (sized by usher.history_samples); from _PG_init
// while preloading.
void install_hooks();

// The attached ring, or nullptr when pg_usher was not preloaded.
Ring* ring();

// usher.sample_interval in milliseconds.
int interval_ms();

// Takes one sample (the launcher worker). Never raises; holds only plain data.
void take_sample();

// usher.cpu_cores, or the cores sysconf reports when it is 0. `source` names which.
int cpu_cores(const char** source);

}  // namespace usher::sampler
