#include "shmem_hooks.hpp"

#include <array>

#include "guard.hpp"
#include "hooks.hpp"

extern "C" {
#include "access/twophase.h"
#include "storage/ipc.h"
}

namespace usher::shm {

namespace {

struct Part {
  void (*request)();
  void (*startup)();
};
std::array<Part, 8> parts;
int part_count = 0;

#if PG_VERSION_NUM >= 150000
shmem_request_hook_type previous_request_hook = nullptr;
#endif
shmem_startup_hook_type previous_startup_hook = nullptr;

void request_all() {
#if PG_VERSION_NUM >= 150000
  if (previous_request_hook) previous_request_hook();
#endif
  for (int i = 0; i < part_count; i++) parts[i].request();
}

void startup_all() {
  if (previous_startup_hook) previous_startup_hook();
  for (int i = 0; i < part_count; i++) parts[i].startup();
}

}  // namespace

void add_shmem_part(void (*request)(), void (*startup)()) {
  if (part_count == 0) {
#if PG_VERSION_NUM >= 150000
    chain_hook(shmem_request_hook, previous_request_hook, [] { usher::guard(request_all); });
#endif
    chain_hook(shmem_startup_hook, previous_startup_hook, [] { usher::guard(startup_all); });
  }
  if (part_count == static_cast<int>(parts.size()))
    throw Error(ERRCODE_INTERNAL_ERROR, "pg_usher: too many shared-memory parts");
  parts[part_count++] = {request, startup};
#if PG_VERSION_NUM < 150000
  request();  // before 15, space is requested directly from _PG_init
#endif
}

int proc_slot_count() { return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts; }

}  // namespace usher::shm
