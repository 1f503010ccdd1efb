// The lending bag (client/src/lending_bag.hpp) on its own, without a server: items are
// numbered tokens. FIFO order, no double lend, the per-thread cache, growth and shrink,
// close and refusal. No test sleeps to reach a case: a borrower's arrival in the line is
// seen through the bag's listener (Arrivals), and a hand-off happens inside give_back()
// before it returns. These tests also run under ThreadSanitizer (tests/suites/client.sh).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <latch>
#include <mutex>
#include <exception>
#include <stdexcept>
#include <thread>
#include <vector>

#include "lending_bag.hpp"

namespace usher::detail {
namespace {

using namespace std::chrono_literals;

struct Token {
  int id = 0;  // 0: empty
};
struct Item : BagEntry, Token {
  using Contents = Token;
  std::atomic<int> holders{0};  // the test's own check: never above 1
};
using Bag = LendingBag<Item>;
using Outcome = Bag::Outcome;

// Counts the borrowers that joined the line: the bag calls this after each joined.
class Arrivals {
 public:
  std::function<void()> listener() {
    return [this] {
      std::lock_guard lk(mu_);
      ++count_;
      cv_.notify_all();
    };
  }
  void await(int n) {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return count_ >= n; });
  }
  int count() {
    std::lock_guard lk(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

Item* add(Bag& bag, int id) {
  Item* place = bag.reserve();
  EXPECT_TRUE(bag.add(place, Token{id}));
  return place;
}

// A deadline no test reaches unless the bag is broken (then it fails, not hangs).
Clock::time_point later() { return Clock::now() + 60s; }
Clock::time_point already() { return Clock::now() - 1ms; }

Item* take(Bag& bag) {
  auto got = bag.borrow(already(), {.try_only = true});
  return got.outcome == Outcome::lent ? got.item : nullptr;
}

// The order in which borrowers in line were served.
class Turns {
 public:
  // A thread that waits in line, notes its turn and passes the item on.
  std::thread waiter(Bag& bag, int n, BorrowOptions options = {}) {
    return std::thread([this, &bag, n, options] {
      auto got = bag.borrow(later(), options);
      EXPECT_EQ(got.outcome, Outcome::lent_after_wait);
      if (!got.item) return;
      {
        std::lock_guard lk(mu_);
        turns_.push_back(n);
      }
      bag.give_back(got.item);  // to the next in line
    });
  }
  std::vector<int> turns() {
    std::lock_guard lk(mu_);
    return turns_;
  }

 private:
  std::mutex mu_;
  std::vector<int> turns_;
};

TEST(LendingBagTest, LendsEachItemOnceAndNothingWhenAllAreOut) {
  Bag bag;
  add(bag, 1);
  add(bag, 2);
  Item* a = take(bag);
  Item* b = take(bag);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(bag.borrow(already(), {.try_only = true}).outcome, Outcome::nothing_idle);
  auto c = bag.counts();
  EXPECT_EQ(c.lent, 2u);
  EXPECT_EQ(c.idle, 0u);
  EXPECT_TRUE(bag.give_back(a));
  EXPECT_EQ(take(bag), a);
  EXPECT_TRUE(bag.give_back(a));
  EXPECT_TRUE(bag.give_back(b));
  EXPECT_EQ(bag.counts().idle, 2u);
}

TEST(LendingBagTest, AThreadTakesBackTheItemItBorrowedLast) {
  Bag bag;
  Item* first = add(bag, 1);
  Item* second = add(bag, 2);
  ASSERT_EQ(take(bag), first);  // the first idle item, oldest place first
  ASSERT_EQ(take(bag), second);
  EXPECT_TRUE(bag.give_back(second));
  EXPECT_TRUE(bag.give_back(first));
  // Both idle: this thread's cache names `second`, the one it borrowed last.
  EXPECT_EQ(take(bag), second);
  // Another thread has no cache for this bag: it gets the first idle item, and keeps
  // that one from then on, while this thread keeps its own.
  Item* other = nullptr;
  std::thread([&] {
    other = take(bag);
    if (other) bag.give_back(other);
    Item* again = take(bag);
    EXPECT_EQ(again, other);
    if (again) bag.give_back(again);
  }).join();
  EXPECT_EQ(other, first);
  EXPECT_TRUE(bag.give_back(second));
  EXPECT_EQ(take(bag), second);
  EXPECT_TRUE(bag.give_back(second));
}

TEST(LendingBagTest, EachBagHasItsOwnEntryInTheThreadsCache) {
  Bag one, two;
  Item* one_a = add(one, 1);
  Item* one_b = add(one, 2);
  Item* two_a = add(two, 3);
  Item* two_b = add(two, 4);
  ASSERT_EQ(take(one), one_a);
  ASSERT_EQ(take(one), one_b);
  ASSERT_EQ(take(two), two_a);
  ASSERT_EQ(take(two), two_b);
  EXPECT_TRUE(one.give_back(one_a));
  EXPECT_TRUE(one.give_back(one_b));
  EXPECT_TRUE(two.give_back(two_a));
  EXPECT_TRUE(two.give_back(two_b));
  // Borrowing from `two` did not make this thread forget `one_b`.
  EXPECT_EQ(take(one), one_b);
  EXPECT_EQ(take(two), two_b);
  EXPECT_TRUE(one.give_back(one_b));
  EXPECT_TRUE(two.give_back(two_b));
}

TEST(LendingBagTest, AStaleCacheEntryIsNeverLentTwice) {
  Bag bag;
  Item* first = add(bag, 1);
  Item* second = add(bag, 2);
  ASSERT_EQ(take(bag), first);
  ASSERT_EQ(take(bag), second);  // this thread's cache names `second`
  auto removed = bag.remove(second);
  EXPECT_EQ(removed.contents.id, 2);
  EXPECT_EQ(second->id, 0);  // the place is empty
  // The cached place is empty: its CAS fails, and nothing else is idle.
  EXPECT_EQ(bag.borrow(already(), {.try_only = true}).outcome, Outcome::nothing_idle);
  // The place is reused for a new item, which another thread takes first: this
  // thread's cached pointer to it must not lend it again.
  EXPECT_EQ(add(bag, 3), second);
  Item* theirs = nullptr;
  std::thread([&] { theirs = take(bag); }).join();
  ASSERT_EQ(theirs, second);
  EXPECT_EQ(bag.borrow(already(), {.try_only = true}).outcome, Outcome::nothing_idle);
  EXPECT_TRUE(bag.give_back(second));  // for the other thread
  // Idle again: the cached pointer lends the new item in the old place.
  Item* mine = take(bag);
  ASSERT_EQ(mine, second);
  EXPECT_EQ(mine->id, 3);
  EXPECT_TRUE(bag.give_back(mine));
  EXPECT_TRUE(bag.give_back(first));
}

TEST(LendingBagTest, WaitersAreServedInTheOrderTheyArrived) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Item* item = add(bag, 1);
  ASSERT_EQ(take(bag), item);
  constexpr int kWaiters = 5;
  Turns turns;
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.push_back(turns.waiter(bag, i));
    arrivals.await(i + 1);  // waiter i is in line before waiter i + 1 starts
  }
  EXPECT_EQ(bag.counts().waiting, static_cast<std::size_t>(kWaiters));
  // Lent slow while others wait: the return goes through the lock to the first waiter.
  EXPECT_EQ(item->state.load(), BagState::lent_slow);
  EXPECT_TRUE(bag.give_back(item));
  for (auto& t : waiters) t.join();
  EXPECT_EQ(turns.turns(), (std::vector<int>{0, 1, 2, 3, 4}));
  // Nobody waits any more: the item is idle again.
  EXPECT_EQ(bag.counts().waiting, 0u);
  EXPECT_EQ(bag.counts().idle, 1u);
}

TEST(LendingBagTest, AReturnGoesToTheWaiterNotToTheThreadThatUsedItLast) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Item* item = add(bag, 1);
  ASSERT_EQ(take(bag), item);  // this thread's cache names it
  std::latch may_return(1);
  Item* waiter_got = nullptr;
  std::thread waiter([&] {
    waiter_got = bag.borrow(later()).item;
    may_return.wait();
    if (waiter_got) bag.give_back(waiter_got);
  });
  arrivals.await(1);
  EXPECT_TRUE(bag.give_back(item));
  // Handed over inside give_back(): this thread cannot take it back on the way.
  EXPECT_EQ(bag.borrow(already(), {.try_only = true}).outcome, Outcome::nothing_idle);
  may_return.count_down();
  waiter.join();
  EXPECT_EQ(waiter_got, item);
  EXPECT_EQ(take(bag), item);  // nobody waits: the fast path works again
  EXPECT_TRUE(bag.give_back(item));
}

