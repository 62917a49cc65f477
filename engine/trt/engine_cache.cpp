#include "trt/engine_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <system_error>
#include <thread>
#include <utility>

#include "core/error.h"
#include "trt/sha256.h"

namespace ignite::trt {
namespace {

// Header layout, little-endian, fixed size; the metadata text and the plan follow it.
//   0  magic[8]      "IGNTRTE1"
//   8  u32 format    kFormat
//  12  u32 meta      metadata bytes
//  16  char key[64]  EngineKey::digest()
//  80  u64 plan      plan bytes
//  88  u64 checksum  FNV-1a 64 of metadata then plan
constexpr std::size_t kHeaderSize = 96;

void put_u32(unsigned char* out, std::uint32_t value) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}
void put_u64(unsigned char* out, std::uint64_t value) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(value >> (8 * i));
}
std::uint32_t get_u32(const unsigned char* in) {
  std::uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= std::uint32_t{in[i]} << (8 * i);
  return value;
}
std::uint64_t get_u64(const unsigned char* in) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= std::uint64_t{in[i]} << (8 * i);
  return value;
}

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int error) {
  throw IoError(what + " " + path + ": " + std::strerror(error));
}

// Closes a descriptor on scope exit unless released.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  // Closes now and reports close's own error (NFS reports write errors there).
  int close_checked() {
    const int result = ::close(fd_);
    fd_ = -1;
    return result;
  }

 private:
  int fd_;
};

void write_all(int fd, const void* data, std::size_t size, const std::string& path) {
  const char* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot write", path, errno);
    }
    bytes += written;
    size -= static_cast<std::size_t>(written);
  }
}

void read_all(int fd, void* data, std::size_t size, const std::string& path) {
  char* bytes = static_cast<char*>(data);
  while (size > 0) {
    const ssize_t got = ::read(fd, bytes, size);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw_io("cannot read", path, errno);
    }
    if (got == 0) throw IoError("cannot read " + path + ": file shrank while being read");
    bytes += got;
    size -= static_cast<std::size_t>(got);
  }
}

std::string slugify(const std::string& text) {
  std::string out;
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) {
      out += static_cast<char>(std::tolower(u));
    } else if (!out.empty() && out.back() != '-') {
      out += '-';
    }
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out.empty() ? "gpu" : out;
}

}  // namespace

std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t seed) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  std::uint64_t hash = seed;
  for (std::size_t i = 0; i < size; ++i) {
    hash ^= bytes[i];
    hash *= 0x100000001b3ULL;
  }
  return hash;
}

std::string EngineKey::describe() const {
  std::ostringstream out;
  out << "format=" << EngineCache::kFormat << "\n"
      << "onnx_sha256=" << onnx_sha256 << "\n"
      << "tensorrt=" << trt_version << "\n"
      << "gpu=" << gpu_name << "\n"
      << "sm=" << sm_major << "." << sm_minor << "\n"
      << "precision=" << precision << "\n"
      << "builder_level=" << builder_level << "\n"
      << "profiles=" << profiles << "\n";
  return out.str();
}

std::string EngineKey::digest() const {
  const std::string text = describe();
  return sha256_hex(text.data(), text.size());
}

std::string EngineKey::gpu_slug() const {
  return slugify(gpu_name) + "-sm" + std::to_string(sm_major) + std::to_string(sm_minor);
}

std::optional<std::string> metadata_value(const std::string& metadata, const std::string& name) {
  std::istringstream lines(metadata);
  std::string line;
  const std::string prefix = name + "=";
  while (std::getline(lines, line)) {
    if (line.compare(0, prefix.size(), prefix) == 0) return line.substr(prefix.size());
  }
  return std::nullopt;
}

EngineCache::EngineCache(std::string directory, EngineKey key)
    : directory_(std::move(directory)), key_(std::move(key)) {
  if (directory_.empty()) throw InvalidArgument("the engine cache directory must not be empty");
  engine_path_ = directory_ + "/" + key_.gpu_slug() + "-" + key_.digest().substr(0, 20) + ".engine";
}

std::string EngineCache::lock_path() const { return directory_ + "/" + key_.gpu_slug() + ".lock"; }

std::string EngineCache::timing_cache_path() const {
  return directory_ + "/" + key_.gpu_slug() + "-trt" + std::to_string(key_.trt_version) + ".timing";
}

