// Login admission: per-service connection quotas and reserved slots, enforced in
// ClientAuthentication_hook from shared memory alone (no database is chosen yet).
#pragma once

namespace usher::admission {

void install_hooks();

}  // namespace usher::admission
