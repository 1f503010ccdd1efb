// The backend status array read in place (backend_status.hpp).
#include "backend_status.hpp"

extern "C" {
#include "storage/shmem.h"
}

namespace usher::pg {

const PgBackendStatus* shared_backend_status(int* slots) {
#if PG_VERSION_NUM >= 130000 && PG_VERSION_NUM < 170000
  // backend_status.c (pgstat.c in 13): "Backend Status Array", NumBackendStatSlots =
  // MaxBackends + NUM_AUXPROCTYPES slots. ShmemInitStruct finds the existing area by
  // name (and raises if the size differed, so a layout change cannot go unnoticed).
  static const PgBackendStatus* array = nullptr;
  static int count = 0;
  if (array == nullptr) {
    int n = MaxBackends + NUM_AUXPROCTYPES;
    bool found = false;
    void* area = ShmemInitStruct("Backend Status Array", mul_size(sizeof(PgBackendStatus), n), &found);
    if (!found) return nullptr;  // cannot happen after start-up; never read a fresh area
    array = static_cast<const PgBackendStatus*>(area);
    count = n;
  }
  *slots = count;
  return array;
#else
  *slots = 0;
  return nullptr;
#endif
}

bool read_session_status(const PgBackendStatus* array, int i, SessionStatus* out) {
  volatile const PgBackendStatus* be = &array[i];
  for (;;) {
    int before, after;
    pgstat_begin_read_activity(be, before);
    out->status = PgBackendStatus{};
    out->status.st_procpid = be->st_procpid;
    if (out->status.st_procpid > 0) {
      out->status.st_backendType = be->st_backendType;
      out->status.st_state = be->st_state;
      out->status.st_state_start_timestamp = be->st_state_start_timestamp;
      out->status.st_xact_start_timestamp = be->st_xact_start_timestamp;
      out->status.st_userid = be->st_userid;
      out->status.st_databaseid = be->st_databaseid;
      // The name lives in a shared buffer the owner rewrites under the same count.
      const char* name = be->st_appname;
      strlcpy(out->appname, name ? name : "", NAMEDATALEN);
    }
    pgstat_end_read_activity(be, after);
    if (pgstat_read_activity_complete(before, after)) break;
    CHECK_FOR_INTERRUPTS();
  }
  out->status.st_appname = out->appname;
  return out->status.st_procpid > 0;
}

}  // namespace usher::pg
