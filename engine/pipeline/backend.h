// A model the native worker loop (pipeline/native_worker.h) calls without Python: padded int32
// ids and mask in, [rows, dim] float32 out. NullBackend stands in for a GPU where only the
// pipeline around the model is measured or tested; trt/session_backend.h adapts a TensorRT
// session.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "core/error.h"

namespace ignite {
namespace pipeline {

class NativeBackend {
 public:
  virtual ~NativeBackend() = default;
  virtual std::int64_t dim() const = 0;
  // Thread-safe: every worker thread of a device calls it at once. `ids` and `mask` are row-major
  // [rows, width]; writes [rows, dim] to `out`. Throws on failure (the batch then goes back to
  // the caller of the loop untouched).
  virtual void run(const std::int32_t* ids, const std::int32_t* mask, std::int64_t rows, std::int64_t width,
                   float* out) = 0;
};

// Zeros of its dim. `fail_token` is a test aid: a batch holding that token id throws, as a
// backend failing on a bad record would.
class NullBackend final : public NativeBackend {
 public:
  explicit NullBackend(std::int64_t dim, std::optional<std::int32_t> fail_token = std::nullopt)
      : dim_(dim), fail_token_(fail_token) {
    if (dim <= 0) throw InvalidArgument("NullBackend: dim must be > 0, not " + std::to_string(dim));
  }

  std::int64_t dim() const override { return dim_; }

  void run(const std::int32_t* ids, const std::int32_t*, std::int64_t rows, std::int64_t width,
           float* out) override {
    if (fail_token_ && std::find(ids, ids + rows * width, *fail_token_) != ids + rows * width) {
      throw Error("NullBackend: the batch holds token " + std::to_string(*fail_token_));
    }
    std::fill_n(out, rows * dim_, 0.0f);
  }

 private:
  std::int64_t dim_;
  std::optional<std::int32_t> fail_token_;
};

}  // namespace pipeline
}  // namespace ignite
