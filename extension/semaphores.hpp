// Application semaphores: named counting semaphores that applications take with
// usher.acquire and give back with usher.release (or automatically at transaction or
// session end). Definitions live in the table usher.semaphore of the database named by
// usher.database and are published to shared memory when a change commits and at
// server start. See docs/semaphores.md.
#pragma once

#include "publish_on_commit.hpp"

namespace usher::semaphores {

// Installs the DROP EXTENSION hook (the shared memory is semaphore_state's); from
// _PG_init while preloading.
void install_hooks();

// The semaphore definitions' publication (publish_on_commit.hpp): on commit of a
// change, as empty when DROP EXTENSION pg_usher commits, and at server start by the
// publisher worker (publish_now(): inside a transaction, in the registry database,
// with the extension installed).
extern PublishOnCommit publication;

}  // namespace usher::semaphores
