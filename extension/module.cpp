// The module's entry: PG_MODULE_MAGIC and _PG_init. Loaded through
// shared_preload_libraries, pg_usher also sets up shared memory, the login hook and its
// background worker; loaded on first use, only the views and health checks work.
#include "admission.hpp"
#include "gate.hpp"
#include "guard.hpp"
#include "registry.hpp"
#include "semaphores.hpp"
#include "sampler.hpp"
#include "settings.hpp"
#include "shared_state.hpp"
#include "worker.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void _PG_init(void) {
  usher::guard([] {
    usher::settings::define();
    usher::sampler::install();
    if (process_shared_preload_libraries_in_progress) {
      usher::shm::install_hooks();
      usher::admission::install_hooks();
      usher::registry::install_hooks();
      usher::semaphores::install();
      usher::gate::install_hooks();
      usher::worker::register_worker();
    }
    // Last, once every module has defined its usher.* settings: reserving the prefix
    // drops placeholders read from postgresql.conf that are not defined yet.
    MarkGUCPrefixReserved("usher");
  });
}
}
