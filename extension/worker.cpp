#include "worker.hpp"

#include "admission.hpp"
#include "gate.hpp"
#include "guard.hpp"
#include "registry.hpp"
#include "semaphores.hpp"
#include "sampler.hpp"
#include "settings.hpp"
#include "shared_state.hpp"
#include "spi.hpp"

extern "C" {
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procsignal.h"
#include "tcop/tcopprot.h"
#include "utils/snapmgr.h"

PGDLLEXPORT void usher_launcher_main(Datum);
PGDLLEXPORT void usher_publisher_main(Datum);
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

// Starts the publisher and waits for it to finish; false if it could not be started.
bool launch_publisher() {
  BackgroundWorker worker{};
  worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
  worker.bgw_start_time = BgWorkerStart_ConsistentState;
  worker.bgw_restart_time = BGW_NEVER_RESTART;
  worker.bgw_notify_pid = MyProcPid;
  fill_common(&worker, "usher_publisher_main", "pg_usher publisher");
  BackgroundWorkerHandle* handle;
  if (!RegisterDynamicBackgroundWorker(&worker, &handle)) {
    ereport(WARNING, (errmsg("pg_usher: could not start the registry publisher"),
                      errhint("Raise max_worker_processes; the registry is published at the next change.")));
    return false;
  }
  if (WaitForBackgroundWorkerShutdown(handle) != BGWH_STOPPED)
    ereport(WARNING, (errmsg("pg_usher: the registry publisher did not finish")));
  return true;
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
