// pg_usher's background workers: a launcher that lives with the server and, at every
// start (also after a crash restart), a short-lived publisher that connects to
// usher.database and publishes the service registry to shared memory.
#pragma once

namespace usher::worker {

// Registers the launcher (the hook into the postmaster's worker start-up); from
// _PG_init while preloading.
void install_hooks();

}  // namespace usher::worker
