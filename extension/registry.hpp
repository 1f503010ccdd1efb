// The service registry: the tables usher.service and usher.role_service, published to
// shared memory when a transaction that changed them commits (never on rollback), and
// at server start by the background worker.
#pragma once

#include "pg_includes.hpp"
#include "publish_on_commit.hpp"
#include "shared_state.hpp"

namespace usher::registry {

struct ServiceRow {
  char name[NAMEDATALEN];
  int32 max_connections;
  int32 reserved_connections;
  int32 max_active;
  int32 queue_timeout_ms;
  int32 priority;
  bool enabled;
  bool transaction_gate;  // gate_mode 'transaction'
};

struct RoleRow {
  char role[NAMEDATALEN];
  char service[NAMEDATALEN];
};

// A registry read from the tables, in TopMemoryContext until it is published.
struct Registry {
  int service_count;
  ServiceRow* services;
  int role_count;
  RoleRow* roles;
  // Scratch for publish(), one per entry of shared memory: allocated here, before
  // commit, because publish() runs at commit where nothing may fail.
  int32* counts;
};

// Reads both tables through SPI with `snapshot` (inside a transaction).
Registry* read(::Snapshot snapshot);

// Copies a registry into shared memory. Never raises: it runs at commit.
// Returns how many services did not fit in usher.max_services.
int publish(const Registry* registry);

void free_registry(Registry* registry);

// The registry's publication (publish_on_commit.hpp): on commit of a change, as empty
// when DROP EXTENSION pg_usher commits (only 'default' stays in force), and at server
// start by the publisher worker (publish_now()).
extern PublishOnCommit publication;

// Adds the registry to the publications DROP EXTENSION pg_usher empties; from _PG_init
// while preloading.
void install_hooks();

}  // namespace usher::registry
