#pragma once
// Internal: the lending bag, the one owner of the pool's places, their lending states,
// the idle set, the FIFO waiters and the per-thread lend cache (HikariCP's
// ConcurrentBag, pgx's puddle). It knows nothing of connections: PoolCore keeps the
// round trips, the sizing, the threads, the statistics and the events, and lends
// through this. Unit-tested without a server: tests/client/lending_bag_test.cpp.
//
// Lending without the lock: a thread first tries the item it borrowed last (one CAS
// idle -> lent), and gives an item back with one CAS lent -> idle. Everything else
// takes the bag's mutex (mu_), which guards the places, the waiter queue and the
// counts. The two meet through one rule, kept under mu_:
//
//   while a thread waits, no item is idle and every lent item is `lent_slow`.
//
// Its borrower's CAS then fails, so the item comes back under the lock and goes to the
// longest waiter (strict FIFO: nobody can take it on the way). close() marks lent items
// the same way. The rule is established by mark_lent_slow_locked() when the first
// waiter arrives and kept by make_available_locked(), the only place an item becomes
// idle or is handed over under the lock.
//
// The hand-off: the returner, under mu_, takes the longest waiter out of the line, puts
// the item into the waiter's slot (Waiter::entry) and flips its signal; the waiter
// reads the slot without mu_. A waiter at the head of the line watches its signal for a
// short spin before it parks on it (a futex), and the returner wakes it, after letting
// go of mu_, only if it had parked (waiter_queue.hpp). So a hand-off costs at most one
// wake-up and one sleep, and none when the item comes back within the spin; the woken
// thread never runs into mu_.
//
// A place is never freed while the bag lives: an item that is removed leaves its place
// empty for the next one. That is what lets a thread keep a plain pointer to the place
// it used last and take it back with one CAS, even when what is in it was replaced in
// the meantime; a stale pointer costs a failed CAS.
//
// Item: a type derived from BagEntry and from Item::Contents, the movable part that
// add() puts in and remove() takes out (a default-constructed Contents is "empty").
// Contents are only written under mu_ (add, remove), so they may be read under it
// (for_each_lent) while a borrower holds the item; everything else in them belongs to
// whoever holds the item.
//
// mu_ is never held while calling out: the listener (someone waits, the owner may want
// to open an item) is called without it. The owner may call the bag while holding its
// own lock (the owner's lock before the bag's, never the other way).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>
#include <vector>

#include "waiter_queue.hpp"

namespace usher::detail {

using Clock = std::chrono::steady_clock;

enum class BagState : std::uint8_t {
  empty,      // nothing in the place: free for add(), or reserved by the opener
  idle,       // free: taken with a CAS idle -> lent, by anyone, without the lock
  lent,       // with a borrower, who gives it back with a CAS lent -> idle, no lock
  lent_slow,  // with a borrower, who must give it back under the lock: threads are
              // waiting (the hand-off goes to the first) or the bag is closed
  busy,       // the owner's own threads use it (keepalive, retirement checks)
};

// The bag's part of an item. `state` is the only field anyone may touch without
// holding the item; whoever moves it out of `idle` (CAS, acquire) holds the item.
struct BagEntry {
  std::atomic<BagState> state{BagState::empty};
  bool out_at_close = false;  // under the bag's lock: lent when the bag closed
};

// The per-thread memory of the place borrowed last, for a few bags at once
// (lending_bag.cpp). Bags are told apart by a number that is never reused (an address
// can be, by a later bag).
BagEntry* cached_entry(std::uint64_t bag_uid) noexcept;
void cache_entry(std::uint64_t bag_uid, BagEntry* entry) noexcept;
std::uint64_t next_bag_uid() noexcept;

struct BorrowOptions {
  bool try_only = false;    // never wait
  bool keep_place = false;  // wait at the head of the line (a borrower whose item failed
                            // its check keeps its place); skips the lend cache
};

// Points where a test can stop a thread, to make a race happen in one order (tests
// only; production bags have none).
struct BagTestHooks {
  // A borrower in line, after the listener, before it watches its slot.
  std::function<void()> waiting;
  // give_back() or add() put an item into a waiter's slot and let go of the lock, and
  // has not yet woken the waiter (if it had parked).
  std::function<void()> handed_over;
};

// A waiter at the head of the line (nobody ahead of it: the next item is its own)
// watches its slot for kSpinChecks pauses (about 6 to 20 us: 20 to 80 ns a pause,
// by CPU) before it parks: an item may come back within that time, and then it goes
// on without a sleep, a wake-up or the waker's system call. Further back it parks at
// once: on a machine with fewer cores than threads, spinning there would take the
// core from the threads that hold items, and its turn is further away than a spin.
// docs/client.md ("Fairness") has the measurements behind these.
inline constexpr std::size_t kSpinAhead = 1;
inline constexpr int kSpinChecks = 256;

template <class Item>
class LendingBag {
 public:
  using Contents = typename Item::Contents;
  static_assert(std::is_base_of_v<BagEntry, Item> && std::is_base_of_v<Contents, Item>);

