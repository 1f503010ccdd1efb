// Publishing a table to shared memory when the transaction that changed it commits,
// never on rollback. The service registry (registry.cpp) and the semaphore definitions
// (semaphore_definitions.cpp) both work this way; this is everything they share: the
// transaction callback, the DROP EXTENSION hook, the check that the table may be
// changed here, the trigger's body and the publication at server start. Each says how
// to read its table (spi::read_rows) and copy it into shared memory.
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
// and function pointers, nothing to destroy), call install() from _PG_init while
// preloading, on_trigger() from the table's statement trigger and check_writable()
// from its writer functions. DROP EXTENSION pg_usher is noticed by one hook for every
// installed publication, which then publishes each as empty when the drop commits.
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
  // The LOG line of publish_now(): what was published from which database.
  void (*report)(const void* pending, int skipped);

  // The WARNING when entries did not fit: "pg_usher: <n> <entries> could not be
  // published: <limit> is full", with full_hint as its HINT (at server start:
  // "... did not fit in <limit>", "Raise <limit> and restart the server.").
  const char* entries;
  const char* limit;
  const char* full_hint;
  // The ERROR message (0A000) for PREPARE TRANSACTION after a change.
  const char* prepare_refusal;

  // Where the table may be changed: only in the registry database, with pg_usher
  // preloaded. check_writable() raises 55000 "<feature> needs pg_usher in
  // shared_preload_libraries" without it, and elsewhere
  //   <published_from> "<registry db>", not "<this db>"
  //   HINT: <change_in> "<registry db>"<change_in_hint>
  // A change made elsewhere anyway (direct DML) is published nowhere; the trigger says so:
  //   WARNING: pg_usher <publishes_what> of database "<registry db>", not this one
  //   HINT: <change_in> "<registry db>"<warning_hint>
  const char* feature;
  const char* published_from;
  const char* change_in;
  const char* change_in_hint;
  const char* publishes_what;
  const char* warning_hint;
  // The name of the trigger function, for the error when it is called otherwise.
  const char* trigger_function;

  // This backend's current transaction; reset when it ends.
  bool changed = false;
  bool dropped = false;  // DROP EXTENSION pg_usher in this transaction
  void* pending = nullptr;
  bool registered = false;  // the transaction callback, registered once per backend

  // Adds the table to those published as empty when DROP EXTENSION pg_usher commits
  // (the one object-access hook is installed with the first). From _PG_init.
  void install();
  // The body of the table's statement trigger: publish when this transaction commits.
  // Throws usher::Error when not called as a trigger.
  Datum on_trigger(FunctionCallInfo fcinfo);
  // The check the table's writer functions start with (see above). Throws usher::Error.
  void check_writable() const;
  // Reads the table with the active snapshot and publishes it at once, with its LOG
  // line (the publisher worker at server start, inside its transaction). Plain C.
  void publish_now();

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
