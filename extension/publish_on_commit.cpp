#include "publish_on_commit.hpp"

#include <string>

#include "guard.hpp"
#include "settings.hpp"
#include "shared_state.hpp"

extern "C" {
#include "catalog/objectaccess.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
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

// Every installed publication, for the one DROP EXTENSION hook.
constexpr int max_publications = 4;
PublishOnCommit* publications[max_publications];
int publication_count = 0;
object_access_hook_type previous_object_access_hook = nullptr;

// DROP EXTENSION pg_usher: when it commits, every table it drops is published as empty
// (in the registry database, only 'default' stays in force and no semaphore is left).
void on_object_access(ObjectAccessType access, Oid class_id, Oid object_id) {
  if (access != OAT_DROP || class_id != ExtensionRelationId) return;
  char* name = pg::call([&] { return get_extension_name(object_id); });
  if (name == nullptr || strcmp(name, "pg_usher") != 0) return;
  for (int i = 0; i < publication_count; i++)
    if (publications[i]->attached()) publications[i]->mark_dropped();
}

const char* registry_database() { return settings::database ? settings::database : ""; }

}  // namespace

bool in_registry_database() {
  if (settings::database == nullptr || MyDatabaseId == InvalidOid) return false;
  const char* here = get_database_name(MyDatabaseId);  // NULL if it is being dropped
  return here != nullptr && strcmp(here, settings::database) == 0;
}

void PublishOnCommit::install() {
  if (publication_count == max_publications)
    throw Error(ERRCODE_INTERNAL_ERROR, "pg_usher: too many publications for the DROP EXTENSION hook");
  publications[publication_count++] = this;
  if (publication_count > 1) return;
  previous_object_access_hook = object_access_hook;
  // The previous hook (another extension's, which may raise) runs in this plain frame,
  // outside the guard.
  object_access_hook = [](ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
    if (previous_object_access_hook) previous_object_access_hook(access, class_id, object_id, sub_id, arg);
    usher::guard([&] { on_object_access(access, class_id, object_id); });
  };
}

Datum PublishOnCommit::on_trigger(FunctionCallInfo fcinfo) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw Error(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED, std::string(trigger_function) + " must be called as a trigger");
  // CREATE EXTENSION empties usher.semaphore to publish "no semaphores" (a database
  // dropped with the extension in it leaves stale definitions behind); stay quiet there.
  if (attached() && !creating_extension && !pg::call([] { return in_registry_database(); }))
    pg::call([&] {
      ereport(WARNING, (errmsg("pg_usher %s of database \"%s\", not this one", publishes_what, registry_database()),
                        errhint("%s \"%s\"%s", change_in, registry_database(), warning_hint)));
    });
  mark_changed();
  return PointerGetDatum(nullptr);
}

void PublishOnCommit::check_writable() const {
  shm::require(feature);
  const char* here = pg::call([] { return get_database_name(MyDatabaseId); });
  if (here == nullptr) here = "";  // being dropped
  if (strcmp(here, registry_database()) != 0)
    throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                std::string(published_from) + " \"" + registry_database() + "\", not \"" + here + "\"", {},
                std::string(change_in) + " \"" + registry_database() + "\"" + change_in_hint);
}

void PublishOnCommit::publish_now() {
  if (!attached()) return;
  void* read_now = read(GetActiveSnapshot());
  int skipped = publish(read_now);
  report(read_now, skipped);
  if (skipped > 0)
    ereport(WARNING, (errmsg("pg_usher: %d %s did not fit in %s", skipped, entries, limit),
                      errhint("Raise %s and restart the server.", limit)));
  free(read_now);
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
