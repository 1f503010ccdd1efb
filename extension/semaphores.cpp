// usher.acquire / usher.release: take and give back permits of a named semaphore.
//
// Strictly FIFO: a request that does not fit, or finds others queued before it, joins
// the semaphore's queue in shared memory and sleeps on its own latch. Whoever frees
// permits (release, transaction or session end, a capacity raised) hands them to the
// head of the queue while they fit and sets that waiter's latch: no thundering herd,
// and a large request is never overtaken by a stream of small ones.
//
// What this backend holds is kept twice: in shared memory per semaphore (what the
// server counts, and what the before_shmem_exit callback gives back on any exit), and
// in a backend-local log of acquisitions with their scope and subtransaction level (to
// know what transaction end and subtransaction abort release). Both change together,
// with nothing that can raise in between.
//
// Error boundary (docs/cpp-in-the-backend.md): every frame that calls PostgreSQL --
// the entry points, the callbacks, the shared-memory work and the wait -- is a plain C
// frame with no C++ object alive and no C++ try around it, so a PostgreSQL error
// (cancel, statement_timeout, out of memory) unwinds only C frames. C++ runs in two
// places only, each inside usher::guard: reading and checking the arguments (the check
// of a plain-frame entry point, sql_function.hpp; the one PostgreSQL call there, reading
// a text argument, goes through pg::call), and building an error's message
// (raise_error() below).
#include <string>

#include "semaphore_state.hpp"
#include "sql_function.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/memutils.h"
}

namespace {

using namespace usher::sem;

// One line of the local log: `permits` of `semaphore` acquired at subtransaction
// nesting `level` (1 = top-level transaction), or for the session (level 0).
struct Acquisition {
  int32 semaphore;
  int32 permits;
  int32 level;
};

constexpr int32 session_level = 0;

Acquisition* acquisitions = nullptr;  // TopMemoryContext
int acquisition_count = 0;
int acquisition_capacity = 0;
bool exit_callback_registered = false;
bool xact_callbacks_registered = false;

void add_acquisition(int semaphore, int permits, int level) {
  for (int i = 0; i < acquisition_count; i++)
    if (acquisitions[i].semaphore == semaphore && acquisitions[i].level == level) {
      acquisitions[i].permits += permits;
      return;
    }
  // ensure_log_space() made room before anything was granted.
  acquisitions[acquisition_count++] = {semaphore, permits, level};
}

void compact_log() {
  int kept = 0;
  for (int i = 0; i < acquisition_count; i++) {
    if (acquisitions[i].permits <= 0) continue;
    int merged = -1;
    for (int j = 0; j < kept; j++)
      if (acquisitions[j].semaphore == acquisitions[i].semaphore && acquisitions[j].level == acquisitions[i].level)
        merged = j;
    if (merged >= 0)
      acquisitions[merged].permits += acquisitions[i].permits;
    else
      acquisitions[kept++] = acquisitions[i];
  }
  acquisition_count = kept;
}

// Room for one more line, allocated before any permit is granted (this may raise).
void ensure_log_space() {
  if (acquisition_count < acquisition_capacity) return;
  int wanted = acquisition_capacity == 0 ? 16 : acquisition_capacity * 2;
  acquisitions = static_cast<Acquisition*>(
      acquisitions == nullptr ? MemoryContextAlloc(TopMemoryContext, sizeof(Acquisition) * wanted)
                              : repalloc(acquisitions, sizeof(Acquisition) * wanted));
  acquisition_capacity = wanted;
}

// Gives back, under the lock the caller holds, every logged acquisition at `min_level`
// or deeper (min_level 1: everything transaction-scoped). Never raises.
void release_levels(State* s, Slot* slot, int min_level) {
  for (int i = 0; i < acquisition_count; i++) {
    Acquisition& a = acquisitions[i];
    if (a.level < min_level || a.permits <= 0) continue;
    give_back(s, slot, a.semaphore, a.permits);
    a.permits = 0;
  }
  compact_log();
}

bool any_at_level(int min_level) {
  for (int i = 0; i < acquisition_count; i++)
    if (acquisitions[i].level >= min_level && acquisitions[i].permits > 0) return true;
  return false;
}

// Transaction end and subtransaction abort. Never raises, except to refuse PREPARE.
void on_transaction_event(XactEvent event, void*) {
  State* s = state();
  int index = my_index();
  if (s == nullptr || index == none) return;
  switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
      if (!any_at_level(1)) return;
      LWLockAcquire(s->lock, LW_EXCLUSIVE);
      release_levels(s, &s->slots[index], 1);
      LWLockRelease(s->lock);
      break;
    case XACT_EVENT_PRE_PREPARE:
      if (any_at_level(1))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that holds transaction-scoped semaphore permits"),
                        errhint("Release them with usher.release before PREPARE TRANSACTION, or acquire with "
                                "scope 'session'.")));
      break;
    default:
      break;
  }
}

