// One place that chains pg_usher's shared-memory parts (the registry and slots, the
// semaphores, the sampler's ring) into PostgreSQL's shmem_request_hook and
// shmem_startup_hook, so each part only says what it needs and how to set it up.
#pragma once

#include <type_traits>

#include "pg_includes.hpp"

extern "C" {
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
}

namespace usher::shm {

// Registers a part's request (RequestAddinShmemSpace, RequestNamedLWLockTranche) and
// startup (ShmemInitStruct) functions; called from _PG_init while preloading. Parts
// are requested and started in registration order, after any earlier library's hooks.
void add_shmem_part(void (*request)(), void (*startup)());

// One slot per PGPROC: regular backends, auxiliary processes and prepared-transaction
// dummies, the same count as ProcGlobal->allProcCount.
int proc_slot_count();

// A part's segment: its head struct, then arrays, each MAXALIGNed, each reached through
// a pointer member of the head. A part describes its layout once, in one function that
// gives the size to request (head nullptr) and, at startup, places the arrays:
//
//   Size layout(State* s) {
//     return shm::SegmentLayout(s).array(&State::items, item_count).size();
//   }
template <typename Head>
class SegmentLayout {
 public:
  explicit SegmentLayout(Head* head) : head_(head), size_(MAXALIGN(sizeof(Head))) {}

  // The next array, of `count` elements: the head's `field` is set to point at it.
  template <typename T>
  SegmentLayout& array(T* Head::*field, Size count) {
    if (head_ != nullptr) head_->*field = reinterpret_cast<T*>(reinterpret_cast<char*>(head_) + size_);
    size_ = add_size(size_, MAXALIGN(mul_size(count, sizeof(T))));
    return *this;
  }

  Size size() const { return size_; }

 private:
  Head* head_;
  Size size_;
};

// A part that is one segment (its head struct and arrays) and one LWLock tranche, both
// called `name`. Each part declares one, at namespace scope:
//
//   constexpr shm::Segment<State> segment{tranche_name, [] { return 1; }, layout, init, &attached};
//   void install_hooks() { shm::add_segment<segment>(); }
template <typename Head>
struct Segment {
  const char* name;       // of the segment and of its LWLock tranche
  int (*locks)();         // how many LWLocks the tranche has
  Size (*layout)(Head*);  // the layout function (SegmentLayout above)
  void (*init)(Head*);    // sets up the segment, zeroed and laid out, where it is created
  Head** attached;        // where every process keeps the segment's address
};

// Registers the segment as a part: its request asks for the space and the tranche; its
// startup attaches the segment under AddinShmemInitLock, and the process that creates
// it (the postmaster) zeroes it, places its arrays and hands it to init first.
template <const auto& segment>
void add_segment() {
  add_shmem_part(
      [] {
        RequestAddinShmemSpace(segment.layout(nullptr));
        RequestNamedLWLockTranche(segment.name, segment.locks());
      },
      [] {
        Size size = segment.layout(nullptr);
        LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
        bool found;
        using HeadPointer = std::remove_reference_t<decltype(*segment.attached)>;
        auto* head = static_cast<HeadPointer>(ShmemInitStruct(segment.name, size, &found));
        if (!found) {
          memset(head, 0, size);
          segment.layout(head);
          segment.init(head);
        }
        LWLockRelease(AddinShmemInitLock);
        *segment.attached = head;
      });
}

}  // namespace usher::shm
