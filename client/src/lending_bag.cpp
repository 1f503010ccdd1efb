// The lending bag's non-template part (lending_bag.hpp): the per-thread memory of the
// place borrowed last, for a few bags at once, and the bags' numbers.
#include "lending_bag.hpp"

#include <array>
#include <cstddef>

namespace usher::detail {
namespace {

struct Entry {
  std::uint64_t bag = 0;  // 0 is no bag
  BagEntry* entry = nullptr;
};
// A thread rarely uses more than a few pools; the least recently used one falls off.
constexpr std::size_t kEntries = 4;
thread_local std::array<Entry, kEntries> entries{};

}  // namespace

BagEntry* cached_entry(std::uint64_t bag_uid) noexcept {
  for (const Entry& e : entries)
    if (e.bag == bag_uid) return e.entry;
  return nullptr;
}

void cache_entry(std::uint64_t bag_uid, BagEntry* entry) noexcept {
  if (entries[0].bag == bag_uid) {  // the common case: the same bag again
    entries[0].entry = entry;
    return;
  }
  std::size_t i = 1;
  while (i + 1 < kEntries && entries[i].bag != bag_uid) ++i;
  for (; i > 0; --i) entries[i] = entries[i - 1];
  entries[0] = {bag_uid, entry};
}

std::uint64_t next_bag_uid() noexcept {
  static std::atomic<std::uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace usher::detail
