// TensorRT diagnostics: a severity-filtered ILogger that keeps the last error text, an
// IErrorRecorder that keeps every error TensorRT reports, and TensorRtError, whose message is
// built from them so a Python user sees what TensorRT said, not just "build failed".
#pragma once

#include <NvInfer.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace ignite::trt {

// A TensorRT call failed; what() carries TensorRT's own messages.
class TensorRtError : public Error {
 public:
  using Error::Error;
};

// Writes messages at or above a severity to stderr ("[TensorRT] WARNING: ..."); keeps the last
// kERROR/kINTERNAL_ERROR text whatever the filter. The filter comes from IGNITE_TRT_LOG
// (error, warning, info, verbose) when set, else from the constructor. Thread-safe, as
// TensorRT requires: contexts on several streams may log at once.
class Logger : public nvinfer1::ILogger {
 public:
  explicit Logger(Severity min_severity = Severity::kWARNING);

  void log(Severity severity, const char* message) noexcept override;

  std::string last_error() const;
  void clear_last_error();

 private:
  std::atomic<int> min_severity_;
  mutable std::mutex mutex_;
  std::string last_error_;
};

// Keeps up to kCapacity errors with their codes; more set the overflow flag. Owned by the
// object that owns the TensorRT objects it is registered with, and declared before them, so
// it outlives them (TensorRT holds a reference counted through incRefCount/decRefCount).
class ErrorRecorder : public nvinfer1::IErrorRecorder {
 public:
  static constexpr int32_t kCapacity = 32;

  ErrorRecorder();

  int32_t getNbErrors() const noexcept override;
  nvinfer1::ErrorCode getErrorCode(int32_t index) const noexcept override;
  ErrorDesc getErrorDesc(int32_t index) const noexcept override;
  bool hasOverflowed() const noexcept override;
  void clear() noexcept override;
  bool reportError(nvinfer1::ErrorCode code, ErrorDesc desc) noexcept override;
  RefCount incRefCount() noexcept override;
  RefCount decRefCount() noexcept override;

  // All recorded errors, "; "-joined, oldest first; empty if none.
  std::string summary() const;

 private:
  mutable std::mutex mutex_;
  // Reserved to kCapacity at construction and never grown past it, so the c_str() pointers that
  // getErrorDesc hands out stay valid until clear().
  std::vector<std::pair<nvinfer1::ErrorCode, std::string>> errors_;
  bool overflowed_ = false;
  std::atomic<RefCount> refs_{0};
};

// A logger and a recorder together, and the one way this code turns a failed TensorRT call into
// an exception: fail("what was attempted") throws TensorRtError with the recorder's errors, or
// the logger's last error, and clears both for the next call.
class Diagnostics {
 public:
  explicit Diagnostics(nvinfer1::ILogger::Severity min_severity = nvinfer1::ILogger::Severity::kWARNING)
      : logger(min_severity) {}

  [[noreturn]] void fail(const std::string& what);
  // Takes the recorder's errors or the logger's last error (and clears them); `fallback` if none.
  std::string take_message(const std::string& fallback = "TensorRT gave no message");

  // Throws unless `ok`.
  void require(bool ok, const char* what) {
    if (!ok) fail(what);
  }
  // Returns `object` (a TensorRT factory's result), throwing if it is null.
  template <typename T>
  T* require(T* object, const char* what) {
    if (object == nullptr) fail(what);
    return object;
  }

  Logger logger;
  ErrorRecorder recorder;
};

}  // namespace ignite::trt
