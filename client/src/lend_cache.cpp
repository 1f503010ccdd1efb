// The per-thread memory of the cell borrowed last, for a few pools at once.
#include "lend_cache.hpp"

#include <array>
#include <cstddef>

namespace usher::detail {
namespace {

struct Entry {
  std::uint64_t pool = 0;
  Slot* slot = nullptr;
};
// A thread rarely uses more than a few pools; the least recently used one falls off.
constexpr std::size_t kEntries = 4;
thread_local std::array<Entry, kEntries> entries{};

}  // namespace

Slot* cached_slot(std::uint64_t pool_uid) noexcept {
  for (const Entry& e : entries)
    if (e.pool == pool_uid) return e.slot;
  return nullptr;
}

void cache_slot(std::uint64_t pool_uid, Slot* slot) noexcept {
  if (entries[0].pool == pool_uid) {  // the common case: the same pool again
    entries[0].slot = slot;
    return;
  }
  std::size_t i = 1;
  while (i + 1 < kEntries && entries[i].pool != pool_uid) ++i;
  for (; i > 0; --i) entries[i] = entries[i - 1];
  entries[0] = {pool_uid, slot};
}

}  // namespace usher::detail
