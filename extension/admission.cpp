// Login admission: per-service connection quotas, reserved slots and the server's own
// capacity, enforced in ClientAuthentication_hook from shared memory alone.
//
// Error boundary (docs/cpp-in-the-backend.md): the hook is plain C frames from end to
// end. The previous hook (another extension's, which may raise), the catalog lookup,
// the allocation, the wait for the registry and the refusal's ereport(FATAL) all run
// with no C++ object alive and no C++ try around them; nothing here throws.
#include "common/service_name.hpp"  // common/ before any PostgreSQL header (common/pure_cpp.hpp)

#include "admission.hpp"
#include "hooks.hpp"
#include "settings.hpp"
#include "shared_state.hpp"

extern "C" {
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
}

namespace usher::admission {

namespace {

ClientAuthentication_hook_type previous_hook = nullptr;

enum class Refusal { none, quota, full, reservation };

// What a refusal reports, copied out of shared memory under the lock.
struct Decision {
  Refusal refusal;
  int service;
  char service_name[NAMEDATALEN];
  int current;           // sessions of the service before this one
  int limit;             // its max_connections
  int used;              // counted sessions on the server before this one
  int capacity;          // connection slots for ordinary roles
  int64 unused_reserved; // reservations of services not yet in use, after this login
};

// A slot is emptied when its backend exits, by any path: normal exit, FATAL,
// pg_terminate_backend, a client that vanished. (A crash resets shared memory.)
void release_slot(int, Datum) {
  shm::State* s = shm::state();
  shm::BackendSlot* slot = shm::my_slot();
  if (s == nullptr || slot == nullptr) return;
  shm::locked(s, shm::Access::exclusive, [&] {
    slot->service = shm::no_service;
    slot->provisional = false;
    slot->pid = 0;
  });
  SpinLockAcquire(&slot->lease_mutex);
  slot->lease_holder[0] = '\0';
  SpinLockRelease(&slot->lease_mutex);
}

int mapped_service(const shm::State* s, const char* role) {
  for (int i = 0; i < s->role_mapping_count; i++)
    if (strcmp(s->role_mappings[i].role, role) == 0) return s->role_mappings[i].service;
  return -1;
}

// The service a login counts under: the role's mapping, else the service named by
// application_name up to the first '/' if that is listed and enabled, else 'default'.
int resolve(const shm::State* s, const char* role, const char* application_service) {
  int mapped = mapped_service(s, role);
  if (mapped >= 0 && s->services[mapped].enabled) return mapped;
  return shm::enforced_service(s, application_service);
}

void application_service(const Port* port, char (&name)[NAMEDATALEN]) {
  auto service = service_of_application(port->application_name ? port->application_name : "");
  strlcpy(name, service.data(), Min(sizeof name, service.size() + 1));
}

bool registry_settled(const shm::State* s) { return s->published || s->registry_absent; }

// Decides under the exclusive lock, and on admission fills this backend's slot there
// too, so two logins can never both take the last place. Never raises.
Decision admit(shm::State* s, shm::BackendSlot* slot, const Port* port, bool superuser, int32* counts) {
  char wanted[NAMEDATALEN];
  application_service(port, wanted);
  return shm::locked(s, shm::Access::exclusive, [&] {
    Decision d{};
    d.service = resolve(s, port->user_name, wanted);
    shm::Service* service = &s->services[d.service];
    d.used = shm::count_sessions(s, counts);
    d.current = counts[d.service];
    d.limit = service->max_connections;
    d.capacity = MaxConnections - pg::reserved_connection_slots();
    counts[d.service]++;
    // 64 bits: the sum of every service's reservation is not bounded by int4 (the
    // owner can write large values into usher.service directly).
    for (int i = 0; i < s->service_capacity; i++) {
      const shm::Service& other = s->services[i];
      if (other.in_use && other.listed && other.enabled && other.reserved_connections > counts[i])
        d.unused_reserved += static_cast<int64>(other.reserved_connections) - counts[i];
    }
    if (!superuser && d.limit > 0 && d.current >= d.limit) {
      d.refusal = Refusal::quota;
      service->rejected_quota_total++;
    } else if (!superuser && d.used >= d.capacity) {
      d.refusal = Refusal::full;
      service->rejected_full_total++;
    } else if (!superuser && static_cast<int64>(d.capacity) - (d.used + 1) < d.unused_reserved) {
      d.refusal = Refusal::reservation;
      service->rejected_reservation_total++;
    } else {
      slot->pid = MyProcPid;
      slot->superuser = superuser;
      slot->service = d.service;
      // Only a superuser gets here before the registry is settled (see wait_for_registry).
      slot->provisional = !registry_settled(s);
      if (slot->provisional) {
        strlcpy(slot->login_role, port->user_name, NAMEDATALEN);
        strlcpy(slot->login_service, wanted, NAMEDATALEN);
      }
      service->admitted_total++;
      service->peak = Max(service->peak, d.current + 1);
    }
    strlcpy(d.service_name, service->name, NAMEDATALEN);
    return d;
  });
}

[[noreturn]] void refuse(const Decision& d) {
  switch (d.refusal) {
    case Refusal::quota:
      ereport(FATAL,
              (errcode(ERRCODE_TOO_MANY_CONNECTIONS),
               errmsg("too many connections for service \"%s\": %d of %d in use", d.service_name, d.current,
                      d.limit),
               errhint("Close idle connections of this service or shrink its pools, or raise its limit with "
                       "usher.set_service('%s', max_connections => ...).",
                       d.service_name)));
      break;
    case Refusal::full:
      ereport(FATAL,
              (errcode(ERRCODE_TOO_MANY_CONNECTIONS),
               errmsg("no connection slot for service \"%s\": the server is full, %d of %d connections for "
                      "ordinary roles are in use",
                      d.service_name, d.used, d.capacity),
               errdetail("max_connections is %d, of which %d are reserved for superusers.", MaxConnections,
                         MaxConnections - d.capacity),
               errhint("Wait for connections to close, close idle sessions or pool them (PgBouncer), or raise "
                       "max_connections (takes a restart).")));
      break;
    default:
      ereport(FATAL,
              (errcode(ERRCODE_TOO_MANY_CONNECTIONS),
               errmsg("no connection slot for service \"%s\": the %d free slot(s) are reserved for other services",
                      d.service_name, d.capacity - d.used),
               errdetail("%d of %d connections are in use and other services hold %lld reserved connection(s) "
                         "they are not using.",
                         d.used, d.capacity, static_cast<long long>(d.unused_reserved)),
               errhint("Wait for connections to close, lower other services' reserved_connections, or raise "
                       "max_connections.")));
      break;
  }
  pg_unreachable();
}

// After a server start (and a crash restart) shared memory holds no registry until the
// publisher has read it: a login admitted then would count as 'default' for its whole
// life, past its service's quota, reservation and gate. So a login of an ordinary role
// waits, up to usher.registry_wait, until the registry is published or the publisher
// finds there is none; then it is refused with FATAL 57P03. Superusers do not wait (one
// must be able to log in to fix what blocks the publisher); they are admitted at once
// and counted under their real service by the first publication (settle_provisional).
void wait_for_registry(shm::State* s) {
  // Once published, always published (until shared memory is reset with every
  // backend): a login after the first publication reads the flag without the lock. A
  // stale false only sends it the long way, under the lock.
  if (*static_cast<volatile bool*>(&s->published)) return;
  if (shm::locked(s, shm::Access::shared, [&] { return registry_settled(s); })) return;

  // Refused before authentication_timeout would end the login with a vaguer message.
  int limit_ms = Min(settings::registry_wait_ms, Max(AuthenticationTimeout * 1000 - 500, 0));
  TimestampTz start = GetCurrentTimestamp();
  TimestampTz deadline = TimestampTzPlusMilliseconds(start, limit_ms);
  bool first = shm::locked(s, shm::Access::exclusive, [&] {
    bool unlogged = !s->registry_wait_logged;
    s->registry_wait_logged = true;
    return unlogged;
  });
  if (first)
    ereport(LOG, (errmsg("pg_usher: logins of ordinary roles wait until the service registry of database \"%s\" "
                         "is published (at most usher.registry_wait = %d ms)",
                         settings::database ? settings::database : "", limit_ms)));
  int failures = 0;
  for (;;) {
    bool settled = shm::locked(s, shm::Access::shared, [&] {
      failures = s->publisher_failures;
      return registry_settled(s);
    });
    if (settled) return;
    long remaining = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), deadline);
    if (remaining <= 0) break;
    // Polled: publication happens once per start, and the registry's publishers (the
    // worker, any committing backend) need not know who waits.
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, Min(remaining, 10L),
                    PG_WAIT_EXTENSION);
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
  ereport(FATAL,
          (errcode(ERRCODE_CANNOT_CONNECT_NOW),
           errmsg("pg_usher has not published the service registry yet: login refused after waiting %ld ms",
                  TimestampDifferenceMilliseconds(start, GetCurrentTimestamp())),
           errdetail("After a server start, logins of ordinary roles wait up to usher.registry_wait (%d ms) for "
                     "the registry of database \"%s\" to be read, so that they count under their service; %d "
                     "attempt(s) to read it have failed so far.",
                     limit_ms, settings::database ? settings::database : "", failures),
           errhint("Try again shortly. If this persists, look for the pg_usher publisher in the server log "
                   "(a lock on usher.service, a prepared transaction); superusers can still log in.")));
}

