// The TensorRT runtime for one GPU: loads the cached engine for an ONNX graph (building it
// under the per-GPU lock when missing or invalid) and runs padded int32 batches through it,
// returning only the pooled [rows, dim] vectors.
//
// In flight: `slots` (default 2) independent lanes, each with its own stream, completion event,
// pinned input/output buffers, device buffers and one execution context per sequence bucket
// (profile slot * buckets + bucket; the contexts of a slot share one activation buffer because
// they only ever run one at a time, in order, on the slot's stream). A batch is: copy ids and
// mask to pinned memory, H2D, enqueueV3, D2H of rows x dim, record the event. While the GPU
// computes slot A, slot B's inputs are copied, so the copy of batch N+1 overlaps compute of N.
//
// Use: run() (thread-safe; from two threads gives two batches in flight), or
// acquire() / submit() / wait() / release() to pipeline from one thread.
#pragma once

#include <NvInfer.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "trt/builder.h"
#include "trt/logger.h"
#include "trt/profiles.h"

namespace ignite::trt {

struct SessionOptions {
  std::string onnx_path;
  std::string cache_dir;               // engines, timing caches and the build locks live here
  int device = 0;                      // CUDA device ordinal (after CUDA_VISIBLE_DEVICES)
  std::int64_t max_batch_tokens = 65536;  // the batcher's budget: rows x padded length
  std::int64_t max_seq = 512;             // the model's max length in tokens
  std::vector<std::int64_t> buckets;      // sequence-length bucket bounds (see plan_profiles)
  std::int64_t max_rows = 1024;           // the batcher's row cap
  int slots = 2;                          // batches in flight
  bool timing_cache = true;               // keep TensorRT's timing cache in cache_dir
  BuildOptions build;                     // precision, typing, level, workspace
  std::function<bool()> should_stop;      // polled while waiting for the lock and building
};

class Session {
 public:
  explicit Session(SessionOptions options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  std::int64_t dim() const { return dim_; }
  int slots() const { return static_cast<int>(slots_.size()); }
  const std::string& engine_path() const { return engine_path_; }
  // What the engine computes in (fp32, fp16, bf16), from the build that made it.
  const std::string& precision() const { return precision_; }
  // True when this Session built the engine, false when it came from the cache.
  bool built() const { return built_; }
  const ProfilePlan& profiles() const { return plan_; }
  int device() const { return options_.device; }

  // A free slot, waiting up to `timeout` (nullopt: as long as it takes); nullopt on timeout.
  std::optional<int> acquire(std::optional<std::chrono::nanoseconds> timeout = std::nullopt);
  void release(int slot) noexcept;

  // Queues one batch on a slot the caller holds: `ids` and `mask` are row-major [rows, seq] and
  // are copied before this returns. rows x seq must fit a profile (InvalidArgument otherwise).
  void submit(int slot, const std::int32_t* ids, const std::int32_t* mask, std::int64_t rows, std::int64_t seq);
  // Rows of the batch queued on `slot`, 0 when none.
  std::int64_t pending_rows(int slot) const;
  // Waits for the slot's batch and writes its [rows, dim] float32 output to `out`.
  void wait(int slot, float* out);
  std::vector<float> wait(int slot);

  // acquire + submit + wait + release.
  void run(const std::int32_t* ids, const std::int32_t* mask, std::int64_t rows, std::int64_t seq, float* out);

 private:
  struct Slot;
  struct Binding {
    std::string name;
    nvinfer1::DataType type;
    std::size_t element_size;
  };

  void load_or_build();
  bool deserialize(const void* plan, std::size_t size, std::string* why);
  void inspect_io();
  std::unique_ptr<Slot> make_slot(int index);
  Slot& slot_at(int slot) const;
  [[noreturn]] void fail_slot(Slot& slot, const std::string& what);

  SessionOptions options_;
  ProfilePlan plan_;
  std::string engine_path_;
  std::string precision_;
  bool built_ = false;

  // Declared before every TensorRT object so it is destroyed after them: the logger must outlive
  // what was created with it, the recorder its registrations.
  Diagnostics diagnostics_;
  std::unique_ptr<nvinfer1::IRuntime> runtime_;     // outlives the engine
  std::unique_ptr<nvinfer1::ICudaEngine> engine_;  // outlives the contexts in slots_

  Binding ids_{}, mask_{}, output_{};
  std::optional<Binding> type_ids_;  // token_type_ids, fed zeros, when the graph has it
  std::int64_t dim_ = 0;

  std::vector<std::unique_ptr<Slot>> slots_;
  std::mutex mutex_;
  std::condition_variable slot_freed_;
  std::vector<int> free_;
};

}  // namespace ignite::trt