TEST(LendingBagTest, LentItemsComeBackThroughTheLockWhileSomeoneWaits) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Item* a = add(bag, 1);
  Item* b = add(bag, 2);
  ASSERT_EQ(take(bag), a);
  ASSERT_EQ(take(bag), b);
  EXPECT_EQ(a->state.load(), BagState::lent);  // would come back with one CAS
  Item* waiter_got = nullptr;
  std::latch may_return(1);
  std::thread waiter([&] {
    waiter_got = bag.borrow(later()).item;
    may_return.wait();
    if (waiter_got) bag.give_back(waiter_got);
  });
  arrivals.await(1);
  // The first waiter's arrival marked every lent item: no CAS return can pass it.
  EXPECT_EQ(a->state.load(), BagState::lent_slow);
  EXPECT_EQ(b->state.load(), BagState::lent_slow);
  EXPECT_TRUE(bag.give_back(a));
  // Handed to the last waiter: plain lent again, its return needs no lock.
  EXPECT_EQ(a->state.load(), BagState::lent);
  EXPECT_EQ(b->state.load(), BagState::lent_slow);
  EXPECT_TRUE(bag.give_back(b));  // through the lock: nobody waits, so idle
  EXPECT_EQ(b->state.load(), BagState::idle);
  may_return.count_down();
  waiter.join();
  EXPECT_EQ(waiter_got, a);
  // keep_place only reorders the line: with nobody in it, an idle item is lent.
  auto got = bag.borrow(later(), {.keep_place = true});
  EXPECT_EQ(got.outcome, Outcome::lent);
  EXPECT_EQ(arrivals.count(), 1);
  EXPECT_TRUE(bag.give_back(got.item));
}

