#include "trt/logger.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ignite::trt {
namespace {

using Severity = nvinfer1::ILogger::Severity;

const char* severity_name(Severity severity) {
  switch (severity) {
    case Severity::kINTERNAL_ERROR: return "INTERNAL ERROR";
    case Severity::kERROR: return "ERROR";
    case Severity::kWARNING: return "WARNING";
    case Severity::kINFO: return "INFO";
    case Severity::kVERBOSE: return "VERBOSE";
  }
  return "?";
}

Severity severity_from_env(Severity fallback) {
  const char* value = std::getenv("IGNITE_TRT_LOG");
  if (value == nullptr || *value == '\0') return fallback;
  if (std::strcmp(value, "error") == 0) return Severity::kERROR;
  if (std::strcmp(value, "warning") == 0) return Severity::kWARNING;
  if (std::strcmp(value, "info") == 0) return Severity::kINFO;
  if (std::strcmp(value, "verbose") == 0) return Severity::kVERBOSE;
  return fallback;
}

const char* error_code_name(nvinfer1::ErrorCode code) {
  using nvinfer1::ErrorCode;
  switch (code) {
    case ErrorCode::kSUCCESS: return "success";
    case ErrorCode::kUNSPECIFIED_ERROR: return "unspecified error";
    case ErrorCode::kINTERNAL_ERROR: return "internal error";
    case ErrorCode::kINVALID_ARGUMENT: return "invalid argument";
    case ErrorCode::kINVALID_CONFIG: return "invalid config";
    case ErrorCode::kFAILED_ALLOCATION: return "failed allocation";
    case ErrorCode::kFAILED_INITIALIZATION: return "failed initialization";
    case ErrorCode::kFAILED_EXECUTION: return "failed execution";
    case ErrorCode::kFAILED_COMPUTATION: return "failed computation";
    case ErrorCode::kINVALID_STATE: return "invalid state";
    case ErrorCode::kUNSUPPORTED_STATE: return "unsupported state";
  }
  return "error";
}

}  // namespace

Logger::Logger(Severity min_severity) : min_severity_(static_cast<int>(severity_from_env(min_severity))) {}

void Logger::log(Severity severity, const char* message) noexcept {
  const char* text = message ? message : "";
  if (severity == Severity::kERROR || severity == Severity::kINTERNAL_ERROR) {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      last_error_ = text;
    } catch (...) {
      // Out of memory while copying a message: keep the previous one rather than throw.
    }
  }
  if (static_cast<int>(severity) <= min_severity_.load(std::memory_order_relaxed)) {
    std::fprintf(stderr, "[TensorRT] %s: %s\n", severity_name(severity), text);
  }
}

std::string Logger::last_error() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return last_error_;
}

void Logger::clear_last_error() {
  std::lock_guard<std::mutex> lock(mutex_);
  last_error_.clear();
}

ErrorRecorder::ErrorRecorder() { errors_.reserve(kCapacity); }

int32_t ErrorRecorder::getNbErrors() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<int32_t>(errors_.size());
}

nvinfer1::ErrorCode ErrorRecorder::getErrorCode(int32_t index) const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (index < 0 || index >= static_cast<int32_t>(errors_.size())) return nvinfer1::ErrorCode::kINVALID_ARGUMENT;
  return errors_[static_cast<std::size_t>(index)].first;
}

nvinfer1::IErrorRecorder::ErrorDesc ErrorRecorder::getErrorDesc(int32_t index) const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  if (index < 0 || index >= static_cast<int32_t>(errors_.size())) return "index out of range";
  return errors_[static_cast<std::size_t>(index)].second.c_str();
}

bool ErrorRecorder::hasOverflowed() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return overflowed_;
}

void ErrorRecorder::clear() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  errors_.clear();  // keeps the reserved capacity
  overflowed_ = false;
}

bool ErrorRecorder::reportError(nvinfer1::ErrorCode code, ErrorDesc desc) noexcept {
  // TensorRT may free `desc` as soon as this returns: copy it.
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    if (static_cast<int32_t>(errors_.size()) < kCapacity) {
      errors_.emplace_back(code, std::string(error_code_name(code)) + ": " + (desc ? desc : ""));
    } else {
      overflowed_ = true;
    }
  } catch (...) {
    // No memory for the text: the error is lost, the failed call still fails.
  }
  // A hint only: these leave the object in a state where going on makes no sense.
  return code == nvinfer1::ErrorCode::kINTERNAL_ERROR || code == nvinfer1::ErrorCode::kUNSPECIFIED_ERROR ||
         code == nvinfer1::ErrorCode::kFAILED_ALLOCATION;
}

nvinfer1::IErrorRecorder::RefCount ErrorRecorder::incRefCount() noexcept { return ++refs_; }

nvinfer1::IErrorRecorder::RefCount ErrorRecorder::decRefCount() noexcept { return --refs_; }

std::string ErrorRecorder::summary() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const auto& error : errors_) {
    if (!out.empty()) out += "; ";
    out += error.second;
  }
  if (overflowed_) out += "; (more errors dropped)";
  return out;
}

std::string Diagnostics::take_message(const std::string& fallback) {
  std::string message = recorder.summary();
  if (message.empty()) message = logger.last_error();
  recorder.clear();
  logger.clear_last_error();
  return message.empty() ? fallback : message;
}

void Diagnostics::fail(const std::string& what) {
  throw TensorRtError("TensorRT: " + what + " failed: " + take_message());
}

}  // namespace ignite::trt