  struct Counts {
    std::size_t idle = 0;      // idle, or busy with the owner's own threads
    std::size_t lent = 0;      // lent or lent_slow
    std::size_t reserved = 0;  // places reserved for an item being made (reserve())
    std::size_t waiting = 0;
    std::size_t handed_over = 0;  // items handed to a waiter, since the bag was made
    std::size_t woken = 0;        // of those: to a waiter that had parked, and was woken
    std::size_t open() const noexcept { return idle + lent; }
  };

  enum class Outcome {
    lent,                  // taken at once (the thread's own item, or an idle one)
    lent_after_wait,       // handed over after waiting in line
    nothing_idle,          // try_only, and nothing was idle (or others wait)
    timeout,               // the deadline passed in line
    closed,                // the bag was closed when borrow() was called
    closed_while_waiting,  // the bag was closed while waiting in line
    refused,               // refuse()'s error, and nothing open to wait for
  };
  struct Borrowed {
    Item* item = nullptr;  // set for lent and lent_after_wait
    Outcome outcome = Outcome::lent;
    std::exception_ptr refusal;  // set for refused
  };
  struct Removed {
    Contents contents;
    bool out_at_close = false;  // it was lent when the bag closed (PoolCore::refs_)
  };
  struct Closed {
    std::vector<Contents> removed;  // the items that were idle
    std::size_t lent = 0;           // the items still out, now lent_slow
  };

  // on_waiter: called (without the bag's lock, must not throw) each time a borrower
  // joins the line, after it joined, so that the owner can open an item for it.
  explicit LendingBag(std::function<void()> on_waiter = {})
      : uid_(next_bag_uid()), on_waiter_(std::move(on_waiter)) {}
  LendingBag(const LendingBag&) = delete;
  LendingBag& operator=(const LendingBag&) = delete;

  // --- borrowing and giving back

  // The thread's cached item (one CAS, no lock), else under the lock an idle item when
  // nobody waits, else a place in the FIFO line until an item is handed over, the
  // deadline passes, the bag closes or refuses.
  Borrowed borrow(Clock::time_point deadline, BorrowOptions options = {}) {
    if (!options.keep_place)
      if (Item* item = take_cached()) return {item, Outcome::lent, nullptr};
    std::unique_lock lk(mu_);
    if (closed_) return {nullptr, Outcome::closed, nullptr};
    if (waiters_.empty())
      if (Item* item = take_idle_locked()) return {remember(item), Outcome::lent, nullptr};
    if (options.try_only) return {nullptr, Outcome::nothing_idle, nullptr};
    if (refusing_locked()) return {nullptr, Outcome::refused, refusal_};
    Waiter w;
    bool first = waiters_.empty();
    std::size_t ahead = options.keep_place ? 0 : waiters_.size();
    options.keep_place ? waiters_.push_front(&w) : waiters_.push_back(&w);
    // From now on items come back under the lock (and may come to w at once: w is the
    // only waiter, and not parked, so there is nobody to wake).
    if (first) mark_lent_slow_locked();
    lk.unlock();
    if (on_waiter_) call_listener();
    return await_handoff(w, deadline, ahead);
  }

  // An item lent or busy comes back: with one CAS lent -> idle when nobody waits and the
  // bag is open (after which the item, and perhaps the bag, belong to others: the
  // caller touches neither), else under the lock into the longest waiter's slot, or
  // idle. False when the bag is closed: the item stays out, and the caller remove()s it.
  bool give_back(Item* item) noexcept {
    auto expected = BagState::lent;
    if (item->state.compare_exchange_strong(expected, BagState::idle, std::memory_order_release,
                                            std::memory_order_relaxed))
      return true;
    Handoff h;
    {
      std::lock_guard lk(mu_);
      if (closed_) return false;
      h = make_available_locked(item);
    }
    finish_handoff(h);
    return true;
  }

