// CUDA status checking: every cudaError_t becomes an ignite::trt::CudaError naming the call, the
// file:line and cudaGetErrorString's text. Never exit(): a library reports, its caller decides.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdio>
#include <string>

#include "core/error.h"

namespace ignite::trt {

// A CUDA runtime call failed. code() is the cudaError_t, what() the whole story.
class CudaError : public Error {
 public:
  CudaError(const std::string& message, cudaError_t code) : Error(message), code_(code) {}
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

inline std::string cuda_error_text(cudaError_t status, const char* expr, const char* file, int line) {
  const char* name = cudaGetErrorName(status);
  const char* text = cudaGetErrorString(status);
  return std::string("CUDA error ") + (name ? name : "?") + " (" + std::to_string(static_cast<int>(status)) +
         "): " + (text ? text : "unknown error") + " in " + expr + " at " + file + ":" + std::to_string(line);
}

[[noreturn]] inline void throw_cuda_error(cudaError_t status, const char* expr, const char* file, int line) {
  // Clear a non-sticky error so the next unrelated call does not report it again; a sticky one
  // (a faulted context) stays and every later call reports it too, which is the truth.
  (void)cudaGetLastError();
  throw CudaError(cuda_error_text(status, expr, file, line), status);
}

inline void cuda_check(cudaError_t status, const char* expr, const char* file, int line) {
  if (status != cudaSuccess) throw_cuda_error(status, expr, file, line);
}

// For destructors, which must not throw: the failure is written to stderr and otherwise
// ignored. Such a failure means the device context is already broken (a sticky error), and the
// next checked call in the program reports it as an exception.
inline bool cuda_check_noexcept(cudaError_t status, const char* expr, const char* file, int line) noexcept {
  if (status == cudaSuccess) return true;
  const char* text = cudaGetErrorString(status);
  std::fprintf(stderr, "ignite: CUDA error while releasing a resource: %s in %s at %s:%d\n",
               text ? text : "unknown error", expr, file, line);
  (void)cudaGetLastError();
  return false;
}

}  // namespace ignite::trt

// IGNITE_CUDA_CHECK(cudaMalloc(&p, n)): throws CudaError on failure.
#define IGNITE_CUDA_CHECK(expr) ::ignite::trt::cuda_check((expr), #expr, __FILE__, __LINE__)
// IGNITE_CUDA_CHECK_NOEXCEPT(cudaFree(p)): for destructors; reports to stderr, returns false.
#define IGNITE_CUDA_CHECK_NOEXCEPT(expr) ::ignite::trt::cuda_check_noexcept((expr), #expr, __FILE__, __LINE__)
