// Bounded MPMC rings that join the pipeline stages: a lock-free core (Ring) and a blocking,
// closable layer over it (BlockingRing).
//
// Guarantees: every pushed item is popped exactly once; items from one producer come out in the
// order that producer pushed them; size() is approximate while other threads run. Not
// guaranteed: a global FIFO order across producers.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>

#include "core/error.h"

namespace ignite {

inline constexpr std::size_t kCacheLine = 64;

inline std::size_t round_up_pow2(std::size_t n) {
  std::size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Lock-free bounded MPMC queue after D. Vyukov's design: each slot carries a sequence number
// that tells producers and consumers whose turn it is, so head and tail advance with one CAS.
template <typename T>
class Ring {
 public:
  explicit Ring(std::size_t capacity)
      : capacity_(round_up_pow2(capacity < 2 ? 2 : capacity)),
        mask_(capacity_ - 1),
        slots_(std::make_unique<Slot[]>(capacity_)) {
    if (capacity == 0) throw InvalidArgument("ring capacity must be positive");
    for (std::size_t i = 0; i < capacity_; ++i) slots_[i].seq.store(i, std::memory_order_relaxed);
  }

  ~Ring() {
    // Destroy what is still queued so counted objects balance.
    T item;
    while (try_pop(item)) {
    }
  }

  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  template <typename U>
  bool try_push(U&& value) {
    std::size_t pos = tail_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      const std::size_t seq = slot.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos);
      if (diff == 0) {
        if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          new (&slot.storage) T(std::forward<U>(value));
          slot.seq.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // full
      } else {
        pos = tail_.load(std::memory_order_relaxed);
      }
    }
  }

  bool try_pop(T& out) {
    std::size_t pos = head_.load(std::memory_order_relaxed);
    for (;;) {
      Slot& slot = slots_[pos & mask_];
      const std::size_t seq = slot.seq.load(std::memory_order_acquire);
      const auto diff = static_cast<std::ptrdiff_t>(seq) - static_cast<std::ptrdiff_t>(pos + 1);
      if (diff == 0) {
        if (head_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          T* item = std::launder(reinterpret_cast<T*>(&slot.storage));
          out = std::move(*item);
          item->~T();
          slot.seq.store(pos + capacity_, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;  // empty
      } else {
        pos = head_.load(std::memory_order_relaxed);
      }
    }
  }

  std::size_t capacity() const { return capacity_; }

  std::size_t size() const {
    const std::size_t tail = tail_.load(std::memory_order_relaxed);
    const std::size_t head = head_.load(std::memory_order_relaxed);
    return tail > head ? tail - head : 0;
  }

 private:
  struct alignas(kCacheLine) Slot {
    std::atomic<std::size_t> seq{0};
    typename std::aligned_storage<sizeof(T), alignof(T)>::type storage;
  };

  const std::size_t capacity_;
  const std::size_t mask_;
  std::unique_ptr<Slot[]> slots_;
  alignas(kCacheLine) std::atomic<std::size_t> head_{0};
  alignas(kCacheLine) std::atomic<std::size_t> tail_{0};
};

enum class RingStatus { kOk, kTimeout, kClosed };

// Blocking layer: the data path stays lock-free; the mutex and condition variables only park
// and wake threads that found the ring full or empty. Timed waits everywhere, so callers can
// poll for cancellation; close() wakes every waiter.
template <typename T>
class BlockingRing {
 public:
  using Clock = std::chrono::steady_clock;

  explicit BlockingRing(std::size_t capacity) : ring_(capacity) {}
  BlockingRing(const BlockingRing&) = delete;
  BlockingRing& operator=(const BlockingRing&) = delete;

  template <typename U>
  RingStatus try_push(U&& value) {
    if (closed()) return RingStatus::kClosed;
    if (!ring_.try_push(std::forward<U>(value))) return RingStatus::kTimeout;
    wake(not_empty_, waiting_pop_);
    return RingStatus::kOk;
  }

  RingStatus try_pop(T& out) {
    if (ring_.try_pop(out)) {
      wake(not_full_, waiting_push_);
      return RingStatus::kOk;
    }
    return closed() ? drained_or_retry(out) : RingStatus::kTimeout;
  }

  // Waits up to `timeout` for room. kClosed once close() was called (the item is not queued).
  template <typename Rep, typename Period, typename U>
  RingStatus push(U&& value, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (closed()) return RingStatus::kClosed;
      if (ring_.try_push(value)) {
        wake(not_empty_, waiting_pop_);
        return RingStatus::kOk;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      waiting_push_.fetch_add(1, std::memory_order_seq_cst);
      // Re-check under the lock: a pop between our try and the wait would otherwise be missed.
      const bool ready = closed() || ring_.size() < ring_.capacity();
      const bool timed_out = !ready && not_full_.wait_until(lock, deadline) == std::cv_status::timeout;
      waiting_push_.fetch_sub(1, std::memory_order_seq_cst);
      if (timed_out && Clock::now() >= deadline) {
        lock.unlock();
        if (closed()) return RingStatus::kClosed;
        return ring_.try_push(value) ? (wake(not_empty_, waiting_pop_), RingStatus::kOk) : RingStatus::kTimeout;
      }
    }
  }

  // Waits up to `timeout` for an item. After close(), keeps returning queued items; kClosed only
  // once the ring is closed and empty.
  template <typename Rep, typename Period>
  RingStatus pop(T& out, std::chrono::duration<Rep, Period> timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (ring_.try_pop(out)) {
        wake(not_full_, waiting_push_);
        return RingStatus::kOk;
      }
      if (closed()) return drained_or_retry(out);
      std::unique_lock<std::mutex> lock(mutex_);
      waiting_pop_.fetch_add(1, std::memory_order_seq_cst);
      const bool ready = closed() || ring_.size() > 0;
      const bool timed_out = !ready && not_empty_.wait_until(lock, deadline) == std::cv_status::timeout;
      waiting_pop_.fetch_sub(1, std::memory_order_seq_cst);
      if (timed_out && Clock::now() >= deadline) {
        lock.unlock();
        if (ring_.try_pop(out)) {
          wake(not_full_, waiting_push_);
          return RingStatus::kOk;
        }
        return closed() ? drained_or_retry(out) : RingStatus::kTimeout;
      }
    }
  }

  void close() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_.store(true, std::memory_order_seq_cst);
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

  bool closed() const { return closed_.load(std::memory_order_seq_cst); }
  std::size_t size() const { return ring_.size(); }
  std::size_t capacity() const { return ring_.capacity(); }

 private:
  // A push that raced with close() may still land; drain it rather than lose it.
  RingStatus drained_or_retry(T& out) {
    if (ring_.try_pop(out)) {
      wake(not_full_, waiting_push_);
      return RingStatus::kOk;
    }
    return RingStatus::kClosed;
  }

  // Waking costs a lock only when someone sleeps: the counters are read after the lock-free
  // operation, and a sleeper re-checks the ring under the same lock before it waits.
  void wake(std::condition_variable& cv, std::atomic<int>& waiters) {
    // Orders our ring update before reading the counter (a sleeper does the mirror image).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (waiters.load(std::memory_order_seq_cst) > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      cv.notify_all();
    }
  }

  Ring<T> ring_;
  std::mutex mutex_;
  std::condition_variable not_full_;
  std::condition_variable not_empty_;
  std::atomic<int> waiting_push_{0};
  std::atomic<int> waiting_pop_{0};
  std::atomic<bool> closed_{false};
};

}  // namespace ignite
