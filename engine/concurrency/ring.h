// Owns the bounded MPMC rings between pipeline stages: a lock-free core (Ring) and a blocking,
// closable layer (BlockingRing). Guaranteed: each accepted item is popped exactly once, in push
// order per producer. Not guaranteed: a global order across producers; size() is approximate.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <type_traits>
#include <utility>

#include "core/error.h"

namespace ignite {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kMaxRingCapacity = std::size_t{1} << 30;

// Lock-free bounded MPMC queue (D. Vyukov's scheme): each slot carries a sequence number saying
// whose turn it is, so a producer or consumer claims a position with one CAS and never waits on
// a lock. Items must be nothrow-constructible from what is pushed: a throw after the claim would
// leave a hole that stalls every consumer. The claims and size() are seq_cst (free on x86) so
// that BlockingRing can order them against its sleeper counts without fences.
template <typename T>
class Ring {
 public:
  explicit Ring(std::size_t capacity)
      : capacity_(checked_capacity(capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<Slot[]>(capacity_)) {
    for (std::size_t i = 0; i < capacity_; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }

  // Destroys what is still queued. No other thread may use the ring by now.
  ~Ring() {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    for (std::size_t pos = head_.load(std::memory_order_relaxed); pos != tail; ++pos) {
      slots_[pos & mask_].item()->~T();
    }
  }

  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // False when full. `value` is consumed (moved from) only when this returns true.
  template <typename U>
  bool try_push(U&& value) {
    static_assert(std::is_nothrow_constructible_v<T, U&&>, "ring items must not throw on construction");
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      const std::size_t seq = slot.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq - pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst)) {
          new (&slot.storage) T(std::forward<U>(value));
          slot.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // the slot still holds the item from one lap ago
      } else {
        pos = tail_.load(std::memory_order_relaxed);  // another producer took this position
      }
    }
  }

  // False when empty (or when the next item is claimed but not yet written).
  bool try_pop(T& out) {
    static_assert(std::is_nothrow_move_assignable_v<T>, "ring items must not throw on move");
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      const std::size_t seq = slot.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq - (pos + 1));
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_seq_cst)) {
          T* item = slot.item();
          out = std::move(*item);
          item->~T();
          slot.seq.store(pos + capacity_, std::memory_order_release);  // free for the next lap
          return true;
        }
      } else if (diff < 0) {
        return false;
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  std::size_t capacity() const { return capacity_; }

  // A snapshot that may already be stale; claimed-but-unwritten items count as present.
  std::size_t size() const {
    const std::size_t head = head_.load(std::memory_order_seq_cst);
    const std::size_t tail = tail_.load(std::memory_order_seq_cst);
    const auto diff = static_cast<std::ptrdiff_t>(tail - head);
    if (diff <= 0) return 0;
    return static_cast<std::size_t>(diff) > capacity_ ? capacity_ : static_cast<std::size_t>(diff);
  }

 private:
  struct alignas(kCacheLine) Slot {
    std::atomic<std::size_t> seq{0};
    alignas(T) unsigned char storage[sizeof(T)];
    T* item() { return std::launder(reinterpret_cast<T*>(storage)); }
  };

  static std::size_t checked_capacity(std::size_t requested) {
    if (requested == 0 || requested > kMaxRingCapacity) {
      throw InvalidArgument("ring capacity must be between 1 and 2^30");
    }
    // At least 2: with one slot, "written at lap n" (pos + 1) equals "free at lap n + 1"
    // (pos + capacity) and the sequence numbers could no longer tell full from empty.
    // A power of two so positions map to slots with a mask.
    std::size_t capacity = 2;
    while (capacity < requested) capacity <<= 1;
    return capacity;
  }

  const std::size_t capacity_;
  const std::size_t mask_;
  const std::unique_ptr<Slot[]> slots_;
  // Consumers hammer head_, producers tail_: separate lines so they do not share invalidations.
  alignas(kCacheLine) std::atomic<std::size_t> head_{0};
  alignas(kCacheLine) std::atomic<std::size_t> tail_{0};
};

// kTimeout from try_push/try_pop means "would block" (full or empty).
enum class RingStatus { kOk, kTimeout, kClosed };

// Blocking, closable layer over Ring. The data path stays lock-free; the mutex and condition
// variables only park threads that found the ring full or empty, and a waker takes the lock only
// when someone is parked. Every wait is timed so callers can poll for cancellation or signals.
// After close(): pushes fail with kClosed; pops keep returning queued items and report kClosed
// only once the ring is empty and no push that started before close() is still in flight.
template <typename T>
class BlockingRing {
 public:
  using Clock = std::chrono::steady_clock;