TEST(LendingBagTest, AWaiterThatKeepsItsPlaceGoesBeforeTheOthers) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Item* item = add(bag, 1);
  ASSERT_EQ(take(bag), item);
  Turns turns;
  std::thread first = turns.waiter(bag, 1);
  arrivals.await(1);
  std::thread second = turns.waiter(bag, 2, {.keep_place = true});  // its item failed a check
  arrivals.await(2);
  EXPECT_TRUE(bag.give_back(item));
  first.join();
  second.join();
  EXPECT_EQ(turns.turns(), (std::vector<int>{2, 1}));
}

TEST(LendingBagTest, AWaiterLeavesTheLineAtItsDeadline) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Item* item = add(bag, 1);
  ASSERT_EQ(take(bag), item);
  auto got = bag.borrow(already());
  EXPECT_EQ(got.outcome, Outcome::timeout);
  EXPECT_EQ(got.item, nullptr);
  EXPECT_EQ(arrivals.count(), 1);  // it did join the line, and the owner was told
  EXPECT_EQ(bag.counts().waiting, 0u);
  // The return finds nobody waiting: idle, and lent again at once.
  EXPECT_TRUE(bag.give_back(item));
  EXPECT_EQ(bag.counts().idle, 1u);
  EXPECT_EQ(take(bag), item);
  EXPECT_TRUE(bag.give_back(item));
}

