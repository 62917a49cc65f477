// The on-disk engine cache: the key (what an engine was built from and for), the file format
// (header with magic, key, sizes and a checksum, then the serialized engine), atomic writes, and
// the per-GPU build lock. Plain C++ and POSIX: no CUDA or TensorRT, so it is testable anywhere.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ignite::trt {

// Everything an engine depends on. Two keys with equal digest() are interchangeable engines.
struct EngineKey {
  std::string onnx_sha256;  // of the ONNX file's bytes
  int trt_version = 0;      // getInferLibVersion(): the library actually loaded, not the headers
  std::string gpu_name;     // cudaDeviceProp::name
  int sm_major = 0;         // compute capability
  int sm_minor = 0;
  std::string precision;    // requested precision and typing, e.g. "bf16/weak" or "onnx/strong"
  std::string profiles;     // canonical text of the optimisation profiles (see profiles.h)
  int builder_level = 3;    // builder optimisation level: a different level is a different engine

  // Canonical "name=value" lines: the text digest() hashes, also stored in the file for people.
  std::string describe() const;
  // SHA-256 hex of describe().
  std::string digest() const;
  // File-name-safe "<gpu-name>-sm<major><minor>", e.g. "nvidia-h100-80gb-hbm3-sm90".
  std::string gpu_slug() const;
};

// A verified cache file: the serialized engine and the metadata stored with it.
struct CachedEngine {
  std::vector<char> plan;
  std::string metadata;  // "name=value" lines (the key's description plus what the build found)
};

// Value of `name` in "name=value" lines, or nullopt.
std::optional<std::string> metadata_value(const std::string& metadata, const std::string& name);

// FNV-1a, 64 bits: the payload checksum (catches truncation and bit rot, not malice).
std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t seed = 0xcbf29ce484222325ULL);

class EngineCache {
 public:
  static constexpr char kMagic[8] = {'I', 'G', 'N', 'T', 'R', 'T', 'E', '1'};
  static constexpr std::uint32_t kFormat = 1;

  EngineCache(std::string directory, EngineKey key);

  const EngineKey& key() const { return key_; }
  const std::string& directory() const { return directory_; }
  // <dir>/<gpu-slug>-<digest[:20]>.engine
  const std::string& engine_path() const { return engine_path_; }
  // <dir>/<gpu-slug>.lock: held while building, so one build runs at a time per GPU model and
  // a second process (or a second GPU of the same model) waits, then loads what the first built.
  std::string lock_path() const;
  // <dir>/<gpu-slug>-trt<version>.timing: TensorRT's timing cache for this GPU and version.
  std::string timing_cache_path() const;

  // The verified engine, or nullopt when there is none; when a file exists but cannot be used
  // (other key, bad magic or version, truncated, checksum mismatch) `why` says which, and the
  // caller rebuilds. Throws IoError only when an existing file cannot be read at all.
  std::optional<CachedEngine> load(std::string* why = nullptr) const;
  // Writes header + metadata + plan atomically (temporary file, fsync, rename, fsync of the
  // directory): readers see the old file or the whole new one, never a part.
  void store(const void* plan, std::size_t size, const std::string& metadata) const;

 private:
  std::string directory_;
  EngineKey key_;
  std::string engine_path_;
};

// Creates `directory` and its parents; IoError on failure.
void make_directories(const std::string& directory);

// The whole file, or nullopt if it does not exist; IoError on any other failure.
std::optional<std::vector<char>> read_file(const std::string& path);

// Atomically replaces `path` with the concatenation of `parts` (tmp + fsync + rename + dir fsync).
struct Bytes {
  const void* data;
  std::size_t size;
};
void write_file_atomic(const std::string& path, const std::vector<Bytes>& parts);

// An exclusive flock on a file, held for the object's lifetime. Waiting polls every 100 ms and
// asks `should_stop` (may be empty) between polls, throwing Cancelled when it says so; while it
// waits longer than a second it says once on stderr whom it waits for.
class FileLock {
 public:
  FileLock(const std::string& path, const std::function<bool()>& should_stop);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace ignite::trt