void on_authenticated(Port* port, int status) {
  if (previous_hook) previous_hook(port, status);
  shm::State* s = shm::state();
  shm::BackendSlot* slot = shm::my_slot();
  // Failed logins end anyway; replication connections have max_wal_senders.
  if (status != STATUS_OK || s == nullptr || slot == nullptr || am_walsender) return;

  // Catalog lookups and allocation happen before the lock is taken.
  bool superuser = superuser_arg(get_role_oid(port->user_name, true));
  static int32* counts = nullptr;
  if (counts == nullptr)
    counts = static_cast<int32*>(MemoryContextAlloc(TopMemoryContext, sizeof(int32) * s->service_capacity));
  // Registered before the slot is filled, so no exit path can skip it.
  before_shmem_exit(release_slot, 0);

  if (!superuser) wait_for_registry(s);
  Decision d = admit(s, slot, port, superuser, counts);
  if (d.refusal != Refusal::none) refuse(d);
}

}  // namespace

void install_hooks() {
  chain_hook(ClientAuthentication_hook, previous_hook, on_authenticated);
}

void settle_provisional(shm::State* s, int32* counts) {
  bool moved = false;
  for (int i = 0; i < s->slot_count; i++) {
    shm::BackendSlot* slot = &s->slots[i];
    if (!slot->provisional) continue;
    slot->provisional = false;
    int from = slot->service;
    if (from < 0) continue;
    int to = resolve(s, slot->login_role, slot->login_service);
    if (to == from) continue;
    slot->service = to;
    // The login is counted where it belongs, as if it had been admitted there.
    if (s->services[from].admitted_total > 0) s->services[from].admitted_total--;
    s->services[to].admitted_total++;
    moved = true;
  }
  if (!moved) return;
  // Peaks of the services the logins moved to, from one count of every slot.
  shm::count_sessions(s, counts);
  for (int i = 0; i < s->service_capacity; i++) s->services[i].peak = Max(s->services[i].peak, counts[i]);
}

namespace {

// Sets one of the publisher's flags in shared memory, under the lock.
void set_publisher_flag(bool shm::State::*flag, bool value) {
  shm::State* s = shm::state();
  if (s == nullptr) return;
  shm::locked(s, shm::Access::exclusive, [&] { s->*flag = value; });
}

}  // namespace

void note_publisher_starting() { set_publisher_flag(&shm::State::publisher_connected, false); }
void note_publisher_connected() { set_publisher_flag(&shm::State::publisher_connected, true); }
void note_no_registry() { set_publisher_flag(&shm::State::registry_absent, true); }

bool note_publisher_ended(bool started) {
  shm::State* s = shm::state();
  if (s == nullptr) return true;
  return shm::locked(s, shm::Access::exclusive, [&] {
    // A publisher that could not connect to usher.database (it does not exist, or does
    // not allow connections) has no registry to read: its own FATAL in the log says why.
    if (started && !s->published && !s->registry_absent && !s->publisher_connected) s->registry_absent = true;
    bool settled = registry_settled(s);
    if (!settled) s->publisher_failures++;
    return settled;
  });
}

}  // namespace usher::admission