TEST(LendingBagTest, NoItemIsEverLentTwice) {
  // More threads than items: lock-free lends and returns, the slow path, the line and
  // hand-offs all meet. Each holder checks it is alone with its item.
  constexpr int kItems = 3, kThreads = 8, kRounds = 2000;
  Bag bag;
  for (int i = 1; i <= kItems; ++i) add(bag, i);
  std::atomic<int> doubled{0}, failed{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int r = 0; r < kRounds; ++r) {
        auto got = bag.borrow(later());
        if (!got.item) {
          ++failed;
          return;
        }
        if (got.item->holders.fetch_add(1) != 0) ++doubled;
        if (got.item->id == 0) ++doubled;  // an empty place was lent
        got.item->holders.fetch_sub(1);
        bag.give_back(got.item);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(doubled.load(), 0);
  EXPECT_EQ(failed.load(), 0);
  auto c = bag.counts();
  EXPECT_EQ(c.idle, static_cast<std::size_t>(kItems));
  EXPECT_EQ(c.lent, 0u);
  EXPECT_EQ(c.waiting, 0u);
}

TEST(LendingBagTest, GrowsByReservedPlacesAndReusesTheEmptyOnes) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Item* a = bag.reserve();
  Item* b = bag.reserve();
  EXPECT_NE(a, b);
  auto c = bag.counts();
  EXPECT_EQ(c.reserved, 2u);
  EXPECT_EQ(c.open(), 0u);
  // A reserved place is not lent before it is filled.
  EXPECT_EQ(bag.borrow(already(), {.try_only = true}).outcome, Outcome::nothing_idle);
  bag.cancel(b);
  EXPECT_EQ(bag.counts().reserved, 1u);
  // Filling goes to a waiter if there is one.
  Item* waiter_got = nullptr;
  std::thread waiter([&] {
    waiter_got = bag.borrow(later()).item;
    if (waiter_got) bag.give_back(waiter_got);
  });
  arrivals.await(1);
  EXPECT_TRUE(bag.add(a, Token{7}));
  waiter.join();
  EXPECT_EQ(waiter_got, a);
  c = bag.counts();
  EXPECT_EQ(c.reserved, 0u);
  EXPECT_EQ(c.idle, 1u);
  // Shrink: the item leaves, its place stays for the next one; no new place is made.
  Item* held = take(bag);
  ASSERT_EQ(held, a);
  EXPECT_EQ(bag.remove(held).contents.id, 7);
  EXPECT_EQ(bag.counts().open(), 0u);
  Item* again = bag.reserve();
  EXPECT_TRUE(again == a || again == b);
  Item* other = bag.reserve();
  EXPECT_TRUE((other == a || other == b) && other != again);
  bag.cancel(again);
  bag.cancel(other);
}

TEST(LendingBagTest, TheOwnersThreadsTakeEveryIdleItemBusy) {
  Bag bag;
  Item* a = add(bag, 1);
  Item* b = add(bag, 2);
  Item* lent = take(bag);
  ASSERT_EQ(lent, a);
  auto busy = bag.take_idle();
  ASSERT_EQ(busy, std::vector<Item*>{b});
  EXPECT_EQ(b->state.load(), BagState::busy);
  // Busy items count as open and idle, and are not lent.
  EXPECT_EQ(bag.counts().idle, 1u);
  EXPECT_EQ(bag.borrow(already(), {.try_only = true}).outcome, Outcome::nothing_idle);
  EXPECT_TRUE(bag.give_back(b));  // back to idle
  EXPECT_EQ(b->state.load(), BagState::idle);
  int seen = 0;
  bag.for_each_lent([&](const Item& i) {
    ++seen;
    EXPECT_EQ(i.id, 1);
  });
  EXPECT_EQ(seen, 1);
  EXPECT_TRUE(bag.give_back(a));
}

