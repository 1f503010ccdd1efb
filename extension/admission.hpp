// Login admission: per-service connection quotas, reserved slots and the server's own
// capacity, enforced in ClientAuthentication_hook from shared memory alone (no
// database is chosen yet). Until the registry's first publication after a server
// start, logins of ordinary roles wait for it (usher.registry_wait).
#pragma once

#include "shared_state.hpp"

namespace usher::admission {

// Installs the login hook; from _PG_init while preloading.
void install_hooks();

// Counts the superusers admitted before the first publication under the service they
// belong to in the registry just published. Caller holds s->lock exclusively and has
// published the services and role mappings; never raises (it runs at commit). `counts`
// is scratch space for one count per service (allocated before commit).
void settle_provisional(shm::State* s, int32* counts);

// The publisher's runs at server start (worker.cpp). Never raise.
void note_publisher_starting();
void note_publisher_connected();  // connected to usher.database
void note_no_registry();          // pg_usher is not installed there: only 'default' applies
// After a run (`started`: the worker was started and has stopped): whether the
// registry is settled (published, or there is none); if not, the run counts as failed.
bool note_publisher_ended(bool started);

}  // namespace usher::admission