void on_subtransaction_event(SubXactEvent event, SubTransactionId, SubTransactionId, void*) {
  State* s = state();
  int index = my_index();
  if (s == nullptr || index == none) return;
  int level = GetCurrentTransactionNestLevel();
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    if (!any_at_level(level)) return;
    LWLockAcquire(s->lock, LW_EXCLUSIVE);
    release_levels(s, &s->slots[index], level);
    LWLockRelease(s->lock);
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    // The parent now owns what the committed subtransaction acquired.
    for (int i = 0; i < acquisition_count; i++)
      if (acquisitions[i].level == level) acquisitions[i].level = level - 1;
    compact_log();
  }
}

// Any backend exit after the first acquire: FATAL, pg_terminate_backend, a client that
// vanished, a normal logout. Gives back every permit and leaves any queue.
void on_exit(int, Datum) {
  State* s = state();
  int index = my_index();
  if (s == nullptr || index == none) return;
  bool locked_here = !LWLockHeldByMe(s->lock);
  if (locked_here) LWLockAcquire(s->lock, LW_EXCLUSIVE);
  Slot* slot = &s->slots[index];
  if (slot->wait_state == WaitState::waiting) {
    int waited_on = slot->wait_semaphore;
    dequeue(s, index);
    tidy_holding(slot, holding_of(slot, waited_on, false));
    serve_queue(s, waited_on);
  }
  slot->wait_state = WaitState::idle;
  for (auto& holding : slot->holdings)
    if (holding.semaphore != none) {
      int semaphore = holding.semaphore;
      give_back(s, slot, semaphore, holding.permits);
      holding.semaphore = none;
      holding.permits = 0;
      reclaim_if_unused(&s->semaphores[semaphore]);
    }
  if (locked_here) LWLockRelease(s->lock);
  acquisition_count = 0;
}

// The callbacks are plain C: they throw nothing, and hold no C++ object.
void register_callbacks() {
  if (!exit_callback_registered) {
    before_shmem_exit(on_exit, 0);
    exit_callback_registered = true;
  }
  if (!xact_callbacks_registered) {
    RegisterXactCallback(on_transaction_event, nullptr);
    RegisterSubXactCallback(on_subtransaction_event, nullptr);
    xact_callbacks_registered = true;
  }
}

// Raises, from a plain C frame, the usher::Error that `error` throws: its message is
// built in C++ inside the guard and reported once those frames are gone.
template <typename Throw>
[[noreturn]] void raise_error(Throw&& error) {
  usher::guard([&] { error(); });
  elog(ERROR, "pg_usher: no error was raised");  // not reached: `error` always throws
  pg_unreachable();
}

// ---------------------------------------------------------------------------------
// Argument checks (before any shared state is touched).

[[noreturn]] void null_argument(const char* what) {
  throw usher::Error(ERRCODE_NULL_VALUE_NOT_ALLOWED, std::string(what) + " must not be NULL");
}

void check_name(const char* name) {
  if (name == nullptr) null_argument("semaphore name");
}

void check_permits(const char* name, bool isnull, int32 permits) {
  if (isnull) null_argument("permits");
  if (permits <= 0)
    throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE,
                       "permits must be 1 or more, not " + std::to_string(permits) + " (semaphore \"" + name + "\")");
}

