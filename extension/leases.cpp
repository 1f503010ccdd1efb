// usher.checkout(holder) / usher.checkin(): a pool marks on the server which of its
// clients has borrowed this connection. checkout returns true so that one round trip
// both validates the connection and records the lease. Only this backend writes its
// slot's lease, under the slot's spinlock: the pool's hot path takes no shared lock.
#include "shared_state.hpp"
#include "sql_function.hpp"

extern "C" {
#include "mb/pg_wchar.h"
}

namespace {

void set_lease(const char* holder, int length) {
  usher::shm::require("usher.checkout");
  usher::shm::BackendSlot* slot = usher::shm::my_slot();
  if (slot == nullptr) return;
  // Cut at a character boundary, to at most holder_bytes bytes.
  int kept = holder ? pg_mbcliplen(holder, length, usher::shm::holder_bytes) : 0;
  TimestampTz now = GetCurrentTimestamp();
  SpinLockAcquire(&slot->lease_mutex);
  if (kept > 0) memcpy(slot->lease_holder, holder, kept);
  slot->lease_holder[kept] = '\0';
  slot->lease_start = kept > 0 ? now : 0;
  SpinLockRelease(&slot->lease_mutex);
}

}  // namespace

USHER_SQL_FUNCTION(usher_checkout) {
  const char* holder = nullptr;
  int length = 0;
  if (!PG_ARGISNULL(0)) {
    text* arg = PG_GETARG_TEXT_PP(0);
    holder = VARDATA_ANY(arg);
    length = VARSIZE_ANY_EXHDR(arg);
  }
  set_lease(holder, length);
  return BoolGetDatum(true);
}

USHER_SQL_FUNCTION(usher_checkin) {
  set_lease(nullptr, 0);
  return BoolGetDatum(true);
}
