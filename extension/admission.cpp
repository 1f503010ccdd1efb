#include "admission.hpp"

#include <string>

#include "guard.hpp"
#include "service_name.hpp"
#include "shared_state.hpp"

extern "C" {
#include "libpq/auth.h"
#include "libpq/libpq-be.h"
#include "replication/walsender.h"
#include "storage/ipc.h"
#include "utils/memutils.h"
}

namespace usher::admission {

namespace {

ClientAuthentication_hook_type previous_hook = nullptr;

enum class Refusal { none, quota, reservation };

// What a refusal reports, copied out of shared memory under the lock.
struct Decision {
  Refusal refusal;
  int service;
  char service_name[NAMEDATALEN];
  int current;         // sessions of the service before this one
  int limit;           // its max_connections
  int used;            // counted sessions on the server before this one
  int capacity;        // connection slots for ordinary roles
  int unused_reserved; // reservations of services not yet in use, after this login
};

// A slot is emptied when its backend exits, by any path: normal exit, FATAL,
// pg_terminate_backend, a client that vanished. (A crash resets shared memory.)
void release_slot(int, Datum) {
  shm::State* s = shm::state();
  shm::BackendSlot* slot = shm::my_slot();
  if (s == nullptr || slot == nullptr) return;
  LWLockAcquire(s->lock, LW_EXCLUSIVE);
  slot->service = shm::no_service;
  slot->pid = 0;
  LWLockRelease(s->lock);
  SpinLockAcquire(&slot->lease_mutex);
  slot->lease_holder[0] = '\0';
  SpinLockRelease(&slot->lease_mutex);
}

int mapped_service(const shm::State* s, const char* role) {
  for (int i = 0; i < s->role_mapping_count; i++)
    if (strcmp(s->role_mappings[i].role, role) == 0) return s->role_mappings[i].service;
  return -1;
}

// The service a login counts under: the role's mapping, else application_name up to
// the first '/' if that names a listed, enabled service, else 'default'.
int resolve_service(const shm::State* s, const Port* port) {
  int mapped = mapped_service(s, port->user_name);
  if (mapped >= 0 && s->services[mapped].enabled) return mapped;
  char name[NAMEDATALEN];
  auto service = service_of_application(port->application_name ? port->application_name : "");
  strlcpy(name, service.data(), Min(sizeof name, service.size() + 1));
  return shm::enforced_service(s, name);
}

// Decides under the exclusive lock, and on admission fills this backend's slot there
// too, so two logins can never both take the last place.
Decision admit(shm::State* s, shm::BackendSlot* slot, const Port* port, bool superuser, int32* counts) {
  Decision d{};
  LWLockAcquire(s->lock, LW_EXCLUSIVE);
  d.service = resolve_service(s, port);
  shm::Service* service = &s->services[d.service];
  d.used = shm::count_sessions(s, counts);
  d.current = counts[d.service];
  d.limit = service->max_connections;
  d.capacity = MaxConnections - pg::reserved_connection_slots();
  counts[d.service]++;
  for (int i = 0; i < s->service_capacity; i++) {
    const shm::Service& other = s->services[i];
    if (other.in_use && other.listed && other.enabled && other.reserved_connections > counts[i])
      d.unused_reserved += other.reserved_connections - counts[i];
  }
  if (!superuser && d.limit > 0 && d.current >= d.limit) {
    d.refusal = Refusal::quota;
    service->rejected_quota_total++;
  } else if (!superuser && d.capacity - (d.used + 1) < d.unused_reserved) {
    d.refusal = Refusal::reservation;
    service->rejected_reservation_total++;
  } else {
    slot->pid = MyProcPid;
    slot->superuser = superuser;
    slot->service = d.service;
    service->admitted_total++;
    service->peak = Max(service->peak, d.current + 1);
  }
  strlcpy(d.service_name, service->name, NAMEDATALEN);
  LWLockRelease(s->lock);
  return d;
}

[[noreturn]] void refuse(const Decision& d) {
  if (d.refusal == Refusal::quota)
    throw Error(ERRCODE_TOO_MANY_CONNECTIONS,
                "too many connections for service \"" + std::string(d.service_name) + "\": " +
                    std::to_string(d.current) + " of " + std::to_string(d.limit) + " in use",
                {},
                "Close idle connections of this service or shrink its pools, or raise its limit with "
                "usher.set_service('" + std::string(d.service_name) + "', max_connections => ...).",
                FATAL);
  int free_slots = d.capacity - d.used;
  throw Error(ERRCODE_TOO_MANY_CONNECTIONS,
              "no connection slot for service \"" + std::string(d.service_name) + "\": the " +
                  std::to_string(free_slots) + " free slot(s) are reserved for other services",
              std::to_string(d.used) + " of " + std::to_string(d.capacity) +
                  " connections are in use and other services hold " + std::to_string(d.unused_reserved) +
                  " reserved connection(s) they are not using.",
              "Wait for connections to close, lower other services' reserved_connections, or raise "
              "max_connections.",
              FATAL);
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

  Decision d = admit(s, slot, port, superuser, counts);
  if (d.refusal != Refusal::none) refuse(d);
}

}  // namespace

void install_hooks() {
  previous_hook = ClientAuthentication_hook;
  ClientAuthentication_hook = [](Port* port, int status) {
    usher::guard([&] { on_authenticated(port, status); });
  };
}

}  // namespace usher::admission