std::optional<CachedEngine> EngineCache::load(std::string* why) const {
  auto reject = [&](const std::string& reason) -> std::optional<CachedEngine> {
    if (why) *why = engine_path_ + ": " + reason;
    return std::nullopt;
  };
  if (why) why->clear();
  const int raw = ::open(engine_path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_io("cannot open", engine_path_, errno);
  }
  Fd fd(raw);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw_io("cannot stat", engine_path_, errno);
  const auto file_size = static_cast<std::uint64_t>(info.st_size);
  if (file_size < kHeaderSize) return reject("shorter than the header (" + std::to_string(file_size) + " bytes)");

  unsigned char header[kHeaderSize];
  read_all(fd.get(), header, kHeaderSize, engine_path_);
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) return reject("not an Ignite engine file (bad magic)");
  const std::uint32_t format = get_u32(header + 8);
  if (format != kFormat) return reject("file format " + std::to_string(format) + ", expected " + std::to_string(kFormat));
  const std::uint64_t meta_size = get_u32(header + 12);
  const std::string stored_key(reinterpret_cast<const char*>(header + 16), 64);
  if (stored_key != key_.digest()) return reject("built for another key (" + stored_key.substr(0, 12) + "...)");
  const std::uint64_t plan_size = get_u64(header + 80);
  const std::uint64_t checksum = get_u64(header + 88);
  if (plan_size == 0) return reject("empty engine");
  if (kHeaderSize + meta_size + plan_size != file_size) {
    return reject("size mismatch: header says " + std::to_string(kHeaderSize + meta_size + plan_size) +
                  " bytes, file has " + std::to_string(file_size) + " (truncated or partly written)");
  }

  CachedEngine engine;
  engine.metadata.resize(static_cast<std::size_t>(meta_size));
  read_all(fd.get(), engine.metadata.data(), engine.metadata.size(), engine_path_);
  engine.plan.resize(static_cast<std::size_t>(plan_size));
  read_all(fd.get(), engine.plan.data(), engine.plan.size(), engine_path_);
  const std::uint64_t actual = fnv1a64(engine.plan.data(), engine.plan.size(),
                                       fnv1a64(engine.metadata.data(), engine.metadata.size()));
  if (actual != checksum) return reject("checksum mismatch (corrupted file)");
  return engine;
}

void EngineCache::store(const void* plan, std::size_t size, const std::string& metadata) const {
  if (size == 0) throw InvalidArgument("refusing to cache an empty engine");
  if (metadata.size() > 0xffffffffULL) throw InvalidArgument("engine metadata too large");
  const std::string digest = key_.digest();
  unsigned char header[kHeaderSize] = {};
  std::memcpy(header, kMagic, sizeof(kMagic));
  put_u32(header + 8, kFormat);
  put_u32(header + 12, static_cast<std::uint32_t>(metadata.size()));
  std::memcpy(header + 16, digest.data(), 64);
  put_u64(header + 80, size);
  put_u64(header + 88, fnv1a64(plan, size, fnv1a64(metadata.data(), metadata.size())));
  make_directories(directory_);
  write_file_atomic(engine_path_, {{header, kHeaderSize}, {metadata.data(), metadata.size()}, {plan, size}});
}

void make_directories(const std::string& directory) {
  std::error_code error;
  std::filesystem::create_directories(directory, error);
  if (error) throw IoError("cannot create directory " + directory + ": " + error.message());
}

std::optional<std::vector<char>> read_file(const std::string& path) {
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw_io("cannot open", path, errno);
  }
  Fd fd(raw);
  struct stat info {};
  if (::fstat(fd.get(), &info) != 0) throw_io("cannot stat", path, errno);
  std::vector<char> bytes(static_cast<std::size_t>(info.st_size));
  read_all(fd.get(), bytes.data(), bytes.size(), path);
  return bytes;
}

void write_file_atomic(const std::string& path, const std::vector<Bytes>& parts) {
  static std::atomic<unsigned> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  const int raw = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (raw < 0) throw_io("cannot create", tmp, errno);
  try {
    Fd fd(raw);
    for (const auto& part : parts) write_all(fd.get(), part.data, part.size, tmp);
    if (::fsync(fd.get()) != 0) throw_io("cannot fsync", tmp, errno);
    if (fd.close_checked() != 0) throw_io("cannot close", tmp, errno);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw_io("cannot rename to", path, errno);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
  // Make the rename itself durable.
  const std::string parent = std::filesystem::path(path).parent_path().string();
  const int dir = ::open(parent.empty() ? "." : parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) throw_io("cannot open directory", parent, errno);
  Fd dir_fd(dir);
  if (::fsync(dir_fd.get()) != 0 && errno != EINVAL) throw_io("cannot fsync directory", parent, errno);
}

FileLock::FileLock(const std::string& path, const std::function<bool()>& should_stop) {
  make_directories(std::filesystem::path(path).parent_path().string());
  Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (fd.get() < 0) throw_io("cannot open lock file", path, errno);
  const auto start = std::chrono::steady_clock::now();
  bool announced = false;
  for (;;) {
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) break;
    const int error = errno;
    if (error == EINTR) continue;
    if (error != EWOULDBLOCK) throw_io("cannot lock", path, error);
    if (should_stop && should_stop()) throw Cancelled("cancelled while waiting for " + path);
    if (!announced && std::chrono::steady_clock::now() - start > std::chrono::seconds(1)) {
      std::fprintf(stderr, "ignite: waiting for another process to finish building a TensorRT engine (%s)\n",
                   path.c_str());
      announced = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  fd_ = fd.release();
}

FileLock::~FileLock() {
  if (fd_ >= 0) {
    ::flock(fd_, LOCK_UN);  // closing would release it too; explicit for readers
    ::close(fd_);
  }
}

}  // namespace ignite::trt
