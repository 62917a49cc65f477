#include "writer/file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <numeric>

namespace ignite::writer {

namespace {
double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}
}  // namespace

FileWriter::FileWriter(int fd, unsigned threads) : fd_(fd), cpu_seconds_(std::max(1u, threads), 0.0) {
  for (std::size_t slot = 0; slot < cpu_seconds_.size(); ++slot) threads_.emplace_back([this, slot] { run(slot); });
}

FileWriter::~FileWriter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  queued_.notify_all();
  for (auto& t : threads_) t.join();
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

int FileWriter::write_all(const Range& r) {
  const unsigned char* p = r.data;
  std::size_t left = r.size;
  std::uint64_t at = r.offset;
  while (left > 0) {
    const ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(at));
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return EIO;  // no progress and no error: never loop forever
    p += n;
    left -= static_cast<std::size_t>(n);
    at += static_cast<std::uint64_t>(n);
  }
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
    const int err = failed ? 0 : write_all(r);
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
