#include "replication.hpp"

#include "shmem_hooks.hpp"
#include "sql_function.hpp"

extern "C" {
#include "access/xlog.h"
#if PG_VERSION_NUM >= 150000
#include "access/xlogrecovery.h"
#endif
#include "port/atomics.h"
#include "replication/walreceiver.h"
}

namespace usher::replication {

namespace {

constexpr const char* tranche_name = "pg_usher replication";

struct State {
  pg_atomic_uint64 caught_up_at;  // TimestampTz; 0: never seen
};

State* attached = nullptr;

Size layout(State*) { return MAXALIGN(sizeof(State)); }
void init(State* s) { pg_atomic_init_u64(&s->caught_up_at, 0); }

constexpr shm::Segment<State> segment{tranche_name, [] { return 1; }, layout, init, &attached};

}  // namespace

void install_hooks() { shm::add_segment<segment>(); }

void note_replay_position() {
  if (attached == nullptr || !RecoveryInProgress()) return;
  XLogRecPtr received = GetWalRcvFlushRecPtr(nullptr, nullptr);
  XLogRecPtr replayed = GetXLogReplayRecPtr(nullptr);
  // Nothing received yet (archive recovery, or no WAL receiver so far) counts as
  // caught up: there is nothing waiting to be replayed.
  if (replayed >= received) pg_atomic_write_u64(&attached->caught_up_at, static_cast<uint64>(GetCurrentTimestamp()));
}

TimestampTz replay_caught_up_at() {
  if (attached == nullptr) return 0;
  return static_cast<TimestampTz>(pg_atomic_read_u64(&attached->caught_up_at));
}

}  // namespace usher::replication

// usher.replay_caught_up_internal(): NULL when never seen (or not preloaded).
USHER_SQL_FUNCTION(usher_replay_caught_up) {
  TimestampTz at = usher::replication::replay_caught_up_at();
  if (at == 0) PG_RETURN_NULL();
  PG_RETURN_TIMESTAMPTZ(at);
}