[[noreturn]] void unknown_semaphore(const char* name) {
  throw usher::Error(ERRCODE_UNDEFINED_OBJECT, std::string("semaphore \"") + name + "\" does not exist", {},
                     "Define it with usher.set_semaphore(name, capacity); usher.semaphores lists those defined.");
}

// ---------------------------------------------------------------------------------
// acquire

enum class Outcome { granted, timed_out, refused_dropped, refused_capacity };

// Sleeps until the request is settled or the deadline passes (deadline 0: no limit).
// Cancel, statement_timeout and termination arrive through CHECK_FOR_INTERRUPTS; an
// ERROR leaves the queue, or gives back what was granted meanwhile, before it goes on;
// FATAL ends in on_exit, which does the same. Plain C frame: no C++ objects.
Outcome wait_for_permits(State* s, int index, int semaphore, int permits, TimestampTz deadline) {
  Slot* slot = &s->slots[index];
  Outcome outcome = Outcome::timed_out;
  PG_TRY();
  {
    for (;;) {
      LWLockAcquire(s->lock, LW_SHARED);
      WaitState state = slot->wait_state;
      LWLockRelease(s->lock);
      if (state == WaitState::granted) { outcome = Outcome::granted; break; }
      if (state == WaitState::refused_dropped) { outcome = Outcome::refused_dropped; break; }
      if (state == WaitState::refused_capacity) { outcome = Outcome::refused_capacity; break; }
      long timeout_ms = -1;
      int events = WL_LATCH_SET | WL_EXIT_ON_PM_DEATH;
      if (deadline != 0) {
        TimestampTz now = GetCurrentTimestamp();
        if (now >= deadline) break;
        timeout_ms = Min(static_cast<long>((deadline - now + 999) / 1000), static_cast<long>(INT_MAX));
        events |= WL_TIMEOUT;
      }
      (void)WaitLatch(MyLatch, events, timeout_ms, PG_WAIT_EXTENSION);
      ResetLatch(MyLatch);
      CHECK_FOR_INTERRUPTS();
    }
  }
  PG_CATCH();
  {
    LWLockAcquire(s->lock, LW_EXCLUSIVE);
    if (slot->wait_state == WaitState::granted) {
      give_back(s, slot, semaphore, permits);
    } else if (slot->wait_state == WaitState::waiting) {
      dequeue(s, index);
      tidy_holding(slot, holding_of(slot, semaphore, false));
      serve_queue(s, semaphore);  // the head may have left: the next ones may fit now
    }
    slot->wait_state = WaitState::idle;
    LWLockRelease(s->lock);
    PG_RE_THROW();
  }
  PG_END_TRY();

  // Timed out, unless a grant arrived at the last moment.
  LWLockAcquire(s->lock, LW_EXCLUSIVE);
  if (outcome == Outcome::timed_out) {
    if (slot->wait_state == WaitState::granted) {
      outcome = Outcome::granted;
    } else if (slot->wait_state == WaitState::waiting) {
      dequeue(s, index);
      tidy_holding(slot, holding_of(slot, semaphore, false));
      s->semaphores[semaphore].timeouts_total++;
      serve_queue(s, semaphore);
    }
  }
  slot->wait_state = WaitState::idle;
  LWLockRelease(s->lock);
  return outcome;
}

// Why a request could not even queue, found under the lock and raised after it.
enum class Refusal { none, unknown, too_many_permits, too_many_holdings };

// A checked request of usher.acquire.
struct Request {
  const char* name;
  int32 permits;
  bool wait_forever;
  int64 timeout_us;
  bool session_scope;
};

// A text argument as a C string, or nullptr for NULL. Detoasting and copying can raise
// (out of memory): through pg::call, so the error reaches the guard as a PgError.
const char* text_argument(FunctionCallInfo fcinfo, int n) {
  if (PG_ARGISNULL(n)) return nullptr;
  return usher::pg::call([&] { return text_to_cstring(PG_GETARG_TEXT_PP(n)); });
}

// The first two arguments of usher.acquire and usher.release: a semaphore and a number
// of permits, read and checked (C++, inside the guard).
struct Permits {
  const char* name;
  int32 permits;
};

