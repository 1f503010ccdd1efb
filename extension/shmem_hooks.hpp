// One place that chains pg_usher's shared-memory parts (the registry and slots, the
// semaphores, the sampler's ring) into PostgreSQL's shmem_request_hook and
// shmem_startup_hook, so each part only says what it needs and how to set it up.
#pragma once

namespace usher::shm {

// Registers a part's request (RequestAddinShmemSpace, RequestNamedLWLockTranche) and
// startup (ShmemInitStruct) functions; called from _PG_init while preloading. Parts
// are requested and started in registration order, after any earlier library's hooks.
void add_shmem_part(void (*request)(), void (*startup)());

// One slot per PGPROC: regular backends, auxiliary processes and prepared-transaction
// dummies, the same count as ProcGlobal->allProcCount.
int proc_slot_count();

}  // namespace usher::shm
