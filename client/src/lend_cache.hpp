#pragma once
// Internal: each thread remembers, per pool, the cell it borrowed last. Its next
// acquire() tries that cell first, with one CAS and no lock: a thread keeps its
// backend, as with a connection of its own, and two threads rarely touch the same
// cache line. A stale entry costs nothing but a failed CAS (cells outlive their
// connections, see slot.hpp).

#include <cstdint>

namespace usher::detail {

struct Slot;

// Pools are told apart by a number that is never reused (an address can be, by a
// later pool). 0 is no pool.
Slot* cached_slot(std::uint64_t pool_uid) noexcept;
void cache_slot(std::uint64_t pool_uid, Slot* slot) noexcept;

}  // namespace usher::detail
