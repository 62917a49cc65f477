// RAII owners of CUDA handles: the current device (ScopedDevice), Stream, Event, DeviceBuffer
// (cudaMalloc) and PinnedBuffer (cudaHostAlloc). Each is move-only; a moved-from object owns
// nothing and its destructor does nothing.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "trt/cuda_check.h"

namespace ignite::trt {

// Makes `device` current for a scope and restores the previous device after it. The calling
// thread may be any Python thread, each with its own current device.
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    IGNITE_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) IGNITE_CUDA_CHECK(cudaSetDevice(device));
    restore_ = previous_ != device;
  }
  ~ScopedDevice() {
    if (restore_) IGNITE_CUDA_CHECK_NOEXCEPT(cudaSetDevice(previous_));
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;

 private:
  int previous_ = 0;
  bool restore_ = false;
};

// A non-blocking stream: it does not synchronise with the legacy default stream, so work that
// other libraries put there (torch, cuBLAS handles) does not serialise with ours.
class Stream {
 public:
  Stream() { IGNITE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  ~Stream() { reset(); }
  Stream(Stream&& other) noexcept : stream_(std::exchange(other.stream_, nullptr)) {}
  Stream& operator=(Stream&& other) noexcept {
    if (this != &other) {
      reset();
      stream_ = std::exchange(other.stream_, nullptr);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const noexcept { return stream_; }
  void synchronize() const { IGNITE_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

 private:
  void reset() noexcept {
    if (stream_) IGNITE_CUDA_CHECK_NOEXCEPT(cudaStreamDestroy(std::exchange(stream_, nullptr)));
  }
  cudaStream_t stream_ = nullptr;
};

// An event without timing. blocking_sync = true makes synchronize() sleep the host thread instead
// of spinning, which leaves the core to the tokenizer and reader threads.
class Event {
 public:
  explicit Event(bool blocking_sync = false) {
    unsigned flags = cudaEventDisableTiming | (blocking_sync ? cudaEventBlockingSync : 0u);
    IGNITE_CUDA_CHECK(cudaEventCreateWithFlags(&event_, flags));
  }
  ~Event() { reset(); }
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event& operator=(Event&& other) noexcept {
    if (this != &other) {
      reset();
      event_ = std::exchange(other.event_, nullptr);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const noexcept { return event_; }
  void record(cudaStream_t stream) { IGNITE_CUDA_CHECK(cudaEventRecord(event_, stream)); }
  void synchronize() const { IGNITE_CUDA_CHECK(cudaEventSynchronize(event_)); }
  // True when the work before the last record() has finished; throws on a device error.
  bool ready() const {
    const cudaError_t status = cudaEventQuery(event_);
    if (status == cudaErrorNotReady) return false;  // a state, not an error
    IGNITE_CUDA_CHECK(status);
    return true;
  }

 private:
  void reset() noexcept {
    if (event_) IGNITE_CUDA_CHECK_NOEXCEPT(cudaEventDestroy(std::exchange(event_, nullptr)));
  }
  cudaEvent_t event_ = nullptr;
};

// Device memory from cudaMalloc, on the device current at construction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes_ > 0) IGNITE_CUDA_CHECK(cudaMalloc(&data_, bytes_));
  }
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* get() const noexcept { return data_; }
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void reset() noexcept {
    if (data_) IGNITE_CUDA_CHECK_NOEXCEPT(cudaFree(std::exchange(data_, nullptr)));
    bytes_ = 0;
  }
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

// Page-locked host memory from cudaHostAlloc: the only kind cudaMemcpyAsync copies truly
// asynchronously, so a copy can overlap compute on another stream.
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t bytes) : bytes_(bytes) {
    if (bytes_ > 0) IGNITE_CUDA_CHECK(cudaHostAlloc(&data_, bytes_, cudaHostAllocDefault));
  }
  ~PinnedBuffer() { reset(); }
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  void* get() const noexcept { return data_; }
  template <typename T>
  T* as() const noexcept {
    return static_cast<T*>(data_);
  }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  void reset() noexcept {
    if (data_) IGNITE_CUDA_CHECK_NOEXCEPT(cudaFreeHost(std::exchange(data_, nullptr)));
    bytes_ = 0;
  }
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace ignite::trt
