// The module's entry: PG_MODULE_MAGIC and _PG_init. Loaded through
// shared_preload_libraries, pg_usher also sets up shared memory, the login hook and its
// background worker; loaded on first use, only the views and health checks work.
#include "admission.hpp"
#include "gate.hpp"
#include "guard.hpp"
#include "registry.hpp"
#include "replication.hpp"
#include "sampler.hpp"
#include "semaphore_state.hpp"
#include "semaphores.hpp"
#include "settings.hpp"
#include "shared_state.hpp"
#include "worker.hpp"

namespace {

// What each module hooks into the server when pg_usher is preloaded -- PostgreSQL's
// hooks, callbacks, a shared-memory part (shmem_hooks.hpp), a background worker --
// all through one verb, install_hooks(), called in this order. Shared-memory parts are
// requested and set up in the order they are added here.
constexpr void (*preloaded_modules[])() = {
    usher::sampler::install_hooks,     // the sampler's ring
    usher::replication::install_hooks, // the standby's replay catch-up time
    usher::shm::install_hooks,         // the registry, backend slots and gates
    usher::admission::install_hooks,   // ClientAuthentication_hook
    usher::registry::install_hooks,    // DROP EXTENSION of the registry
    usher::sem::install_hooks,         // the semaphores' shared memory
    usher::semaphores::install_hooks,  // DROP EXTENSION of the semaphores
    usher::gate::install_hooks,        // planner, executor and utility hooks
    usher::worker::install_hooks,      // the launcher background worker
};

}  // namespace

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void _PG_init(void) {
  usher::guard([] {
    // Every usher.* setting first, before any hook can read one.
    usher::settings::define();
    // Reserving the prefix drops every usher.* setting read from postgresql.conf that
    // no definition claimed (a misspelling), with a WARNING.
    MarkGUCPrefixReserved("usher");
    if (!process_shared_preload_libraries_in_progress) return;
    for (auto install_hooks : preloaded_modules) install_hooks();
  });
}
}
