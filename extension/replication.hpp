// Replication, seen from this node: what usher.replication_status() needs beyond
// PostgreSQL's own functions, and the standby's registry follower.
//
// * The replay catch-up time. A standby's replay lag in time is 0 while everything it
//   has received is replayed; otherwise it counts from the later of the last replayed
//   commit's timestamp and the last moment replay was seen caught up (every
//   usher.sample_interval, by the launcher: note_replay_position()). The time since the
//   last replayed commit alone would count an idle primary's quiet hours as lag the
//   moment a new write arrives (docs/replicas.md).
// * The registry follower (worker.cpp runs it): a standby cannot run the commit
//   callback of the primary's transactions, so while the server is in recovery a
//   worker connected to usher.database re-publishes the registry and the semaphore
//   definitions whenever the replayed tables change (fingerprint()), and once more,
//   under the writers' lock, when the standby is promoted.
#pragma once

#include "pg_includes.hpp"

namespace usher::replication {

// Adds the shared-memory part (the catch-up time); from _PG_init while preloading.
void install_hooks();

// On a standby: notes the time if replay has caught up with what was received. The
// launcher, at every sample. Plain C, never raises.
void note_replay_position();

// The last time replay was seen caught up (0: never, or not a standby / not preloaded).
TimestampTz replay_caught_up_at();

}  // namespace usher::replication