TEST(LendingBagTest, CloseWakesWaitersAndKeepsLentItemsOut) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Item* held = add(bag, 1);
  add(bag, 2);
  ASSERT_EQ(take(bag), held);
  // The other item is with the owner's own threads (busy), so a borrower waits.
  auto busy = bag.take_idle();
  ASSERT_EQ(busy.size(), 1u);
  Outcome waiter_outcome = Outcome::lent;
  std::thread waiter([&] { waiter_outcome = bag.borrow(later()).outcome; });
  arrivals.await(1);
  auto closed = bag.close();
  waiter.join();
  EXPECT_EQ(waiter_outcome, Outcome::closed_while_waiting);
  EXPECT_EQ(closed.lent, 1u);
  EXPECT_TRUE(closed.removed.empty());  // nothing was idle; the busy one is its holder's
  EXPECT_EQ(held->state.load(), BagState::lent_slow);
  EXPECT_EQ(bag.borrow(later()).outcome, Outcome::closed);
  // Given back after close: refused; the holders remove them.
  EXPECT_FALSE(bag.give_back(busy[0]));
  EXPECT_FALSE(bag.remove(busy[0]).out_at_close);
  EXPECT_FALSE(bag.await_returned(0ms));  // `held` is still out
  EXPECT_FALSE(bag.give_back(held));
  auto removed = bag.remove(held);
  EXPECT_TRUE(removed.out_at_close);
  EXPECT_EQ(removed.contents.id, 1);
  EXPECT_TRUE(bag.await_returned(0ms));
  EXPECT_EQ(bag.counts().open(), 0u);
  EXPECT_EQ(bag.close().lent, 0u);  // a second close finds nothing
}

TEST(LendingBagTest, CloseRemovesTheIdleItems) {
  Bag bag;
  add(bag, 1);
  add(bag, 2);
  auto closed = bag.close();
  ASSERT_EQ(closed.removed.size(), 2u);
  EXPECT_EQ(closed.removed[0].id + closed.removed[1].id, 3);
  EXPECT_EQ(closed.lent, 0u);
  EXPECT_EQ(bag.counts().open(), 0u);
  // A place reserved before the close cannot be filled after it.
  Bag other;
  Item* place = other.reserve();
  other.close();
  Token t{5};
  EXPECT_FALSE(other.add(place, std::move(t)));
  EXPECT_EQ(t.id, 5);  // left with the caller
  EXPECT_EQ(other.counts().reserved, 0u);
}

TEST(LendingBagTest, ARefusalFailsBorrowersOnlyWhileNothingIsOpen) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  auto error = std::make_exception_ptr(std::runtime_error("no such database"));
  // A waiter in line for the first item is woken with the refusal.
  Bag::Borrowed waited;
  std::thread waiter([&] { waited = bag.borrow(later()); });
  arrivals.await(1);
  bag.refuse(error);
  waiter.join();
  EXPECT_EQ(waited.outcome, Outcome::refused);
  EXPECT_EQ(waited.refusal, error);
  // New borrowers get it at once, without joining the line.
  auto now = bag.borrow(later());
  EXPECT_EQ(now.outcome, Outcome::refused);
  EXPECT_EQ(arrivals.count(), 1);
  // With an item open (even lent), waiting makes sense again: a timeout, not a refusal.
  Item* item = add(bag, 1);
  ASSERT_EQ(take(bag), item);
  EXPECT_EQ(bag.borrow(already()).outcome, Outcome::timeout);
  EXPECT_TRUE(bag.give_back(item));
  bag.remove(take(bag));
  EXPECT_EQ(bag.borrow(already()).outcome, Outcome::refused);
  bag.refuse(nullptr);
  EXPECT_EQ(bag.borrow(already()).outcome, Outcome::timeout);
}

// Installed in a bag, holds the first borrower that reaches its `waiting` hook (in
// line, before it watches its slot) until let go; later ones pass.
class HeldWatcher {
 public:
  explicit HeldWatcher(Bag& bag) { bag.set_test_hooks(&hooks_); }
  void await_held() { in_hook_.wait(); }
  void let_go() { may_watch_.count_down(); }

 private:
  std::atomic<int> calls_{0};
  std::latch in_hook_{1}, may_watch_{1};
  BagTestHooks hooks_{.waiting =
                          [this] {
                            if (calls_.fetch_add(1) != 0) return;
                            in_hook_.count_down();
                            may_watch_.wait();
                          },
                      .handed_over = {}};
};

