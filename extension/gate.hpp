// The statement gate (admission control, part 2): at most max_active top-level
// statements of a service run at once, and at most usher.max_active_total of all
// services; the rest wait -- FIFO within a service, by priority between services at
// the server's limit -- up to the service's queue_timeout, interruptible by cancel and
// statement_timeout.
#pragma once

#include "shared_state.hpp"

namespace usher::gate {

// usher.gate: the server-wide switch (on by default).
extern bool enabled;

// usher.max_active_total: statements of all services at once (0: no server-wide limit).
// Waiters at this gate go by their service's priority, then in arrival order.
extern int max_active_total;

// Installs the executor and utility hooks and the transaction callbacks; from _PG_init
// while preloading.
void install_hooks();

// Takes a slot for this backend's statement, waiting if the service is full. Returns
// without a slot when the statement is not gated (no service limit, superuser, gate
// off). Raises 53000 on queue timeout; cancel and statement_timeout raise as usual.
void acquire();

// Gives back this backend's slot, if it holds one, handing it to the longest waiter.
// Idempotent: every end of a statement calls it, whichever comes first.
void release();

// Hands free slots of a service to its waiters (after its max_active was raised).
void admit_waiters(shm::State* s, int service);

// Hands free slots of the server's gate to its waiters, by this process's
// usher.max_active_total: the launcher calls it after a reload, so that raising the
// limit (or setting it to 0) admits waiting statements at once, not at the next release.
void admit_server_waiters(shm::State* s);

}  // namespace usher::gate
