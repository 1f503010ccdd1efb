// Publishing a table to shared memory when the transaction that changed it commits,
// never on rollback. The service registry (registry.cpp) and the semaphore definitions
// (semaphore_definitions.cpp) both work this way; this is the transaction-callback half
// they share. Each says how to read its table and copy it into shared memory.
//
// Shared memory cannot be rolled back and every backend reads it, so it must only ever
// hold what has committed. Hence two steps:
//  * at PRE_COMMIT, still inside the transaction (where an error can still abort it),
//    the table is read through SPI into plain data in TopMemoryContext;
//  * at COMMIT, after the commit record is written (where nothing may fail), that plain
//    data is copied into shared memory.
// On abort whatever was read is thrown away. PREPARE TRANSACTION is refused: a prepared
// transaction commits later in another backend, which would not publish it.
// Subtransactions need nothing of their own: the read at PRE_COMMIT sees exactly what
// survived rolled-back savepoints.
#pragma once

#include "pg_includes.hpp"

namespace usher {

// Whether this backend is connected to the database named by usher.database: only its
// tables are published.
bool in_registry_database();

// One published table. Define it at namespace scope, constant-initialised (plain data
// and function pointers, nothing to destroy), and call mark_changed() from the table's
// trigger, mark_dropped() when DROP EXTENSION pg_usher runs.
struct PublishOnCommit {
  // Whether this backend is attached to the shared memory the table is published to.
  bool (*attached)();
  // Reads what is about to commit, into TopMemoryContext. It is given the latest
  // snapshot: the table's writer functions lock it first (SHARE ROW EXCLUSIVE), so
  // writers are serialised and that snapshot sees every change committed before ours.
  void* (*read)(::Snapshot snapshot);
  // What DROP EXTENSION pg_usher publishes when it commits: an empty table, in
  // TopMemoryContext.
  void* (*empty)();
  // Copies what was read into shared memory. Runs after commit, so it must not raise.
  // Returns how many entries did not fit.
  int (*publish)(const void* pending);
  void (*free)(void* pending);

  // The WARNING when entries did not fit: "pg_usher: <n> <entries> could not be
  // published: <limit> is full", with full_hint as its HINT.
  const char* entries;
  const char* limit;
  const char* full_hint;
  // The ERROR message (0A000) for PREPARE TRANSACTION after a change.
  const char* prepare_refusal;

  // This backend's current transaction; reset when it ends.
  bool changed = false;
  bool dropped = false;  // DROP EXTENSION pg_usher in this transaction
  void* pending = nullptr;
  bool registered = false;  // the transaction callback, registered once per backend

  // Registers the transaction callback, the first time in this backend.
  void watch();
  // The table changed in this transaction: publish it when the transaction commits.
  void mark_changed() {
    watch();
    changed = true;
  }
  // DROP EXTENSION pg_usher in this transaction: publish an empty table at commit.
  void mark_dropped() {
    watch();
    changed = dropped = true;
  }
};

}  // namespace usher
