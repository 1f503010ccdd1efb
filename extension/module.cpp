// The module's entry: PG_MODULE_MAGIC and _PG_init. Loading pg_usher through
// shared_preload_libraries is needed only by features that use shared memory and hooks;
// the views and health checks work in a library loaded on first use.
#include "guard.hpp"
#include "settings.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

void _PG_init(void) {
  usher::guard([] { usher::settings::define(); });
}
}
