#include "writer/file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <new>
#include <numeric>
#include <string>

namespace ignite::writer {

namespace {

// O_DIRECT wants offsets, sizes and memory aligned to the logical block size: 4 KiB covers all.
constexpr std::uint64_t kBlock = 4096;
constexpr std::size_t kBounce = std::size_t{4} << 20;  // a thread's aligned buffer

std::uint64_t round_up(std::uint64_t n) { return (n + kBlock - 1) / kBlock * kBlock; }
std::uint64_t round_down(std::uint64_t n) { return n / kBlock * kBlock; }

// Writes all `size` bytes at `offset`; 0 or the errno.
int pwrite_all(int fd, const unsigned char* p, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // no progress and no error: never loop forever
    p += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return 0;
}

// The file behind `fd` opened again, write-only with O_DIRECT; -1 where that is refused (a file
// system without it, such as older tmpfs, or no /proc).
int open_direct(int fd) {
  const std::string self = "/proc/self/fd/" + std::to_string(fd);
  int direct;
  do {
    direct = ::open(self.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
  } while (direct < 0 && errno == EINTR);
  return direct;
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
}  // namespace

void FileWriter::FreeAligned::operator()(unsigned char* p) const { std::free(p); }

FileWriter::FileWriter(int fd, unsigned threads, bool direct)
    : fd_(fd), direct_fd_(direct ? open_direct(fd) : -1), bounce_(std::max(1u, threads)),
      cpu_seconds_(std::max(1u, threads), 0.0) {
  for (std::size_t slot = 0; slot < cpu_seconds_.size(); ++slot) threads_.emplace_back([this, slot] { run(slot); });
}

FileWriter::~FileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  queued_.notify_all();
  for (auto& t : threads_) t.join();
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

std::uint64_t FileWriter::submit(const void* data, std::size_t size, std::uint64_t offset) {
  std::uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ticket = ++submitted_;
    queue_.push_back({static_cast<const unsigned char*>(data), size, offset, ticket});
    finished_.push_back(false);
  }
  queued_.notify_one();
  return ticket;
}

std::uint64_t FileWriter::completed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return completed_;
}

bool FileWriter::wait(std::uint64_t ticket, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return done_.wait_for(lock, timeout, [&] { return completed_ >= ticket; });
}

int FileWriter::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

double FileWriter::cpu_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::accumulate(cpu_seconds_.begin(), cpu_seconds_.end(), 0.0);
}

int FileWriter::write_range(const Range& r, std::size_t slot) {
  const std::uint64_t end = r.offset + r.size;
  const std::uint64_t lo = round_up(r.offset), hi = round_down(end);
  if (!direct() || lo >= hi) return write_buffered(r);
  // The partial blocks at both ends through the page cache (a neighbouring range shares them),
  // the whole blocks between straight to the disk.
  const unsigned char* whole = r.data + (lo - r.offset);
  if (const int err = pwrite_all(fd_, r.data, lo - r.offset, r.offset)) return err;
  if (const int err = write_direct(whole, hi - lo, lo, slot)) {
    if (err != EINVAL && err != ENOMEM) return err;
    // Refused after all (an alignment this file system wants larger, or a file size limit that
    // cuts the write short of a block), or no aligned buffer to be had: through the page cache
    // from now on (a real shortage of memory fails there too, with its errno).
    direct_ok_.store(false, std::memory_order_relaxed);
    if (const int again = pwrite_all(fd_, whole, hi - lo, lo)) return again;
  }
  return pwrite_all(fd_, r.data + (hi - r.offset), end - hi, hi);
}

int FileWriter::write_direct(const unsigned char* data, std::size_t size, std::uint64_t offset, std::size_t slot) {
  if (reinterpret_cast<std::uintptr_t>(data) % kBlock == 0) return pwrite_all(direct_fd_, data, size, offset);
  if (!bounce_[slot]) {
    void* p = nullptr;
    if (::posix_memalign(&p, kBlock, kBounce) != 0) return ENOMEM;
    bounce_[slot].reset(static_cast<unsigned char*>(p));
  }
  unsigned char* bounce = bounce_[slot].get();
  for (std::size_t done = 0; done < size;) {
    const std::size_t n = std::min(kBounce, size - done);
    std::memcpy(bounce, data + done, n);
    if (const int err = pwrite_all(direct_fd_, bounce, n, offset + done)) return err;
    done += n;
  }
  return 0;
}

int FileWriter::write_buffered(const Range& r) {
  if (const int err = pwrite_all(fd_, r.data, r.size, r.offset)) return err;
  // The two writes' worth before this one: each range is advised twice (see the header).
  const std::uint64_t behind = 2 * static_cast<std::uint64_t>(r.size);
  const std::uint64_t lo = r.offset > behind ? r.offset - behind : 0;
  if (r.offset > lo) {
    ::posix_fadvise(fd_, static_cast<off_t>(lo), static_cast<off_t>(r.offset - lo), POSIX_FADV_DONTNEED);
  }
  return 0;
}

void FileWriter::run(std::size_t slot) {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    queued_.wait(lock, [this] { return closing_ || !queue_.empty(); });
    if (queue_.empty()) return;  // closing, and every range is taken
    const Range r = queue_.front();
    queue_.pop_front();
    const bool failed = error_ != 0;
    lock.unlock();
    const int err = failed ? 0 : write_range(r, slot);
    const double cpu = thread_cpu_seconds();
    lock.lock();
    cpu_seconds_[slot] = cpu;
    if (err != 0 && error_ == 0) error_ = err;
    finished_[r.ticket - completed_ - 1] = true;
    bool advanced = false;
    while (!finished_.empty() && finished_.front()) {
      finished_.pop_front();
      ++completed_;
      advanced = true;
    }
    if (advanced) done_.notify_all();
  }
}

}  // namespace ignite::writer
