#pragma once
// Internal: the lending bag's FIFO of threads waiting in borrow(). Intrusive (each
// Waiter lives on its waiting thread's stack) so that waiting allocates nothing and a
// timed-out waiter leaves from the middle in O(1). Each waiter has its own condition variable, so a
// returned item wakes exactly the thread it is handed to.

#include <condition_variable>
#include <cstddef>

namespace usher::detail {

struct BagEntry;

struct Waiter {
  std::condition_variable cv;
  BagEntry* entry = nullptr;  // set (under the bag's lock) when an item is handed over
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
};

class WaiterQueue {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

  void push_back(Waiter* w) noexcept { insert_between(w, tail_, nullptr); }
  // For a waiter whose item failed its check: it keeps its place in the line.
  void push_front(Waiter* w) noexcept { insert_between(w, nullptr, head_); }
  Waiter* pop_front() noexcept {
    Waiter* w = head_;
    if (w) remove(w);
    return w;
  }
  void remove(Waiter* w) noexcept {
    (w->prev ? w->prev->next : head_) = w->next;
    (w->next ? w->next->prev : tail_) = w->prev;
    w->prev = w->next = nullptr;
    --size_;
  }
  template <typename F>
  void for_each(F&& f) const {
    for (Waiter* w = head_; w; w = w->next) f(w);
  }

 private:
  // Links w in between two neighbours (nullptr: the end of the line on that side); the
  // mirror of remove().
  void insert_between(Waiter* w, Waiter* prev, Waiter* next) noexcept {
    w->prev = prev;
    w->next = next;
    (prev ? prev->next : head_) = w;
    (next ? next->prev : tail_) = w;
    ++size_;
  }

  Waiter* head_ = nullptr;
  Waiter* tail_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace usher::detail
