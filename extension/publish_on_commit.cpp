#include "publish_on_commit.hpp"

#include "guard.hpp"
#include "settings.hpp"

extern "C" {
#include "commands/dbcommands.h"
#include "utils/snapmgr.h"
}

namespace usher {

namespace {

void discard_pending(PublishOnCommit* p) {
  if (p->pending) p->free(p->pending);
  p->pending = nullptr;
  p->changed = false;
  p->dropped = false;
}

void on_transaction_event(XactEvent event, PublishOnCommit* p) {
  if (!p->changed) return;
  switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PARALLEL_PRE_COMMIT:
      // Still inside the transaction: an error here aborts it, and reaches PostgreSQL
      // through pg::call and the guard, not by a longjmp across the guard's try.
      p->pending = pg::call([&]() -> void* {
        if (!p->attached() || !in_registry_database()) return nullptr;
        // The last command's own changes are visible only after a command counter
        // increment: direct DML (INSERT ... INTO usher.service, a pg_restore's COPY)
        // commits right after its statement, unlike the writer functions, whose
        // statements end before COMMIT.
        CommandCounterIncrement();
        return p->dropped ? p->empty() : p->read(GetLatestSnapshot());
      });
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT: {
      int skipped = p->pending ? p->publish(p->pending) : 0;
      discard_pending(p);
      if (skipped > 0)
        ereport(WARNING, (errmsg("pg_usher: %d %s could not be published: %s is full", skipped, p->entries, p->limit),
                          errhint("%s", p->full_hint)));
      break;
    }
    case XACT_EVENT_PRE_PREPARE:
      throw Error(ERRCODE_FEATURE_NOT_SUPPORTED, p->prepare_refusal);
    default:  // abort (PREPARE is never reached: PRE_PREPARE refused it)
      discard_pending(p);
      break;
  }
}

}  // namespace

bool in_registry_database() {
  if (settings::database == nullptr || MyDatabaseId == InvalidOid) return false;
  const char* here = get_database_name(MyDatabaseId);  // NULL if it is being dropped
  return here != nullptr && strcmp(here, settings::database) == 0;
}

void PublishOnCommit::watch() {
  if (registered) return;
  RegisterXactCallback(
      [](XactEvent event, void* arg) {
        usher::guard([&] { on_transaction_event(event, static_cast<PublishOnCommit*>(arg)); });
      },
      this);
  registered = true;
}

}  // namespace usher
