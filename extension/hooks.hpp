// How a module puts its function into one of PostgreSQL's hook variables: it keeps
// what was there (another library's hook, or nullptr) to chain to, and its own function
// calls that first or last as the hook requires. Modules do this in their
// install_hooks(), which _PG_init calls from one list (module.cpp).
#pragma once

#include <type_traits>

namespace usher {

template <typename Hook>
void chain_hook(Hook& hook, Hook& previous, std::type_identity_t<Hook> ours) {
  previous = hook;
  hook = ours;
}

}  // namespace usher
