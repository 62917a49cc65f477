// Reusable float buffers for windows' embeddings. A GPU-sized window holds ~100 MB of them; a fresh
// allocation per window cost a zero-fill pass and the kernel's page faults on every window (the
// packer's largest cost at that size). A reused buffer is handed out as it was left: every row of
// a window is written by complete() or zeroed by the packer (a record without an embedding).
//
// Shared: a window the writer still holds keeps the pool alive after the pipeline is gone.
#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace ignite {
namespace pipeline {

class EmbeddingPool : public std::enable_shared_from_this<EmbeddingPool> {
  struct Block {
    std::unique_ptr<float[]> data;
    std::size_t capacity = 0;
  };

 public:
  // Move-only: `size()` floats, given back to the pool when destroyed.
  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept
        : pool_(std::move(other.pool_)), block_(std::move(other.block_)), size_(std::exchange(other.size_, 0)) {}
    Buffer& operator=(Buffer&& other) noexcept {
      if (this != &other) {
        give_back();
        pool_ = std::move(other.pool_);
        block_ = std::move(other.block_);
        size_ = std::exchange(other.size_, 0);
      }
      return *this;
    }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    ~Buffer() { give_back(); }

    float* data() { return block_.data.get(); }
    const float* data() const { return block_.data.get(); }
    std::size_t size() const { return size_; }
    float& operator[](std::size_t i) { return block_.data[i]; }
    const float& operator[](std::size_t i) const { return block_.data[i]; }

   private:
    friend class EmbeddingPool;
    Buffer(std::shared_ptr<EmbeddingPool> pool, Block block, std::size_t size)
        : pool_(std::move(pool)), block_(std::move(block)), size_(size) {}
    void give_back() noexcept {
      if (pool_ && block_.data) pool_->release(std::move(block_));
      pool_.reset();
      size_ = 0;
    }
    std::shared_ptr<EmbeddingPool> pool_;
    Block block_;
    std::size_t size_ = 0;
  };

  // At most `keep` buffers wait in the pool; more are freed as they come back. Owned by a
  // shared_ptr (std::make_shared), which its buffers share.
  explicit EmbeddingPool(std::size_t keep) : keep_(keep) {}
  EmbeddingPool(const EmbeddingPool&) = delete;
  EmbeddingPool& operator=(const EmbeddingPool&) = delete;

  // `size` floats: zeros when newly allocated, else what the last user left.
  Buffer acquire(std::size_t size) {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      // The smallest free block that fits: windows are mostly one size, the last ones smaller.
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->capacity >= size && (best == free_.end() || it->capacity < best->capacity)) best = it;
      }
      if (best != free_.end()) {
        Block block = std::move(*best);
        free_.erase(best);
        return Buffer(shared_from_this(), std::move(block), size);
      }
      ++allocated_;
    }
    const std::size_t capacity = std::max<std::size_t>(size, 1);
    return Buffer(shared_from_this(), Block{std::make_unique<float[]>(capacity), capacity}, size);
  }

  // Blocks ever allocated: flat once a run is in steady state.
  std::size_t allocated() const {
    const std::lock_guard<std::mutex> lock(mutex_);
    return allocated_;
  }

 private:
  void release(Block&& block) noexcept {
    try {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (free_.size() < keep_) free_.push_back(std::move(block));
    } catch (...) {
      // Out of memory growing the free list: the block is simply freed.
    }
  }

  const std::size_t keep_;
  mutable std::mutex mutex_;
  std::vector<Block> free_;
  std::size_t allocated_ = 0;
};

}  // namespace pipeline
}  // namespace ignite
