#pragma once
// Internal: the lending bag's FIFO of threads waiting in borrow(), and how a waiter
// sleeps. Intrusive (each Waiter lives on its waiting thread's stack) so that waiting
// allocates nothing and a timed-out waiter leaves from the middle in O(1).
//
// The hand-off slot: a returner (under the bag's lock) writes the item into the
// waiter's `entry` and flips its `signal` to `signalled`. The waiter reads both without
// the lock: a waiter that was handed an item never takes the bag's lock again. It
// first watches its signal for a short while (spins), then parks on it (a futex on
// Linux). The returner wakes it only when it had parked, and after letting go of the
// bag's lock, so that the woken thread does not run into the lock its waker holds.
// (Elsewhere a portable fallback parks on a condition variable per waiter, woken under
// the bag's lock.)

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#else
#include <condition_variable>
#include <mutex>
#endif

namespace usher::detail {

struct BagEntry;

// A waiter's signal.
enum WaiterSignal : std::uint32_t {
  kWaiting = 0,     // in line, watching its signal
  kParked = 1,      // in line, asleep on its signal (or about to be): wake it
  kSignalled = 2,   // an item is in `entry`, or (entry null) the bag closed or refuses
};

struct Waiter {
  std::atomic<std::uint32_t> signal{kWaiting};
  // The hand-off slot: written under the bag's lock before `signal` becomes kSignalled
  // (release); the waiter reads it after seeing kSignalled (acquire).
  std::atomic<BagEntry*> entry{nullptr};
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
#if !defined(__linux__)
  std::mutex park_mu;
  std::condition_variable park_cv;
#endif
};

// Sleeps while w->signal is kParked, until woken (unpark) or the deadline; returns
// false at the deadline. May return early (a spurious wake): the caller looks again.
inline bool park_until(Waiter* w, std::chrono::steady_clock::time_point deadline) {
#if defined(__linux__)
  // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time: steady_clock's clock.
  timespec ts{};
  timespec* until = nullptr;
  if (deadline != std::chrono::steady_clock::time_point::max()) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
    if (ns < 0) ns = 0;
    ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
    until = &ts;
  }
  long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w->signal),
                      FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, kParked, until, nullptr,
                      FUTEX_BITSET_MATCH_ANY);
  return !(rc == -1 && errno == ETIMEDOUT);
#else
  std::unique_lock lk(w->park_mu);
  return w->park_cv.wait_until(lk, deadline, [&] {
    return w->signal.load(std::memory_order_acquire) != kParked;
  });
#endif
}

// Under the bag's lock, after w's slot was written: sets w's signal (release). True if
// w had parked: then the caller wakes it with unpark(w) once it has let go of the
// bag's lock.
inline bool signal_waiter(Waiter* w) noexcept {
#if defined(__linux__)
  return w->signal.exchange(kSignalled, std::memory_order_acq_rel) == kParked;
#else
  // The fallback wakes it here, under park_mu, which the waiter takes before it leaves
  // (finish_parking): its condition variable is never touched after it is gone.
  std::lock_guard lk(w->park_mu);
  bool parked = w->signal.exchange(kSignalled, std::memory_order_acq_rel) == kParked;
  w->park_cv.notify_one();
  return parked;
#endif
}

// Wakes a waiter that had parked when it was signalled. The waiter may already have
// seen its signal and left (a spurious wake ended its sleep): on Linux the wake then
// finds nobody asleep on that address, or wakes a thread that looks again, as with
// glibc's mutex unlock.
inline void unpark([[maybe_unused]] Waiter* w) noexcept {
#if defined(__linux__)
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w->signal),
            FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, nullptr, nullptr, 0);
#endif
}

// The waiter is done with its signal: after this its Waiter may go.
inline void finish_parking([[maybe_unused]] Waiter* w) noexcept {
#if !defined(__linux__)
  std::lock_guard lk(w->park_mu);  // a signal_waiter() in progress has finished
#endif
}

// One step of a waiter's spin: tells the core that this is a spin-wait loop.
inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

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
