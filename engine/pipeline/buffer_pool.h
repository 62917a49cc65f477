// Owns the reusable int32 ids/mask buffers of batches: a Lease holds one pair and gives it back
// to its pool when destroyed, so steady state allocates nothing per batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace ignite {
namespace pipeline {

class BufferPool {
  struct Pair {
    std::unique_ptr<std::int32_t[]> ids;
    std::unique_ptr<std::int32_t[]> mask;
    std::size_t capacity = 0;
  };

 public:
  // Move-only: the ids and mask of one batch, `capacity` values each.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& other) noexcept : pool_(std::exchange(other.pool_, nullptr)), pair_(std::move(other.pair_)) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        give_back();
        pool_ = std::exchange(other.pool_, nullptr);
        pair_ = std::move(other.pair_);
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { give_back(); }

    std::int32_t* ids() const { return pair_.ids.get(); }
    std::int32_t* mask() const { return pair_.mask.get(); }
    std::size_t capacity() const { return pair_.capacity; }

   private:
    friend class BufferPool;
    Lease(BufferPool* pool, Pair pair) : pool_(pool), pair_(std::move(pair)) {}
    void give_back() noexcept {
      if (pool_) std::exchange(pool_, nullptr)->release(std::move(pair_));
    }
    BufferPool* pool_ = nullptr;
    Pair pair_;
  };

  // Requests up to `base` values (the token budget, which every planned batch but a lone
  // over-long record fits) share one size; larger ones round up to a power of two, so a handful
  // of sizes serve a run. The pool must outlive its leases.
  explicit BufferPool(std::size_t base) : base_(base ? base : 1) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  Lease acquire(std::size_t values) {
    const std::size_t capacity = capacity_for(values);
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      auto& free = free_[capacity];
      if (!free.empty()) {
        Pair pair = std::move(free.back());
        free.pop_back();
        return Lease(this, std::move(pair));
      }
      ++allocated_;
    }
    Pair pair{std::make_unique<std::int32_t[]>(capacity), std::make_unique<std::int32_t[]>(capacity), capacity};
    return Lease(this, std::move(pair));
  }

  // Pairs ever allocated: flat once a run is in steady state.
  std::size_t allocated() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return allocated_;
  }

 private:
  std::size_t capacity_for(std::size_t values) const {
    if (values <= base_) return base_;
    std::size_t capacity = 1;
    while (capacity < values) capacity <<= 1;
    return capacity;
  }

  void release(Pair&& pair) noexcept {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      free_[pair.capacity].push_back(std::move(pair));
    } catch (...) {
      // Out of memory growing the free list: the pair is simply freed.
    }
  }

  const std::size_t base_;
  mutable std::mutex mutex_;
  std::map<std::size_t, std::vector<Pair>> free_;
  std::size_t allocated_ = 0;
};

}  // namespace pipeline
}  // namespace ignite
