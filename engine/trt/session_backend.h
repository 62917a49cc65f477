// A TensorRT Session as the native worker loop's backend (pipeline/native_worker.h), so a GPU
// worker runs its batches with no Python per batch. Session::run is thread-safe: each worker
// thread of the device (one per slot) calls it and gets its own batch in flight.
#pragma once

#include <cstdint>

#include "pipeline/backend.h"
#include "trt/session.h"

namespace ignite::trt {

class SessionBackend final : public pipeline::NativeBackend {
 public:
  // The session must outlive this backend (the binding keeps its Python owner alive).
  explicit SessionBackend(Session& session) : session_(session) {}

  std::int64_t dim() const override { return session_.dim(); }

  void run(const std::int32_t* ids, const std::int32_t* mask, std::int64_t rows, std::int64_t width,
           float* out) override {
    session_.run(ids, mask, rows, width, out);
  }

 private:
  Session& session_;
};

}  // namespace ignite::trt
