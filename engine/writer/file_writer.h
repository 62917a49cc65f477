// Appends byte ranges to one open file on threads of its own, so that copying output rows into
// the page cache runs neither on the thread that commits nor under Python's GIL.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace ignite::writer {

// Each submitted range is written whole with pwrite at its offset. Two writes behind, a written
// range is handed back to the kernel (posix_fadvise DONTNEED): the first call starts its
// writeback, the next drops its pages once clean. A streamed output is not read again, and fresh
// page-cache pages cost a fault each (on some VMs, 4 µs a record of 1.5 KB).
//
// Ranges are borrowed: the caller keeps each buffer alive until completed() reaches its ticket.
// Tickets complete in order, whichever thread wrote them. The first failed write (errno) stops
// the writer: later ranges are dropped (and completed), and error() says why. The file
// descriptor stays the caller's; the destructor waits for the queued writes.
class FileWriter {
 public:
  // Two threads by default: one thread's copy into the page cache (~1 µs a 1.5 KB row on a slow
  // VM) would cap a run near 1M rows/s.
  explicit FileWriter(int fd, unsigned threads = 2);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  // Queues `size` bytes at `offset`; returns the range's ticket (1, 2, 3, ...).
  std::uint64_t submit(const void* data, std::size_t size, std::uint64_t offset);
  // Tickets 1..completed() are done (written, or dropped after an error).
  std::uint64_t completed() const;
  // Waits up to `timeout` for `ticket` to be done; whether it is.
  bool wait(std::uint64_t ticket, std::chrono::milliseconds timeout);
  // The errno of the first failed write; 0 if none.
  int error() const;
  // CPU time of the writing threads so far (pwrite's copy into the page cache is most of it).
  double cpu_seconds() const;

 private:
  struct Range {
    const unsigned char* data;
    std::size_t size;
    std::uint64_t offset;
    std::uint64_t ticket;
  };
  void run(std::size_t slot);
  int write_all(const Range& r);

  const int fd_;
  mutable std::mutex mu_;
  std::condition_variable queued_, done_;
  std::deque<Range> queue_;
  std::deque<bool> finished_;  // tickets completed_+1, completed_+2, ...: written yet?
  std::uint64_t submitted_ = 0, completed_ = 0;
  int error_ = 0;
  std::vector<double> cpu_seconds_;  // per thread
  bool closing_ = false;
  std::vector<std::thread> threads_;  // last: started once the members above exist
};

}  // namespace ignite::writer
