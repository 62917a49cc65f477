// Builds a serialized TensorRT engine from ONNX bytes with the ONNX parser: one optimisation
// profile per (slot, bucket) from a ProfilePlan, the precision, an optional timing cache on disk
// and the builder optimisation level.
//
// Precision and typing differ by TensorRT version:
// - TensorRT 10: networks are weakly typed by default; fp16/bf16 are allowed through
//   BuilderFlag::kFP16/kBF16 and TensorRT picks per layer. strongly_typed = true instead takes
//   every type from the ONNX (the flags are then not allowed).
// - TensorRT 11: networks are always strongly typed (the flag is deprecated and ignored, the
//   precision BuilderFlags are gone): the ONNX carries the precision (ignite.models.export writes
//   the graph in the precision asked for). A graph whose precision is not the one asked for is
//   refused (InvalidArgument), never built in another precision.
#pragma once

#include <NvInfer.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "trt/logger.h"
#include "trt/profiles.h"

#if NV_TENSORRT_MAJOR < 10
#error "Ignite's TensorRT backend needs TensorRT 10 or newer (enqueueV3, name-based I/O, delete-able objects)"
#endif

namespace ignite::trt {

struct BuildOptions {
  std::string precision = "fp16";   // fp32 | fp16 | bf16; requested (see above for TensorRT 11)
  bool strongly_typed = false;      // TensorRT 10 only; always on in TensorRT 11
  int optimization_level = 3;       // 0..5 (TensorRT's default is 3): higher builds slower, may run faster
  std::size_t workspace_bytes = 0;  // 0: TensorRT's default (up to all device memory)
  std::string timing_cache_path;    // empty: no timing cache kept on disk
  std::function<bool()> should_stop;  // polled during the build; true cancels it (Cancelled)
};

// Precision and typing as they enter the cache key: "fp16/weak", "bf16/strong", "onnx/strong".
std::string typing_key(const BuildOptions& options);

struct BuiltEngine {
  std::unique_ptr<nvinfer1::IHostMemory> plan;
  std::string precision;  // what the engine computes in: fp32, fp16, bf16 (mixed: the lowest)
};

// Parses `onnx` (the bytes of the file at `onnx_path`, whose directory holds any external
// weights) and builds. Each network input must be [batch, sequence]; every profile gives every
// input the same [rows, seq] range. Throws TensorRtError with the parser's or builder's messages,
// InvalidArgument for a graph of the wrong shape or (strongly typed) precision, Cancelled when
// should_stop says so.
BuiltEngine build_engine(const std::vector<char>& onnx, const std::string& onnx_path, const ProfilePlan& plan,
                         const BuildOptions& options, Diagnostics& diagnostics);

}  // namespace ignite::trt