Permits checked_permits(FunctionCallInfo fcinfo) {
  const char* name = text_argument(fcinfo, 0);
  bool permits_null = PG_ARGISNULL(1);
  int32 permits = permits_null ? 0 : PG_GETARG_INT32(1);
  check_name(name);
  check_permits(name, permits_null, permits);
  return {name, permits};
}

// C++ only, inside the guard: checks the other arguments and throws usher::Error for a
// bad one.
Request check_request(Permits p, const Interval* timeout, const char* scope) {
  int64 timeout_us = 0;
  if (timeout != nullptr) {
    // Months count as 30 days, as interval comparison does.
    __int128 total = static_cast<__int128>(timeout->month) * DAYS_PER_MONTH * USECS_PER_DAY +
                     static_cast<__int128>(timeout->day) * USECS_PER_DAY + timeout->time;
    if (total < 0)
      throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE, "timeout must not be negative",
                         {}, "Use 0 to try once without waiting, or NULL to wait without a limit.");
    // Capped so that now + timeout cannot overflow a timestamp.
    timeout_us = total > PG_INT64_MAX / 2 ? PG_INT64_MAX / 2 : static_cast<int64>(total);
  }
  if (scope == nullptr) null_argument("scope");
  bool session_scope = strcmp(scope, "session") == 0;
  if (!session_scope && strcmp(scope, "transaction") != 0)
    throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE, std::string("unknown semaphore scope \"") + scope + "\"",
                       {}, "The scope is 'transaction' (released at transaction end) or 'session' (released by usher.release or at session end).");
  return {p.name, p.permits, timeout == nullptr, timeout_us, session_scope};
}

// A call of usher.acquire, checked (C++, inside the guard), with the state it works on.
struct AcquireCall {
  Request request;
  State* state;
};

AcquireCall check_acquire(FunctionCallInfo fcinfo) {
  Permits p = checked_permits(fcinfo);
  const Interval* timeout = PG_ARGISNULL(2) ? nullptr : PG_GETARG_INTERVAL_P(2);
  Request request = check_request(p, timeout, text_argument(fcinfo, 3));
  return {request, require("usher.acquire")};
}

// Plain C frame from here on (see the top of this file).
bool acquire(State* s, const Request& r) {
  int index = my_index();
  if (index == none) elog(ERROR, "usher.acquire: this process has no PGPROC slot");
  register_callbacks();
  ensure_log_space();
  int level = r.session_scope ? session_level : GetCurrentTransactionNestLevel();
  Slot* slot = &s->slots[index];

  Refusal refusal = Refusal::none;
  int32 capacity = 0;
  bool granted = false, queued = false;
  LWLockAcquire(s->lock, LW_EXCLUSIVE);
  int semaphore = find(s, r.name, false);
  Semaphore* entry = semaphore == none ? nullptr : &s->semaphores[semaphore];
  Holding* holding = nullptr;
  if (entry == nullptr) {
    refusal = Refusal::unknown;
  } else if (entry->capacity > 0 && r.permits > entry->capacity) {
    refusal = Refusal::too_many_permits;
    capacity = entry->capacity;
  } else if ((holding = holding_of(slot, semaphore, true)) == nullptr) {
    refusal = Refusal::too_many_holdings;
  } else if (entry->queue_head == none && fits(entry->held, r.permits, entry->capacity)) {
    holding->permits += r.permits;
    entry->held += r.permits;
    entry->peak_held = Max(entry->peak_held, entry->held);
    entry->acquired_total++;
    granted = true;
  } else if (!r.wait_forever && r.timeout_us <= 0) {
    entry->timeouts_total++;
    tidy_holding(slot, holding);
  } else {
    slot->wait_state = WaitState::waiting;
    slot->wait_semaphore = semaphore;
    slot->wait_permits = r.permits;
    slot->wait_next = none;
    if (entry->queue_tail == none)
      entry->queue_head = index;
    else
      s->slots[entry->queue_tail].wait_next = index;
    entry->queue_tail = index;
    entry->waiters++;
    queued = true;
  }
  LWLockRelease(s->lock);

  const char* name = r.name;
  int32 permits = r.permits;
  switch (refusal) {
    case Refusal::unknown:
      raise_error([&] { unknown_semaphore(name); });
    case Refusal::too_many_permits:
      raise_error([&] {
        throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE,
                           "cannot acquire " + std::to_string(permits) + " permits of semaphore \"" + name +
                               "\": its capacity is " + std::to_string(capacity),
                           {}, "Ask for at most the capacity, or raise it with usher.set_semaphore.");
      });
    case Refusal::too_many_holdings:
      raise_error([&] {
        throw usher::Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
                           "cannot acquire semaphore \"" + std::string(name) +
                               "\": this session already holds permits of " + std::to_string(holdings_per_backend) +
                               " semaphores",
                           {}, "Release permits of other semaphores first.");
      });
    case Refusal::none:
      break;
  }
  if (queued) {
    TimestampTz deadline = r.wait_forever ? 0 : GetCurrentTimestamp() + r.timeout_us;  // 0: no limit
    switch (wait_for_permits(s, index, semaphore, permits, deadline)) {
      case Outcome::granted:
        granted = true;
        break;
      case Outcome::timed_out:
        break;
      case Outcome::refused_dropped:
        raise_error([&] {
          throw usher::Error(ERRCODE_UNDEFINED_OBJECT,
                             std::string("semaphore \"") + name + "\" was dropped while this session waited for it");
        });
      case Outcome::refused_capacity:
        raise_error([&] {
          throw usher::Error(ERRCODE_INVALID_PARAMETER_VALUE,
                             "cannot acquire " + std::to_string(permits) + " permits of semaphore \"" + name +
                                 "\": its capacity was lowered below that while this session waited",
                             {}, "Ask for at most the capacity (usher.semaphores), or raise it with usher.set_semaphore.");
        });
    }
  }
  if (granted) add_acquisition(semaphore, permits, level);
  return granted;
}