  // --- the owner's side: places, contents, closing

  // An empty place for an item about to be made (counted in Counts::reserved): add()
  // fills it, cancel() gives it up.
  Item* reserve() {
    std::lock_guard lk(mu_);
    Item* place;
    if (!free_.empty()) {
      place = free_.back();
      free_.pop_back();
    } else {
      items_.push_back(std::make_unique<Item>());
      place = items_.back().get();
    }
    ++reserved_;
    return place;
  }
  // Fills a reserved place and makes it available (to the longest waiter, or idle).
  // False, with `contents` untouched and the place given up, when the bag is closed.
  bool add(Item* place, Contents&& contents) {
    Handoff h;
    {
      std::lock_guard lk(mu_);
      --reserved_;
      if (closed_) {
        free_.push_back(place);
        return false;
      }
      // Filled while empty (nobody can take an empty place), published by the state.
      static_cast<Contents&>(*place) = std::move(contents);
      h = make_available_locked(place);
    }
    finish_handoff(h);
    return true;
  }
  void cancel(Item* place) noexcept {
    std::lock_guard lk(mu_);
    --reserved_;
    free_.push_back(place);
  }

  // Takes the contents out of an item the caller holds (lent or busy); the place stays
  // for the next one (a thread may still hold a pointer to it in its lend cache, where
  // a CAS on `empty` simply fails).
  Removed remove(Item* item) {
    std::lock_guard lk(mu_);
    Removed out{std::move(static_cast<Contents&>(*item)), std::exchange(item->out_at_close, false)};
    static_cast<Contents&>(*item) = Contents{};
    item->state.store(BagState::empty, std::memory_order_relaxed);
    free_.push_back(item);
    if (closed_) returned_cv_.notify_all();
    return out;
  }

  // Every idle item, now busy (held by the caller), oldest place first. A lock-free
  // borrow may beat this to one: then it is not idle.
  std::vector<Item*> take_idle() {
    std::vector<Item*> out;
    std::lock_guard lk(mu_);
    for (const auto& item : items_) {
      auto expected = BagState::idle;
      if (item->state.compare_exchange_strong(expected, BagState::busy, std::memory_order_acquire,
                                              std::memory_order_relaxed))
        out.push_back(item.get());
    }
    return out;
  }

  // While `error` is set and nothing is open (idle, busy or lent), borrowers get it at
  // once instead of waiting for an item that may never come; waiting ones are woken to
  // get it. Null clears it.
  void refuse(std::exception_ptr error) {
    std::vector<Waiter*> parked;
    {
      std::lock_guard lk(mu_);
      refusal_ = std::move(error);
      if (refusing_locked()) parked = poke_waiters_locked();
    }
    for (Waiter* w : parked) unpark(w);
  }

  // Stops lending: waiters get closed_while_waiting, idle items are removed (returned),
  // lent ones must come back under the lock (lent_slow; give_back() says false) and are
  // marked out_at_close. Busy ones stay with their holder. Once only: later calls
  // return nothing.
  Closed close() {
    Closed out;
    std::vector<Waiter*> parked;
    std::unique_lock lk(mu_);
    if (closed_) return out;
    closed_ = true;
    parked = poke_waiters_locked();
    for (const auto& item : items_) {
      auto s = item->state.load(std::memory_order_acquire);
      while (true) {
        if (s == BagState::idle) {
          if (!item->state.compare_exchange_weak(s, BagState::busy, std::memory_order_acquire))
            continue;
          out.removed.push_back(std::move(static_cast<Contents&>(*item)));
          static_cast<Contents&>(*item) = Contents{};
          item->state.store(BagState::empty, std::memory_order_relaxed);
          free_.push_back(item.get());
        } else if (s == BagState::lent || s == BagState::lent_slow) {
          if (s == BagState::lent &&
              !item->state.compare_exchange_weak(s, BagState::lent_slow, std::memory_order_acq_rel))
            continue;
          item->out_at_close = true;
          ++out.lent;
        }
        break;  // busy: its holder removes it; empty: nothing
      }
    }
    lk.unlock();
    for (Waiter* w : parked) unpark(w);
    return out;
  }

