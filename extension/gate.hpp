// The statement gate (admission control, part 2): at most max_active top-level
// statements of a service run at once, and at most usher.max_active_total of all
// services; the rest wait -- FIFO within a service, by priority between services at
// the server's limit -- up to the service's queue_timeout, interruptible by cancel and
// statement_timeout.
#pragma once

#include "shared_state.hpp"

namespace usher::gate {

// Installs the executor and utility hooks and the transaction callbacks; from _PG_init
// while preloading.
void install_hooks();

// The functions below run in the hooks' plain C frames: they keep only plain data on
// their stack and raise PostgreSQL errors (ereport, CHECK_FOR_INTERRUPTS) only, never
// a C++ exception.

// Takes a permit for this backend's top-level statement, waiting if the service is
// full; nothing when it already holds one (the statement, or in gate mode
// 'transaction' the transaction, took it). Returns without a permit when the statement
// is not gated (no service limit, superuser, gate off). Raises 53000 on queue timeout;
// cancel and statement_timeout raise as usual.
void acquire();

// The top-level statement ended: gives back the permit unless it is kept for the
// transaction. Idempotent: every end of a statement calls it, whichever comes first.
void statement_ended();

// The transaction ended (at top level): gives back the slot, whatever holds it.
void transaction_ended();

// Keeps the permit this backend holds until its transaction ends (a DECLARE ... WITH
// HOLD, whose query runs to completion at COMMIT).
void hold_until_transaction_end();

// Gives back this backend's slot, if it holds one, handing it to the longest waiter.
void release();

// Hands free permits of a service to its waiters (after its max_active was raised).
void admit_waiters(shm::State* s, int service);

// Hands free permits of the server's gate to its waiters, by this process's
// usher.max_active_total: the launcher calls it after a reload, so that raising the
// limit (or setting it to 0) admits waiting statements at once, not at the next release.
void admit_server_waiters(shm::State* s);

}  // namespace usher::gate
