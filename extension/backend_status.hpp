// Reading the server's backend status array in place, field by field, for readers that
// need a few fields of every session and none of its strings (usher.health()).
//
// pgstat_read_current_status() -- what pg_stat_activity and pgstat_fetch_stat_* read --
// copies every slot with its application name, host name and query text into fresh
// memory on each call: at 1,000 connections that copy is 91 % of
// usher.health_sessions_internal() (bench/RESULTS.md). Here each slot is read under
// PostgreSQL's own change-count protocol (utils/backend_status.h) into a small copy on
// the stack, and handed to the caller before the next one is read.
#pragma once

#include "pg_includes.hpp"

namespace usher::pg {

// The fields of one slot that a per-session check reads. `status.st_appname` points at
// `appname`; the strings and addresses pg_usher never reads are left zero.
struct SessionStatus {
  PgBackendStatus status;
  char appname[NAMEDATALEN];
};

// The shared array (found by its name once per process), or nullptr on a version whose
// layout has not been checked: then the caller reads the snapshot instead.
const PgBackendStatus* shared_backend_status(int* slots);

// Copies slot `i` of `array` into `out` with the change-count protocol; false for an
// unused slot (no process).
bool read_session_status(const PgBackendStatus* array, int i, SessionStatus* out);

}  // namespace usher::pg