  // After close(): waits up to `timeout` for every lent item to be removed. True if
  // none is out.
  bool await_returned(std::chrono::milliseconds timeout) {
    std::unique_lock lk(mu_);
    return returned_cv_.wait_for(lk, timeout, [&] { return count_locked().lent == 0; });
  }

  // Of the borrowers in line, those asleep (the others watch their slot).
  std::size_t parked() const {
    std::lock_guard lk(mu_);
    std::size_t n = 0;
    waiters_.for_each([&](const Waiter* w) {
      if (w->signal.load(std::memory_order_relaxed) == kParked) ++n;
    });
    return n;
  }

  // Tests only, before any borrower: see BagTestHooks.
  void set_test_hooks(const BagTestHooks* hooks) noexcept { hooks_ = hooks; }

  // --- looking

  Counts counts() const {
    std::lock_guard lk(mu_);
    return count_locked();
  }

  // f(Item&) for each item out with a borrower, under the bag's lock: its contents
  // cannot change meanwhile. f must not call the bag.
  template <class F>
  void for_each_lent(F&& f) const {
    std::lock_guard lk(mu_);
    for (const auto& item : items_) {
      auto s = item->state.load(std::memory_order_acquire);
      if (s == BagState::lent || s == BagState::lent_slow) f(*item);
    }
  }

 private:
  Item* take_cached() noexcept {
    // Only idle while nobody waits (the rule above): taking it overtakes no one.
    BagEntry* entry = cached_entry(uid_);
    if (!entry) return nullptr;
    auto expected = BagState::idle;
    if (entry->state.compare_exchange_strong(expected, BagState::lent, std::memory_order_acquire,
                                             std::memory_order_relaxed))
      return static_cast<Item*>(entry);
    return nullptr;
  }

  Item* remember(Item* item) noexcept {
    cache_entry(uid_, item);
    return item;
  }

  Item* take_idle_locked() {
    // The first idle item: work concentrates on the oldest places, so that items
    // beyond what the load needs go idle and can be retired. A thread that finds its
    // own item taken settles on another one, and keeps that one from then on.
    for (const auto& item : items_) {
      auto expected = BagState::idle;
      if (item->state.compare_exchange_strong(expected, BagState::lent, std::memory_order_acquire,
                                              std::memory_order_relaxed))
        return item.get();
    }
    return nullptr;
  }

  void mark_lent_slow_locked() {
    // The first waiter arrived: from now on items come back under the lock. Each item
    // races with its borrower's lock-free return or with a lock-free borrow; the CAS
    // loop settles each one, so that afterwards none is idle or plain lent.
    for (const auto& item : items_) {
      auto s = item->state.load(std::memory_order_acquire);
      while (true) {
        if (s == BagState::idle) {
          if (item->state.compare_exchange_weak(s, BagState::busy, std::memory_order_acquire))
            make_available_locked(item.get());  // to the new waiter, which has not parked
          else
            continue;
        } else if (s == BagState::lent) {
          if (!item->state.compare_exchange_weak(s, BagState::lent_slow, std::memory_order_acq_rel))
            continue;
        }
        break;
      }
    }
  }

  // What a hand-off under the lock leaves to do after it: the waiter to wake, if it had
  // parked. Holds no pointer to the bag, which may be gone once the lock is let go
  // (the waiter can return the item and the last lease close the pool).
  struct Handoff {
    bool to_waiter = false;
    Waiter* wake = nullptr;
    const BagTestHooks* hooks = nullptr;
  };

  Handoff make_available_locked(Item* item) {
    if (Waiter* w = waiters_.pop_front()) {
      // Straight into the longest waiter's slot: nobody can overtake it on the way. Lent
      // slow while others still wait, so that this one comes back under the lock too.
      item->state.store(waiters_.empty() ? BagState::lent : BagState::lent_slow,
                        std::memory_order_release);
      w->entry.store(item, std::memory_order_relaxed);
      ++handed_over_;
      Handoff h{true, nullptr, hooks_};
      // Release: the slot and the item's state before the signal. A waiter still
      // watching (spinning) sees it and goes; only a parked one needs a wake.
      if (signal_waiter(w)) {
        ++woken_;
        h.wake = w;
      }
      return h;
    }
    item->state.store(BagState::idle, std::memory_order_release);
    return {};
  }