TEST(LendingBagTest, AReturnGoesIntoTheSlotOfAWaiterThatHasNotParkedWithoutAWake) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  HeldWatcher held(bag);
  Item* item = add(bag, 1);
  ASSERT_EQ(take(bag), item);
  Turns turns;
  std::thread first = turns.waiter(bag, 1);
  held.await_held();  // in line, not parked: it has not even looked at its slot yet
  EXPECT_TRUE(bag.give_back(item));
  auto c = bag.counts();
  EXPECT_EQ(c.handed_over, 1u);
  EXPECT_EQ(c.woken, 0u);  // the waiter was not asleep: no wake-up
  EXPECT_EQ(c.waiting, 0u);
  // A newcomer arriving now finds the item in the first waiter's slot: not idle, and
  // not its own cached item either (this thread returned it a moment ago).
  EXPECT_EQ(bag.borrow(already(), {.try_only = true}).outcome, Outcome::nothing_idle);
  std::thread second = turns.waiter(bag, 2);
  arrivals.await(2);  // the newcomer is in line, behind the first waiter
  held.let_go();
  first.join();
  second.join();
  EXPECT_EQ(turns.turns(), (std::vector<int>{1, 2}));
  EXPECT_EQ(bag.counts().handed_over, 2u);
  EXPECT_EQ(bag.counts().idle, 1u);
}

TEST(LendingBagTest, AParkedWaiterIsWokenAndANewcomerBetweenHandOffAndWakeQueuesBehindIt) {
#if !defined(__linux__)
  GTEST_SKIP() << "the portable fallback wakes the waiter at the hand-off, under the lock";
#endif
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  Turns turns;
  std::thread newcomer;
  Outcome newcomer_try = Outcome::lent;
  std::atomic<int> hand_offs{0};
  // Runs in give_back() after the item went into the slot, before the waiter is woken.
  BagTestHooks hooks{.waiting = {}, .handed_over = [&] {
                       if (hand_offs.fetch_add(1) != 0) return;  // the first hand-off only
                       newcomer_try = bag.borrow(already(), {.try_only = true}).outcome;
                       newcomer = turns.waiter(bag, 2);
                       arrivals.await(2);
                     }};
  bag.set_test_hooks(&hooks);
  Item* item = add(bag, 1);
  ASSERT_EQ(take(bag), item);
  std::thread first = turns.waiter(bag, 1);
  arrivals.await(1);
  // Its spin is bounded: it parks (polled, with the test's 60 s bound).
  auto until = later();
  while (bag.parked() != 1 && Clock::now() < until) std::this_thread::yield();
  ASSERT_EQ(bag.parked(), 1u);
  EXPECT_TRUE(bag.give_back(item));
  first.join();
  newcomer.join();
  EXPECT_EQ(newcomer_try, Outcome::nothing_idle);
  EXPECT_EQ(turns.turns(), (std::vector<int>{1, 2}));
  auto c = bag.counts();
  EXPECT_EQ(c.handed_over, 2u);
  EXPECT_GE(c.woken, 1u);  // the parked one; the newcomer may not have parked yet
  EXPECT_EQ(c.idle, 1u);
}

TEST(LendingBagTest, AWaiterWokenByARefusalThatIsLiftedWaitsOn) {
  Arrivals arrivals;
  Bag bag(arrivals.listener());
  HeldWatcher held(bag);
  Bag::Borrowed waited;
  std::thread waiter([&] { waited = bag.borrow(later()); });
  held.await_held();
  bag.refuse(std::make_exception_ptr(std::runtime_error("no such database")));
  bag.refuse(nullptr);  // lifted before the waiter looked
  held.let_go();
  // It finds neither an item nor a reason to leave: back to waiting, still in line.
  auto until = later();
  while (bag.parked() != 1 && Clock::now() < until) std::this_thread::yield();
  EXPECT_EQ(bag.counts().waiting, 1u);
  Item* item = bag.reserve();
  EXPECT_TRUE(bag.add(item, Token{1}));
  waiter.join();
  EXPECT_EQ(waited.outcome, Outcome::lent_after_wait);
  EXPECT_EQ(waited.item, item);
  EXPECT_TRUE(bag.give_back(item));
}

}  // namespace
}  // namespace usher::detail