  explicit BlockingRing(std::size_t capacity) : ring_(capacity) {}
  BlockingRing(const BlockingRing&) = delete;
  BlockingRing& operator=(const BlockingRing&) = delete;

  // `value` is consumed only on kOk, so a caller may retry with it after kTimeout.
  template <typename U>
  RingStatus try_push(U&& value) {
    // Announce the push before looking at the closed bit: pop() waits for announced pushes, so
    // an item accepted concurrently with close() is still drained, never stranded.
    if (state_.fetch_add(kPusher, std::memory_order_seq_cst) & kClosedBit) {
      state_.fetch_sub(kPusher, std::memory_order_seq_cst);
      return RingStatus::kClosed;
    }
    const bool pushed = ring_.try_push(std::forward<U>(value));
    state_.fetch_sub(kPusher, std::memory_order_seq_cst);
    if (!pushed) return RingStatus::kTimeout;
    wake(not_empty_, waiting_pop_);
    return RingStatus::kOk;
  }

  RingStatus try_pop(T& out) {
    if (pop_and_wake(out)) return RingStatus::kOk;
    for (;;) {
      // Read before the retry: if it says "closed, no push in flight", every accepted item is
      // already in the ring, so an empty ring now means empty for good.
      const std::size_t state = state_.load(std::memory_order_seq_cst);
      if (!(state & kClosedBit)) return RingStatus::kTimeout;
      if (pop_and_wake(out)) return RingStatus::kOk;
      if (state == kClosedBit) return RingStatus::kClosed;
      std::this_thread::yield();  // a push announced before close() is finishing: wait for it
    }
  }

  template <typename Rep, typename Period, typename U>
  RingStatus push(U&& value, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const RingStatus status = try_push(std::forward<U>(value));
      if (status != RingStatus::kTimeout) return status;
      if (!park(not_full_, waiting_push_, deadline, [this] { return ring_.size() < ring_.capacity(); })) {
        return try_push(std::forward<U>(value));  // deadline passed: one last attempt
      }
    }
  }

  template <typename Rep, typename Period>
  RingStatus pop(T& out, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      const RingStatus status = try_pop(out);
      if (status != RingStatus::kTimeout) return status;
      if (!park(not_empty_, waiting_pop_, deadline, [this] { return ring_.size() > 0; })) {
        return try_pop(out);
      }
    }
  }

  void close() {
    {
      // Under the lock so a thread between its last check and its wait cannot miss the wake-up.
      std::lock_guard<std::mutex> lock(mutex_);
      state_.fetch_or(kClosedBit, std::memory_order_seq_cst);
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  bool closed() const { return state_.load(std::memory_order_seq_cst) & kClosedBit; }
  std::size_t size() const { return ring_.size(); }
  std::size_t capacity() const { return ring_.capacity(); }

 private:
  // state_ packs the closed flag (bit 0) with the count of pushes in flight (the rest).
  static constexpr std::size_t kClosedBit = 1;
  static constexpr std::size_t kPusher = 2;

  bool pop_and_wake(T& out) {
    if (!ring_.try_pop(out)) return false;
    wake(not_full_, waiting_push_);
    return true;
  }

  // Sleeps until woken, `ready()` or close; false once `deadline` has passed.
  template <typename Ready>
  bool park(std::condition_variable& cv, std::atomic<int>& waiters, Clock::time_point deadline, Ready ready) {
    std::unique_lock<std::mutex> lock(mutex_);
    // seq_cst count-then-look here, claim-then-look-at-count in wake(): in the single order of
    // seq_cst operations either the waker sees us counted, or `ready()` sees its claim.
    waiters.fetch_add(1, std::memory_order_seq_cst);
    const bool go = closed() || ready();
    const bool in_time = go || cv.wait_until(lock, deadline) == std::cv_status::no_timeout;
    waiters.fetch_sub(1, std::memory_order_seq_cst);
    lock.unlock();
    // Ready yet our try failed: another thread has claimed a slot but not finished writing or
    // reading it. Let it run rather than spin on the lock.
    if (go) std::this_thread::yield();
    return in_time && Clock::now() < deadline;
  }

  void wake(std::condition_variable& cv, std::atomic<int>& waiters) {
    if (waiters.load(std::memory_order_seq_cst) > 0) {
      // Taking the lock means a counted waiter is inside wait_until (or past it), so the
      // notification cannot fall between its check and its sleep.
      { std::lock_guard<std::mutex> lock(mutex_); }
      cv.notify_all();
    }
  }

  Ring<T> ring_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::atomic<int> waiting_push_{0};
  std::atomic<int> waiting_pop_{0};
  alignas(kCacheLine) std::atomic<std::size_t> state_{0};  // written by every push
};

}  // namespace ignite
