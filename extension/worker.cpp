#include "worker.hpp"

#include "admission.hpp"
#include "gate.hpp"
#include "guard.hpp"
#include "registry.hpp"
#include "replication.hpp"
#include "semaphores.hpp"
#include "sampler.hpp"
#include "settings.hpp"
#include "shared_state.hpp"
#include "spi.hpp"

extern "C" {
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "nodes/makefuncs.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procsignal.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void usher_launcher_main(Datum);
PGDLLEXPORT void usher_publisher_main(Datum);
PGDLLEXPORT void usher_follower_main(Datum);
}

// Two workers. The launcher holds no database connection and lives as long as the
// server: the postmaster starts it again after a crash restart (it forgets workers that
// exit), and at every start it launches the publisher. The publisher connects to
// usher.database, publishes the registry into the fresh shared memory, and exits, so
// no connection to that database is held (DROP DATABASE and pg_regress stay possible).
namespace usher::worker {

namespace {

void fill_common(BackgroundWorker* worker, const char* function, const char* name) {
  strlcpy(worker->bgw_library_name, "pg_usher", BGW_MAXLEN);
  strlcpy(worker->bgw_function_name, function, BGW_MAXLEN);
  strlcpy(worker->bgw_name, name, BGW_MAXLEN);
  strlcpy(worker->bgw_type, name, BGW_MAXLEN);
}

bool extension_installed() {
  struct Found {
    bool found;
  };
  constexpr spi::Column columns[] = {{spi::Column::boolean, offsetof(Found, found)}};
  Found* rows;
  // The database's (or the bootstrap superuser's) search_path is not ours: read_rows
  // pins it.
  int count = spi::read_rows("SELECT true FROM pg_catalog.pg_extension WHERE extname = 'pg_usher'", InvalidOid,
                             GetActiveSnapshot(), CurrentMemoryContext, columns, &rows);
  return count == 1;
}

void publish() {
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(settings::database, nullptr, 0);
  admission::note_publisher_connected();
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  if (extension_installed()) {
    registry::publication.publish_now();
    semaphores::publication.publish_now();
  } else {
    ereport(LOG, (errmsg("pg_usher: extension not installed in database \"%s\"; only service \"default\" is in force",
                         settings::database),
                  errhint("Run CREATE EXTENSION pg_usher in database \"%s\", or set usher.database.",
                          settings::database)));
    admission::note_no_registry();
  }
  PopActiveSnapshot();
  CommitTransactionCommand();
}

// Starts a worker of the launcher's that connects to usher.database, runs once (never
// restarted) and reports its exit to the launcher.
bool start_connected_worker(const char* function, const char* name, BackgroundWorkerHandle** handle) {
  BackgroundWorker worker{};
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_ConsistentState;
  worker.bgw_restart_time = BGW_NEVER_RESTART;
  worker.bgw_notify_pid = MyProcPid;
  fill_common(&worker, function, name);
  return RegisterDynamicBackgroundWorker(&worker, handle);
}

// Starts the publisher and waits for it to finish; false if it could not be started.
bool launch_publisher() {
  BackgroundWorkerHandle* handle;
  if (!start_connected_worker("usher_publisher_main", "pg_usher publisher", &handle)) {
    ereport(WARNING, (errmsg("pg_usher: could not start the registry publisher"),
                      errhint("Raise max_worker_processes; the registry is published at the next change.")));
    return false;
  }
  if (WaitForBackgroundWorkerShutdown(handle) != BGWH_STOPPED)
    ereport(WARNING, (errmsg("pg_usher: the registry publisher did not finish")));
  return true;
}

// The standby's registry follower (replication.hpp). A fingerprint of the three
// published tables: every live row's (ctid, xmin), which any replayed INSERT, UPDATE or
// DELETE changes ('' when the extension is not installed). VACUUM FULL changes it too,
// which only publishes the same registry again.
struct Fingerprint {
  char text[NAMEDATALEN];
};

Fingerprint fingerprint(bool installed) {
  Fingerprint none{};
  if (!installed) return none;
  constexpr spi::Column columns[] = {{spi::Column::name, offsetof(Fingerprint, text)}};
  Fingerprint* rows;
  int count = spi::read_rows(
      "SELECT pg_catalog.md5(pg_catalog.concat_ws('/', "
      "(SELECT pg_catalog.string_agg(ctid::text || xmin::text, ',' ORDER BY ctid) FROM usher.service), "
      "(SELECT pg_catalog.string_agg(ctid::text || xmin::text, ',' ORDER BY ctid) FROM usher.role_service), "
      "(SELECT pg_catalog.string_agg(ctid::text || xmin::text, ',' ORDER BY ctid) FROM usher.semaphore)))",
      InvalidOid, GetActiveSnapshot(), CurrentMemoryContext, columns, &rows);
  return count == 1 ? rows[0] : none;
}

// Publishes one table as the active snapshot sees it, or as empty without the extension.
void publish_table(PublishOnCommit& table, bool installed) {
  if (!table.attached()) return;
  if (installed) return table.publish_now();
  void* empty = table.empty();
  (void)table.publish(empty);
  table.free(empty);
}

// Promoted: the registry's writers may run now. The last round takes their lock
// (SHARE ROW EXCLUSIVE, as set_service and set_semaphore do) before it reads, so a
// change committed on the new primary is never overwritten by an older read.
void lock_like_writers() {
  const char* tables[] = {"service", "role_service", "semaphore"};
  for (const char* table : tables)
    (void)RangeVarGetRelid(makeRangeVar(pstrdup("usher"), pstrdup(table), -1), ShareRowExclusiveLock, true);
}

// One round: publish both tables if the replayed ones changed since `last`. Returns
// whether the server was still in recovery when it began.
bool follow_once(Fingerprint* last) {
  bool in_recovery = RecoveryInProgress();
  SetCurrentStatementStartTimestamp();
  StartTransactionCommand();
  PushActiveSnapshot(GetTransactionSnapshot());
  bool installed = extension_installed();
  if (installed && !in_recovery) {
    lock_like_writers();
    PopActiveSnapshot();
    PushActiveSnapshot(GetTransactionSnapshot());  // taken after the lock
  }
  Fingerprint now = fingerprint(installed);
  if (strcmp(now.text, last->text) != 0) {
    publish_table(registry::publication, installed);
    publish_table(semaphores::publication, installed);
    *last = now;
  }
  PopActiveSnapshot();
  CommitTransactionCommand();
  return in_recovery;
}

void follow() {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
  BackgroundWorkerUnblockSignals();
  BackgroundWorkerInitializeConnection(settings::database, nullptr, 0);
  pgstat_report_appname("pg_usher registry follower");
  Fingerprint last{};
  last.text[0] = '-';  // never a fingerprint: the first round publishes
  while (!ShutdownRequestPending) {
    if (!follow_once(&last)) break;  // promoted: the commit callbacks publish from now on
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, sampler::interval_ms(),
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
    }
  }
  proc_exit(0);
}

// The launcher keeps one follower running while the server is in recovery. One that
// ended (a recovery conflict cancelled its query, usher.database is missing) is
// started again, at most every 10 s, so a failing one does not flood the log. If the
// server is promoted while none runs, one is started at once for the last round (it
// publishes under the writers' lock and exits).
void keep_follower() {
  static BackgroundWorkerHandle* follower = nullptr;
  static TimestampTz last_start = 0;
  static bool followed = false;  // a follower was started in recovery; the last round is due
  bool in_recovery = RecoveryInProgress();
  if (!in_recovery && !followed) return;
  pid_t pid;
  if (follower != nullptr && GetBackgroundWorkerPid(follower, &pid) != BGWH_STOPPED) return;
  TimestampTz now = GetCurrentTimestamp();
  if (in_recovery && last_start != 0 && !TimestampDifferenceExceeds(last_start, now, 10000)) return;
  last_start = now;
  followed = in_recovery;  // after promotion: this start is the last
  if (follower != nullptr) pfree(follower);
  follower = nullptr;
  if (!start_connected_worker("usher_follower_main", "pg_usher registry follower", &follower)) {
    follower = nullptr;
    ereport(WARNING, (errmsg("pg_usher: could not start the registry follower on this standby"),
                      errhint("Raise max_worker_processes; until then replayed registry changes are not enforced "
                              "here.")));
  }
}

// Logins of ordinary roles wait for the first publication (admission.cpp), so a run
// that ends without publishing -- it could not start, or failed after connecting -- is
// retried, 1 s later, then 2, 4, ... up to a minute, until the registry is published
// or the publisher finds there is none.
void publish_at_start() {
  for (int attempt = 0; !ShutdownRequestPending; attempt++) {
    admission::note_publisher_starting();
    bool started = launch_publisher();
    if (admission::note_publisher_ended(started)) return;
    long retry_ms = Min(1000L << Min(attempt, 6), 60000L);
    ereport(WARNING, (errmsg("pg_usher: the registry publisher ended without publishing; retrying in %ld ms", retry_ms),
                      errhint("Logins of ordinary roles wait for the registry (usher.registry_wait); see the "
                              "publisher's error above.")));
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, retry_ms, PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
  }
}

// After the publisher has run, the launcher samples per-service activity every
// usher.sample_interval (sampler.cpp), and after each reload admits statements waiting
// at the server's gate if usher.max_active_total was raised. It keeps its cadence: the next sample is due one
// interval after the previous one was due, or one interval from now if it fell behind.
void launcher() {
  pqsignal(SIGHUP, SignalHandlerForConfigReload);
  pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
  // A worker without a database connection starts with SIGUSR1 ignored, but the
  // postmaster reports the publisher's exit with SIGUSR1: without this handler the
  // wait for the publisher never ends and no sample is ever taken.
  pqsignal(SIGUSR1, procsignal_sigusr1_handler);
  BackgroundWorkerUnblockSignals();
  publish_at_start();
  TimestampTz due = GetCurrentTimestamp();
  while (!ShutdownRequestPending) {
    TimestampTz now = GetCurrentTimestamp();
    int64 interval_us = static_cast<int64>(sampler::interval_ms()) * 1000;
    if (now >= due) {
      sampler::take_sample();
      replication::note_replay_position();
      keep_follower();
      due += interval_us;
      if (due <= now) due = now + interval_us;
    }
    long timeout_ms = static_cast<long>((due - now + 999) / 1000);
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Max(timeout_ms, 1L),
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    if (ConfigReloadPending) {
      ConfigReloadPending = false;
      ProcessConfigFile(PGC_SIGHUP);
      if (shm::State* s = shm::state()) gate::admit_server_waiters(s);
      // A shorter interval takes effect at once.
      TimestampTz sooner = GetCurrentTimestamp() + static_cast<int64>(sampler::interval_ms()) * 1000;
      if (sooner < due) due = sooner;
    }
  }
  // A non-zero exit makes the postmaster start the launcher again if it was stopped on
  // its own; at server shutdown nothing is restarted.
  proc_exit(1);
}

}  // namespace

void install_hooks() {
  BackgroundWorker worker{};
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
  // Consistent state: a hot standby enforces the registry it replicated, too.
  worker.bgw_start_time = BgWorkerStart_ConsistentState;
  worker.bgw_restart_time = 10;
  fill_common(&worker, "usher_launcher_main", "pg_usher launcher");
  RegisterBackgroundWorker(&worker);
}

}  // namespace usher::worker

// Plain C frames: both workers call PostgreSQL throughout and throw no C++ exception,
// so a PostgreSQL error never unwinds through a C++ try (docs/cpp-in-the-backend.md).
void usher_launcher_main(Datum) { usher::worker::launcher(); }
void usher_publisher_main(Datum) { usher::worker::publish(); }
void usher_follower_main(Datum) { usher::worker::follow(); }
