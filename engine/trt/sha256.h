// SHA-256 (FIPS 180-4), incremental, for the engine cache key: a digest of the ONNX bytes that a
// changed graph cannot collide with. No CUDA or TensorRT needed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ignite::trt {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  // The digest as 64 lowercase hex characters. Call once; the object is spent afterwards.
  std::string hex_digest();

 private:
  void compress(const std::uint8_t* block);

  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string sha256_hex(const void* data, std::size_t size);

}  // namespace ignite::trt