// ---------------------------------------------------------------------------------
// release

// A call of usher.release, checked (C++, inside the guard), with the state it works on.
struct ReleaseCall {
  Permits release;
  State* state;
};

ReleaseCall check_release(FunctionCallInfo fcinfo) { return {checked_permits(fcinfo), require("usher.release")}; }

// Plain C frame.
void release(State* s, const char* name, int32 permits) {
  int index = my_index();
  if (index == none) elog(ERROR, "usher.release: this process has no PGPROC slot");
  Slot* slot = &s->slots[index];
  bool known = false;
  int32 held = 0;
  LWLockAcquire(s->lock, LW_EXCLUSIVE);
  // A dropped semaphore can still be released by those holding it.
  int semaphore = find(s, name, true);
  if (semaphore != none) {
    known = true;
    Holding* holding = holding_of(slot, semaphore, false);
    held = holding ? holding->permits : 0;
    if (held >= permits) {
      give_back(s, slot, semaphore, permits);
      // The local log: the most recent acquisitions are given back first.
      int32 left = permits;
      for (int i = acquisition_count - 1; i >= 0 && left > 0; i--) {
        if (acquisitions[i].semaphore != semaphore) continue;
        int32 taken = Min(left, acquisitions[i].permits);
        acquisitions[i].permits -= taken;
        left -= taken;
      }
      compact_log();
    }
  }
  LWLockRelease(s->lock);
  if (!known) raise_error([&] { unknown_semaphore(name); });
  if (held < permits)
    raise_error([&] {
      throw usher::Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
                         "cannot release " + std::to_string(permits) + " permit(s) of semaphore \"" + name +
                             "\": this session holds " + std::to_string(held),
                         {}, "A session releases only permits it acquired; usher.semaphores shows the holders.");
    });
}

}  // namespace

// Plain C frames: the arguments are read and checked (C++, in the guard), and the
// request runs with no C++ frame below it.
USHER_SQL_FUNCTION_PLAIN(usher_acquire, AcquireCall, check_acquire(fcinfo)) {
  PG_RETURN_BOOL(acquire(checked.state, checked.request));
}

USHER_SQL_FUNCTION_PLAIN(usher_release, ReleaseCall, check_release(fcinfo)) {
  release(checked.state, checked.release.name, checked.release.permits);
  PG_RETURN_VOID();
}