  // After the lock is let go: wakes the waiter that was handed an item while parked.
  static void finish_handoff(const Handoff& h) noexcept {
    if (h.to_waiter && h.hooks && h.hooks->handed_over) h.hooks->handed_over();
    if (h.wake) unpark(h.wake);
  }

  // Close or refusal: every waiter's signal, with an empty slot; they look under the
  // lock why. Returns the parked ones, to be woken after the lock is let go.
  std::vector<Waiter*> poke_waiters_locked() {
    std::vector<Waiter*> parked;
    waiters_.for_each([&](Waiter* w) {
      if (signal_waiter(w)) parked.push_back(w);
    });
    return parked;
  }

  // The waiter's side, without the lock: spin a little on the signal, then park on it.
  Borrowed await_handoff(Waiter& w, Clock::time_point deadline, std::size_t ahead) {
    if (hooks_ && hooks_->waiting) hooks_->waiting();
    if (ahead < kSpinAhead)
      for (int i = 0; i < kSpinChecks; ++i) {
        if (w.signal.load(std::memory_order_relaxed) == kSignalled) break;
        spin_pause();
      }
    while (true) {
      auto s = w.signal.load(std::memory_order_acquire);
      if (s == kSignalled) {
        if (BagEntry* e = w.entry.load(std::memory_order_relaxed)) {
          // make_available_locked() took w out of the line and marked the item lent for
          // us: no lock on this side.
          finish_parking(&w);
          return {remember(static_cast<Item*>(e)), Outcome::lent_after_wait, nullptr};
        }
        // Poked: closed or refused. Still in line; look under the lock.
        std::unique_lock lk(mu_);
        if (BagEntry* e = w.entry.load(std::memory_order_relaxed)) {  // handed over since
          lk.unlock();
          finish_parking(&w);
          return {remember(static_cast<Item*>(e)), Outcome::lent_after_wait, nullptr};
        }
        if (closed_ || refusing_locked()) {
          waiters_.remove(&w);
          bool closed = closed_;
          auto refusal = closed ? std::exception_ptr{} : refusal_;
          lk.unlock();
          finish_parking(&w);
          if (closed) return {nullptr, Outcome::closed_while_waiting, nullptr};
          return {nullptr, Outcome::refused, std::move(refusal)};
        }
        w.signal.store(kWaiting, std::memory_order_relaxed);  // the refusal was lifted
        continue;
      }
      if (s == kWaiting &&
          !w.signal.compare_exchange_weak(s, kParked, std::memory_order_acquire,
                                          std::memory_order_acquire))
        continue;
      if (park_until(&w, deadline)) continue;  // woken (or spuriously): look again
      // The deadline passed: leave the line, unless an item came at the last moment.
      std::unique_lock lk(mu_);
      if (w.signal.load(std::memory_order_acquire) == kSignalled) continue;
      waiters_.remove(&w);
      lk.unlock();
      finish_parking(&w);
      return {nullptr, Outcome::timeout, nullptr};
    }
  }

  Counts count_locked() const {
    // Lock-free lends and returns move items between idle and lent while this runs;
    // each is counted once either way, so idle + lent is exact.
    Counts c;
    for (const auto& item : items_) {
      switch (item->state.load(std::memory_order_relaxed)) {
        case BagState::idle:
        case BagState::busy: ++c.idle; break;
        case BagState::lent:
        case BagState::lent_slow: ++c.lent; break;
        case BagState::empty: break;
      }
    }
    c.reserved = reserved_;
    c.waiting = waiters_.size();
    c.handed_over = handed_over_;
    c.woken = woken_;
    return c;
  }

  bool refusing_locked() const { return refusal_ && count_locked().open() == 0; }

  void call_listener() noexcept { on_waiter_(); }

  const std::uint64_t uid_;  // names this bag in the threads' lend caches
  const std::function<void()> on_waiter_;
  // The slow path: on its own cache lines, away from what the fast path reads.
  alignas(64) mutable std::mutex mu_;
  bool closed_ = false;
  WaiterQueue waiters_;
  std::vector<std::unique_ptr<Item>> items_;  // every place; never shrinks
  std::vector<Item*> free_;                   // empty places, not reserved
  std::size_t reserved_ = 0;
  std::size_t handed_over_ = 0, woken_ = 0;
  const BagTestHooks* hooks_ = nullptr;
  std::exception_ptr refusal_;
  std::condition_variable returned_cv_;  // after close: a lent item was removed
};

}  // namespace usher::detail
