// usher_test.die_at_commit(mode): the backend ends right after the calling transaction
// commits, deterministically, so that the client's COMMIT sees the two ways a fast
// shutdown (57P01) meets a COMMIT (docs/ha.md, "Commit outcome across a failover"):
//
//   'after_answer'  the COMMIT's CommandComplete is sent, then FATAL 57P01 and the end
//                   of the connection, before ReadyForQuery: both in one read.
//   'before_answer' the transaction is committed, then the connection's sending half is
//                   shut down before the COMMIT's answer: the client sees the end of the
//                   connection and no answer at all.
//   'before_commit' FATAL 57P01 at XACT_EVENT_PRE_COMMIT: the connection ends during
//                   COMMIT and the transaction rolls back (no commit record).
//
// In the first two the commit itself is complete (the callback runs at XACT_EVENT_COMMIT, after
// the commit record and the clog): no abort is attempted (that would PANIC). An aborted
// transaction disarms it. Plain C frames only: the callback and the function body hold
// no C++ object across a PostgreSQL call.
#include <sys/socket.h>

#include <cstring>

#include "sql_function.hpp"

extern "C" {
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/builtins.h"
}

namespace {
enum class DieMode { none, after_answer, before_answer, before_commit };
DieMode armed = DieMode::none;
bool registered = false;
}  // namespace

extern "C" void usher_test_die_at_commit_callback(XactEvent event, void*) {
  if (armed == DieMode::none) return;
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT) {
    armed = DieMode::none;
    return;
  }
  if (event == XACT_EVENT_PRE_COMMIT && armed == DieMode::before_commit) {
    armed = DieMode::none;
    ereport(FATAL, (errcode(ERRCODE_ADMIN_SHUTDOWN),
                    errmsg("terminating connection due to administrator command"),
                    errdetail("usher_test.die_at_commit('before_commit')")));
  }
  if (event != XACT_EVENT_COMMIT) return;
  DieMode mode = armed;
  armed = DieMode::none;
  if (mode == DieMode::before_answer && MyProcPort != nullptr)
    shutdown(MyProcPort->sock, SHUT_WR);
  // As die() (SIGTERM) does: the FATAL comes at the next CHECK_FOR_INTERRUPTS, once the
  // commit is over and its CommandComplete is in the output buffer.
  InterruptPending = true;
  ProcDiePending = true;
}

// Plain frames: the argument is read and refused with ereport, no C++ object alive.
USHER_SQL_FUNCTION_PLAIN(usher_test_die_at_commit, int, 0) {
  (void)checked;
  const char* mode = text_to_cstring(PG_GETARG_TEXT_PP(0));
  DieMode m = DieMode::none;
  if (strcmp(mode, "after_answer") == 0)
    m = DieMode::after_answer;
  else if (strcmp(mode, "before_answer") == 0)
    m = DieMode::before_answer;
  else if (strcmp(mode, "before_commit") == 0)
    m = DieMode::before_commit;
  else
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("die_at_commit: unknown mode \"%s\"", mode),
                    errhint("Pass 'after_answer', 'before_answer' or 'before_commit'.")));
  if (!registered) {
    RegisterXactCallback(usher_test_die_at_commit_callback, nullptr);
    registered = true;
  }
  armed = m;
  PG_RETURN_VOID();
}
